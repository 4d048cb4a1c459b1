pub fn run(_l: &str) -> anyhow::Result<()> { Ok(()) }
