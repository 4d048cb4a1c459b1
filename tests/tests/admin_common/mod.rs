//! What the admin port tests share: a sandbox of three groups (the first with a
//! replica, the third a spare node), a config with an admin account, the physical
//! tables of a test's schema, and clients for the admin port.
#![allow(dead_code)]

use std::process::Command;
use std::sync::OnceLock;

use mysql_async::prelude::*;
use mysql_async::Conn;
use tests::{direct, Proxy, Sandbox, PASSWORD, USER};

pub const DBA: &str = "dba";
pub const DBA_PASSWORD: &str = "dba-Pw0rd";

pub fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[1, 0, 0]).expect("start the MariaDB sandbox"))
}

pub fn addr(group: usize) -> String {
    sandbox().groups[group].primary.address()
}

/// Schema `db` on dn1 and dn2: `busy` sharded by id mod 2 (with rows), `spare`
/// sharded by k over rule `r_spare` (empty). dn3 is not in the config yet.
pub fn config(db: &str) -> String {
    config_with(db, "")
}

/// [`config`] with more keys for dn1 (`replicas = [...]`).
pub fn config_with(db: &str, dn1: &str) -> String {
    format!(
        "[[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\nslow_query_ms = 50\n\
         users = [{{ name = \"{DBA}\", password = \"{DBA_PASSWORD}\" }}]\n\
         [nodes.dn1]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n{dn1}\n\
         [nodes.dn2]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [rules.r_busy]\nalgorithm = \"mod\"\nshards = 2\n\
         [rules.r_spare]\nalgorithm = \"mod\"\nshards = 2\n\
         [schemas.{db}]\nnode = \"dn1\"\n\
         [schemas.{db}.tables.busy]\nkind = \"sharded\"\ncolumn = \"id\"\nrule = \"r_busy\"\nnodes = [\"dn1\", \"dn2\"]\n\
         [schemas.{db}.tables.spare]\nkind = \"sharded\"\ncolumn = \"k\"\nrule = \"r_spare\"\nnodes = [\"dn1\", \"dn2\"]\n\
         naming = \"{{table}}_{{shard}}\"\n",
        addr(0),
        addr(1),
    )
}

/// Physical tables on every node: `busy` with rows 0..20 where mod 2 puts them, the
/// `spare` shards for 2 and for 4 shards (empty), `countries` (empty) everywhere.
pub async fn setup(db: &str) {
    tests::recreate_db(sandbox(), db).await;
    for g in 0..3 {
        let mut d = direct(&sandbox().groups[g].primary, Some(db)).await;
        d.query_drop("CREATE TABLE busy (id INT PRIMARY KEY, v INT)")
            .await
            .unwrap();
        for s in 0..4 {
            d.query_drop(format!("CREATE TABLE spare_{s} (k INT PRIMARY KEY)"))
                .await
                .unwrap();
        }
        d.query_drop("CREATE TABLE countries (code CHAR(2) PRIMARY KEY)")
            .await
            .unwrap();
        if g < 2 {
            let rows: Vec<String> = (0..20)
                .filter(|i| i % 2 == g)
                .map(|i| format!("({i}, {i})"))
                .collect();
            d.query_drop(format!("INSERT INTO busy VALUES {}", rows.join(",")))
                .await
                .unwrap();
        }
    }
}

pub async fn admin(p: &Proxy) -> Conn {
    Conn::new(p.admin_opts(DBA, DBA_PASSWORD))
        .await
        .expect("log in to the admin port")
}

/// Runs `sql` with the mysql command-line client on the admin port: (ok, stdout,
/// stderr). Batch mode: tab-separated, no headers.
pub fn cli(p: &Proxy, sql: &str) -> (bool, String, String) {
    let out = Command::new(&sandbox().binaries().client)
        .arg("--no-defaults")
        .arg("-h127.0.0.1")
        .arg(format!("-P{}", p.announced_port("admin")))
        .arg(format!("-u{DBA}"))
        .arg(format!("-p{DBA_PASSWORD}"))
        .arg("-N")
        .arg("-B")
        .arg("-e")
        .arg(sql)
        .output()
        .expect("run the mysql client");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn cli_ok(p: &Proxy, sql: &str) -> String {
    let (ok, out, err) = cli(p, sql);
    assert!(ok, "{sql}: {err}");
    out
}

/// Where EXPLAIN SHARDING sends `sql`: (node, sql) of each part.
pub async fn route(c: &mut Conn, sql: &str) -> Vec<(String, String)> {
    let rows: Vec<mysql_async::Row> = c
        .query(format!("EXPLAIN SHARDING {sql}"))
        .await
        .expect("explain");
    rows.into_iter()
        .map(|r| {
            let node: String = r.get("node").expect("node");
            let sql: String = r.get("sql").expect("sql");
            (node, sql)
        })
        .collect()
}

/// Polls `f` until it holds, for up to 10 s.
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !f().await {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
