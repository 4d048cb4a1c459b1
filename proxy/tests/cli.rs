//! The binary's command line: bad configs are refused at start with the file and the
//! key named; nothing to serve is explained.

use std::io::Write;
use std::process::Command;

fn shardgate(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shardgate"))
        .args(args)
        .env("SHARDGATE_LOG", "error")
        .output()
        .expect("run shardgate");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn config(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

const GOOD: &str = r#"
[server]
listen = "127.0.0.1:0"
[[users]]
name = "app"
password = "pw"
[nodes.dn1]
primary = "127.0.0.1:3306"
replicas = ["127.0.0.1:3307"]
user = "u"
[schemas.shop]
node = "dn1"
"#;

#[test]
fn check_config_accepts_a_good_file() {
    let f = config(GOOD);
    let (ok, out) = shardgate(&["check-config", "--config", f.path().to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("ok (1 nodes, 1 schemas, 1 users)"), "{out}");
}

#[test]
fn unknown_keys_are_rejected_with_file_and_key() {
    let f = config(&GOOD.replace("user = \"u\"", "user = \"u\"\npasword = \"x\""));
    let path = f.path().to_str().unwrap();
    let (ok, out) = shardgate(&["--config", path]);
    assert!(!ok);
    assert!(out.contains(path), "{out}");
    assert!(out.contains("pasword"), "{out}");
}

#[test]
fn bad_values_are_rejected_with_their_keys() {
    let f = config(
        &GOOD
            .replace("127.0.0.1:3307", "127.0.0.1:99999")
            .replace("node = \"dn1\"", "node = \"dn7\""),
    );
    let path = f.path().to_str().unwrap();
    let (ok, out) = shardgate(&["--config", path]);
    assert!(!ok);
    assert!(out.contains(path), "{out}");
    assert!(
        out.contains("nodes.dn1.replicas[0]: `127.0.0.1:99999`: port must be 1-65535"),
        "{out}"
    );
    assert!(
        out.contains("schemas.shop.node: unknown node `dn7`"),
        "{out}"
    );
}

#[test]
fn a_missing_file_and_no_arguments_are_explained() {
    let (ok, out) = shardgate(&["--config", "/nonexistent/shardgate.toml"]);
    assert!(!ok);
    assert!(
        out.contains("/nonexistent/shardgate.toml: cannot read"),
        "{out}"
    );
    let (ok, out) = shardgate(&[]);
    assert!(!ok);
    assert!(out.contains("--primary"), "{out}");
    let (ok, out) = shardgate(&["--primary", "127.0.0.1:3306"]);
    assert!(!ok);
    assert!(out.contains("--user is required"), "{out}");
}

#[test]
fn sharded_tables_validate() {
    let f = config(&format!(
        "{GOOD}\n[rules.r]\nalgorithm = \"mod\"\nshards = 2\n\
         [schemas.shop.tables.orders]\nkind = \"sharded\"\ncolumn = \"id\"\nrule = \"r\"\nnodes = [\"dn1\"]\ntables_per_node = 2\n"
    ));
    let path = f.path().to_str().unwrap();
    let (ok, out) = shardgate(&["check-config", "--config", path]);
    assert!(ok, "{out}");
    let bad = config(&format!(
        "{GOOD}\n[rules.r]\nalgorithm = \"mod\"\nshards = 3\n\
         [schemas.shop.tables.orders]\nkind = \"sharded\"\ncolumn = \"id\"\nrule = \"r\"\nnodes = [\"dn1\"]\ntables_per_node = 2\n"
    ));
    let (ok, out) = shardgate(&["check-config", "--config", bad.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(
        out.contains("schemas.shop.tables.orders.rule: rule `r` has 3 shards"),
        "{out}"
    );
}
