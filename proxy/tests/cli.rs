//! The binary's command line: bad configs are refused at start with the file and the
//! key named; nothing to serve is explained.

use std::io::Write;
use std::process::Command;

fn shardgate(args: &[&str]) -> (bool, String) {
    shardgate_env(args, &[])
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
    assert!(out.contains("ok (1 node, 1 schema, 1 user)"), "{out}");
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

fn shardgate_env(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shardgate"))
        .args(args)
        .envs(env.iter().copied())
        .env("SHARDGATE_LOG", "error")
        .output()
        .expect("run shardgate");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn config_errors_name_their_own_key_and_do_not_cascade() {
    // A mistyped value inside a rule names the key, not just the section.
    let f = config(&format!(
        "{GOOD}\n[rules.r]\nalgorithm = \"mod\"\nshards = \"eight\"\n"
    ));
    let (ok, out) = shardgate(&["check-config", "-c", f.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(out.contains("rules.r.shards:"), "{out}");

    // An unknown node is one error, not also a shard-count mismatch; an unknown schema
    // node does not hide its tables' own mistakes; a bad address is refused.
    let f = config(&format!(
        "{}\n[rules.r]\nalgorithm = \"mod\"\nshards = 2\n\
         [schemas.shop.tables.orders]\nkind = \"sharded\"\ncolumn = \"id\"\nrule = \"r\"\nnodes = [\"dn1\", \"dnX\"]\n\
         [schemas.crm]\nnode = \"dnY\"\n\
         [schemas.crm.tables.u]\nkind = \"sharded\"\ncolumn = \"id\"\nrule = \"nope\"\nnodes = [\"dn1\"]\n",
        GOOD.replace("127.0.0.1:3307", "not an address")
            .replace("127.0.0.1:3306", "127.0.0.1")
    ));
    let (ok, out) = shardgate(&["check-config", "-c", f.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(
        out.contains("schemas.shop.tables.orders.nodes: unknown node `dnX`"),
        "{out}"
    );
    assert!(!out.contains("shards, but"), "cascaded: {out}");
    assert!(
        out.contains("schemas.crm.node: unknown node `dnY`"),
        "{out}"
    );
    assert!(
        out.contains("schemas.crm.tables.u.rule: unknown rule `nope`"),
        "{out}"
    );
    assert!(
        out.contains("nodes.dn1.replicas[0]: `not an address`: not a host name"),
        "{out}"
    );
    assert!(
        out.contains("nodes.dn1.primary: `127.0.0.1`: give the port too"),
        "{out}"
    );

    // The shard-count message reads as one sentence.
    let f = config(&format!(
        "{GOOD}\n[rules.r]\nalgorithm = \"mod\"\nshards = 3\n\
         [schemas.shop.tables.orders]\nkind = \"sharded\"\ncolumn = \"id\"\nrule = \"r\"\nnodes = [\"dn1\"]\n"
    ));
    let (_, out) = shardgate(&["check-config", "-c", f.path().to_str().unwrap()]);
    assert!(out.contains("= 1; change the rule's shard count"), "{out}");
}

#[test]
fn errors_carry_no_backtrace_and_the_binary_names_itself() {
    let (ok, out) = shardgate_env(
        &["--config", "/nonexistent/shardgate.toml"],
        &[("RUST_BACKTRACE", "1"), ("RUST_LIB_BACKTRACE", "1")],
    );
    assert!(!ok);
    assert!(!out.contains("backtrace"), "{out}");
    let (ok, out) = shardgate(&["--version"]);
    assert!(ok);
    assert!(out.starts_with("shardgate "), "{out}");
    let (_, out) = shardgate(&["check-config", "--help"]);
    assert!(out.contains("The config file (TOML) to check"), "{out}");
    let (_, out) = shardgate(&["--help"]);
    assert!(out.contains("MySQL sharding proxy"), "{out}");
    assert!(!out.contains("The network side"), "{out}");
}
