//! Writes each target's seeds into `corpus/<target>/`, where `scripts/fuzz` starts
//! libFuzzer: real packets and statements, so mutations start from inputs that get far.

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, _) in proxy::fuzzing::TARGETS {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        for (i, seed) in proxy::fuzzing::seeds(name).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), seed)?;
        }
    }
    Ok(())
}
