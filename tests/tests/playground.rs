//! `shardgate playground`, as the README's quick start uses it: it starts, serves the
//! sample schemas (with the sharded `orders`), and removes everything on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::Conn;

#[tokio::test]
async fn playground_serves_the_sample_and_cleans_up() {
    let mut child = Command::new(tests::shardgate_bin())
        .args(["playground", "--listen", "127.0.0.1:0"])
        .env("SHARDGATE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the playground");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut port, mut config) = (None, None);
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen.push_str(&line);
        if let Some(rest) = line.trim().strip_prefix("mysql -c -h 127.0.0.1 -P ") {
            port = rest
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok());
        }
        if let Some(path) = line.trim().strip_prefix("config: ") {
            config = Some(std::path::PathBuf::from(path));
        }
        if line.contains("Press Ctrl-C") {
            break;
        }
    }
    let port = port.unwrap_or_else(|| panic!("no connect line in:\n{seen}"));
    let config = config.unwrap_or_else(|| panic!("no config line in:\n{seen}"));
    let sandbox_dir = config.parent().unwrap().to_path_buf();
    assert!(sandbox_dir.is_dir());

    let mut c = Conn::new(tests::opts(port, "app", "app", Some("shop")))
        .await
        .unwrap();
    let ids: Vec<i64> = c
        .query("SELECT id FROM orders WHERE user_id IN (1, 5)")
        .await
        .unwrap();
    assert_eq!(ids.len(), 2, "{ids:?}");
    let all: Vec<i64> = c.query("SELECT id FROM orders").await.unwrap();
    assert_eq!(all.len(), 6);
    let tables: Vec<String> = c.query("SHOW TABLES").await.unwrap();
    assert_eq!(tables, ["orders", "products"]);
    c.query_drop("USE crm").await.unwrap();
    let names: Vec<String> = c
        .query("SELECT name FROM customers ORDER BY id")
        .await
        .unwrap();
    assert_eq!(names, ["Ada", "Grace", "Linus"]);

    // SIGHUP reloads its config file, as with --config (it used to end the process).
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[schemas.extra]\nnode = \"dn1\"\n");
    std::fs::write(&config, text).unwrap();
    assert!(Command::new("kill")
        .arg("-HUP")
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let dbs: Vec<String> = c.query("SHOW DATABASES").await.unwrap();
        if dbs.iter().any(|d| d == "extra") {
            break;
        }
        assert!(Instant::now() < deadline, "no reload: {dbs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(c);

    assert!(Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        assert!(Instant::now() < deadline, "playground did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(
        !sandbox_dir.exists(),
        "{} left behind",
        sandbox_dir.display()
    );
}
