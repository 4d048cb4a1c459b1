//! The admin port: DBAs stage layout changes in SQL tables, validate them, put them in
//! effect under client load without dropping a client, save them to the config file,
//! and roll back; invalid edits and edits that would strand rows are refused. Driven
//! with the `mysql` command-line client and with mysql_async. One sandbox (three
//! groups, the third a spare node) for the binary; each test has its own schema.

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use mysql_async::prelude::*;
use mysql_async::Conn;
use tests::{direct, error_code, Proxy, Sandbox, PASSWORD, USER};

const DBA: &str = "dba";
const DBA_PASSWORD: &str = "dba-Pw0rd";

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[1, 0, 0]).expect("start the MariaDB sandbox"))
}

fn addr(group: usize) -> String {
    sandbox().groups[group].primary.address()
}

/// Schema `db` on dn1 and dn2: `busy` sharded by id mod 2 (with rows), `spare`
/// sharded by k over rule `r_spare` (empty). dn3 is not in the config yet.
fn config(db: &str) -> String {
    config_with(db, "")
}

/// [`config`] with more keys for dn1 (`replicas = [...]`).
fn config_with(db: &str, dn1: &str) -> String {
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
async fn setup(db: &str) {
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

async fn admin(p: &Proxy) -> Conn {
    Conn::new(p.admin_opts(DBA, DBA_PASSWORD))
        .await
        .expect("log in to the admin port")
}

/// Runs `sql` with the mysql command-line client on the admin port: (ok, stdout,
/// stderr). Batch mode: tab-separated, no headers.
fn cli(p: &Proxy, sql: &str) -> (bool, String, String) {
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

fn cli_ok(p: &Proxy, sql: &str) -> String {
    let (ok, out, err) = cli(p, sql);
    assert!(ok, "{sql}: {err}");
    out
}

/// Where EXPLAIN SHARDING sends `sql`: (node, sql) of each part.
async fn route(c: &mut Conn, sql: &str) -> Vec<(String, String)> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_change_and_new_broadcast_table_under_load() {
    let db = "adm_live";
    setup(db).await;
    let p = Proxy::with_config(&config(db));
    // Clients reading and writing all along, each on one connection throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..4u32 {
        let (stop, done) = (stop.clone(), done.clone());
        let mut c = p.conn(Some(db)).await;
        workers.push(tokio::spawn(async move {
            let id: u64 = c
                .query_first("SELECT CONNECTION_ID()")
                .await
                .unwrap()
                .unwrap();
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let k = (w * 1000 + n) % 20;
                c.exec_drop("UPDATE busy SET v = v + 1 WHERE id = ?", (k,))
                    .await
                    .expect("no client error during the change");
                let _: Option<i64> = c
                    .exec_first("SELECT v FROM busy WHERE id = ?", (k,))
                    .await
                    .expect("no client error during the change");
                let _: Option<i64> = c
                    .query_first("SELECT COUNT(*) FROM busy")
                    .await
                    .expect("no client error during the change");
                n += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
            let after: u64 = c
                .query_first("SELECT CONNECTION_ID()")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(id, after, "the same connection throughout");
        }));
    }
    while done.load(Ordering::Relaxed) < 50 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut app = p.conn(Some(db)).await;
    assert_eq!(
        route(&mut app, "SELECT * FROM spare WHERE k = 3").await,
        [(
            "dn2".to_string(),
            "SELECT * FROM `spare_1` WHERE k = 3".to_string()
        )]
    );

    // The mysql client: four shards of `spare` (two per node), and `countries`
    // becomes a broadcast table.
    cli_ok(
        &p,
        &format!(
            "UPDATE rule_properties SET value = '4' WHERE rule = 'r_spare' AND property = 'shards'; \
             UPDATE tables SET tables_per_node = 2 WHERE schema_name = '{db}' AND name = 'spare'; \
             INSERT INTO tables (schema_name, name, kind) VALUES ('{db}', 'countries', 'broadcast');"
        ),
    );
    let diff = cli_ok(&p, "SHOW CONFIG DIFF");
    assert!(diff.contains("rules.r_spare.shards\t2\t4"), "{diff}");
    assert!(
        diff.contains(&format!(
            "schemas.{db}.tables.countries.kind\tNULL\tbroadcast"
        )),
        "{diff}"
    );
    let checked = cli_ok(&p, "VALIDATE CONFIG");
    assert!(checked.contains("the staged config is valid"), "{checked}");
    let loaded = cli_ok(&p, "LOAD CONFIG TO RUNTIME");
    assert!(loaded.contains("in effect"), "{loaded}");

    // New statements follow the new layout: shard 3 of 4 is dn2's second table.
    let mut after = p.conn(Some(db)).await;
    assert_eq!(
        route(&mut after, "SELECT * FROM spare WHERE k = 3").await,
        [(
            "dn2".to_string(),
            "SELECT * FROM `spare_3` WHERE k = 3".to_string()
        )]
    );
    let writes: Vec<String> = route(&mut after, "INSERT INTO countries VALUES ('de')")
        .await
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(writes, ["dn1", "dn2"], "a broadcast write goes everywhere");
    after
        .query_drop("INSERT INTO countries VALUES ('de')")
        .await
        .unwrap();
    for g in 0..2 {
        let mut d = direct(&sandbox().groups[g].primary, Some(db)).await;
        let n: Option<i64> = d
            .query_first("SELECT COUNT(*) FROM countries")
            .await
            .unwrap();
        assert_eq!(n, Some(1), "copy on dn{}", g + 1);
    }
    // The runtime tables show it.
    let runtime = cli_ok(
        &p,
        "SELECT value FROM runtime_rule_properties WHERE rule = 'r_spare' AND property = 'shards'",
    );
    assert_eq!(runtime.trim(), "4");

    let before = done.load(Ordering::Relaxed);
    while done.load(Ordering::Relaxed) < before + 50 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("a client worker failed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_edits_are_refused_by_key_and_change_nothing() {
    let db = "adm_invalid";
    setup(db).await;
    let p = Proxy::with_config(&config(db));
    let mut a = admin(&p).await;
    a.query_drop(
        "UPDATE rule_properties SET value = 'eight' WHERE rule = 'r_spare' AND property = 'shards'",
    )
    .await
    .unwrap();
    a.query_drop(format!(
        "UPDATE tables SET rule = 'nope' WHERE schema_name = '{db}' AND name = 'busy'"
    ))
    .await
    .unwrap();
    let rows: Vec<(String, Option<String>, Option<String>, String)> =
        a.query("VALIDATE CONFIG").await.unwrap();
    assert!(rows.iter().all(|r| r.0 == "error"), "{rows:?}");
    let keys: Vec<&str> = rows.iter().filter_map(|r| r.1.as_deref()).collect();
    assert!(keys.contains(&"rules.r_spare.shards"), "{rows:?}");
    let e = a
        .query_drop("LOAD CONFIG TO RUNTIME")
        .await
        .expect_err("an invalid config is refused");
    let text = e.to_string();
    assert!(text.contains("rules.r_spare.shards"), "{text}");
    assert!(text.contains("runtime is unchanged"), "{text}");
    // Nothing changed: the runtime tables, and where statements go.
    let shards: Option<String> = a
        .query_first("SELECT value FROM runtime_rule_properties WHERE rule = 'r_spare' AND property = 'shards'")
        .await
        .unwrap();
    assert_eq!(shards.as_deref(), Some("2"));
    let mut app = p.conn(Some(db)).await;
    assert_eq!(
        route(&mut app, "SELECT * FROM busy WHERE id = 3").await[0].0,
        "dn2"
    );
    // What the admin port never lets SQL touch.
    for sql in [
        "UPDATE runtime_rules SET algorithm = 'jump'",
        "DELETE FROM config_audit",
        "DROP TABLE nodes",
    ] {
        let e = a.query_drop(sql).await.expect_err(sql);
        assert_eq!(error_code(&e), Some(1227), "{sql}: {e}");
    }
    // The refusal is in the audit, and the session goes on.
    let refused: Option<i64> = a
        .query_first("SELECT COUNT(*) FROM config_audit WHERE statement = 'LOAD CONFIG TO RUNTIME' AND outcome LIKE 'refused%'")
        .await
        .unwrap();
    assert_eq!(refused, Some(1));
    // Admin statements are not reachable through the data port, and the data port's
    // accounts do not open the admin port.
    assert!(app.query_drop("LOAD CONFIG TO RUNTIME").await.is_err());
    let e = Conn::new(p.admin_opts(USER, PASSWORD))
        .await
        .expect_err("an application account on the admin port");
    assert_eq!(error_code(&e), Some(1045), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_a_schema_to_a_new_node_counts_the_rows_it_would_strand() {
    let db = "adm_move";
    setup(db).await;
    for g in 0..3 {
        let mut d = direct(&sandbox().groups[g].primary, Some(db)).await;
        d.query_drop("CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)")
            .await
            .unwrap();
    }
    let mut d1 = direct(&sandbox().groups[0].primary, Some(db)).await;
    d1.query_drop("INSERT INTO notes VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        .await
        .unwrap();
    let p = Proxy::with_config(&config(db));
    let mut a = admin(&p).await;
    a.query_drop(format!(
        "INSERT INTO nodes (name, primary_address, user, password) VALUES ('dn3', '{}', '{USER}', '{PASSWORD}')",
        addr(2)
    ))
    .await
    .unwrap();
    a.query_drop(format!(
        "UPDATE schemas SET node = 'dn3' WHERE name = '{db}'"
    ))
    .await
    .unwrap();
    // `notes` (3 rows, on dn1) would not be found on dn3; neither would the `busy`
    // and `spare` tables' rows, which stay where they are configured.
    let e = a
        .query_drop("LOAD CONFIG TO RUNTIME")
        .await
        .expect_err("rows would be stranded");
    let text = e.to_string();
    assert!(text.contains("would not find 3 existing rows"), "{text}");
    assert!(text.contains(&format!("{db}.notes: 3 of 3 rows")), "{text}");
    let mut app = p.conn(Some(db)).await;
    let n: Option<i64> = app.query_first("SELECT COUNT(*) FROM notes").await.unwrap();
    assert_eq!(n, Some(3), "still read on dn1");

    // The DBA copies the rows, then forces: the reply names what was left behind.
    let mut d3 = direct(&sandbox().groups[2].primary, Some(db)).await;
    d3.query_drop("INSERT INTO notes VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'new on dn3')")
        .await
        .unwrap();
    let forced: Vec<(i64, u64, String)> = a.query("LOAD CONFIG TO RUNTIME FORCE").await.unwrap();
    assert_eq!(forced[0].1, 3, "{forced:?}");
    assert!(forced[0].2.contains(&format!("{db}.notes 3")), "{forced:?}");
    // The open connection follows at its next statement.
    let n: Option<i64> = app.query_first("SELECT COUNT(*) FROM notes").await.unwrap();
    assert_eq!(n, Some(4), "now read on dn3");
    let nodes: Vec<String> = a
        .query("SELECT name FROM runtime_nodes ORDER BY name")
        .await
        .unwrap();
    assert_eq!(nodes, ["dn1", "dn2", "dn3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_restart_and_roll_back() {
    let db = "adm_save";
    setup(db).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shardgate.toml");
    tests::write_config(&config(db), &path);
    let original = std::fs::read_to_string(&path).unwrap();
    {
        let p = Proxy::with_config_file(&path);
        let mut a = admin(&p).await;
        a.query_drop(
            "UPDATE rule_properties SET value = '4' WHERE rule = 'r_spare' AND property = 'shards'",
        )
        .await
        .unwrap();
        a.query_drop(format!(
            "UPDATE tables SET tables_per_node = 2 WHERE schema_name = '{db}' AND name = 'spare'"
        ))
        .await
        .unwrap();
        a.query_drop("INSERT INTO users (name, password, schemas) VALUES ('reporter', 'S3cret-Rep0rt', 'adm_save')")
            .await
            .unwrap();
        a.query_drop("LOAD CONFIG TO RUNTIME").await.unwrap();
        let saved: Vec<(String, String, String)> = a.query("SAVE CONFIG TO DISK").await.unwrap();
        assert_eq!(saved[0].1, format!("{}.1", path.display()));
        // The audit keeps who did what, never the password.
        let audit: Vec<(String, String, i64, i64)> = a
            .query("SELECT user, statement, version_before, version_after FROM config_audit ORDER BY id")
            .await
            .unwrap();
        assert!(audit.iter().all(|r| r.0 == DBA), "{audit:?}");
        assert!(!format!("{audit:?}").contains("S3cret"), "{audit:?}");
        assert!(audit
            .iter()
            .any(|r| r.1 == "LOAD CONFIG TO RUNTIME" && r.2 == 1 && r.3 == 2));
        assert!(!p.log().contains("S3cret"), "a password in the log");
    }
    let kept = std::fs::read_to_string(dir.path().join("shardgate.toml.1")).unwrap();
    assert_eq!(kept, original, "the previous file is kept as it was");

    // A restart reads the saved layout.
    let p = Proxy::with_config_file(&path);
    let mut app = p.conn(Some(db)).await;
    assert_eq!(
        route(&mut app, "SELECT * FROM spare WHERE k = 3").await[0].1,
        "SELECT * FROM `spare_3` WHERE k = 3"
    );
    let reporter = Conn::new(p.opts("reporter", "S3cret-Rep0rt", Some(db))).await;
    assert!(reporter.is_ok(), "the saved user logs in: {reporter:?}");
    let mut a = admin(&p).await;
    let history: Vec<(i64, String, String, String, String)> =
        a.query("SHOW CONFIG HISTORY").await.unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[1].4, "yes", "{history:?}");

    // Back to the first layout, in one statement.
    let back: Vec<(i64, u64, String)> = a.query("ROLLBACK CONFIG TO 1").await.unwrap();
    assert_eq!(back[0].0, 3, "{back:?}");
    let mut app = p.conn(Some(db)).await;
    assert_eq!(
        route(&mut app, "SELECT * FROM spare WHERE k = 3").await[0].1,
        "SELECT * FROM `spare_1` WHERE k = 3"
    );
    let e = Conn::new(p.opts("reporter", "S3cret-Rep0rt", Some(db)))
        .await
        .expect_err("the user is gone again");
    assert_eq!(error_code(&e), Some(1045));
    // EXPORT CONFIG is the file the next SAVE would write: it starts.
    let lines: Vec<String> = a.query("EXPORT CONFIG").await.unwrap();
    let exported = lines.join("\n");
    assert!(exported.contains("[rules.r_spare]"), "{exported}");
    proxy::config::Config::from_toml(&exported, "export").expect("the export is a valid config");
}

/// Polls `f` until it holds, for up to 10 s.
async fn eventually<F, Fut>(what: &str, mut f: F)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_and_operate_the_running_proxy() {
    let db = "adm_ops";
    setup(db).await;
    sandbox().sync().unwrap();
    let g = &sandbox().groups[0];
    let (primary, replica) = (g.primary.address(), g.replicas[0].address());
    let (primary_id, replica_id) = (g.primary.server_id, g.replicas[0].server_id);
    let p = Proxy::with_config(&config_with(db, &format!("replicas = [\"{replica}\"]")));
    let mut app = p.conn(Some(db)).await;
    let app_id: u64 = app
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    for id in [1, 3, 5] {
        let _: Option<i64> = app
            .query_first(format!("SELECT v FROM busy WHERE id = {id}"))
            .await
            .unwrap();
    }
    let _: Option<i64> = app.query_first("SELECT SLEEP(0.06)").await.unwrap();
    let mut a = admin(&p).await;

    // SHOW STATS: one row per statement shape.
    let stats: Vec<mysql_async::Row> = a.query("SHOW STATS").await.unwrap();
    let busy = stats
        .iter()
        .find(|r| {
            r.get::<String, _>("statement").as_deref() == Some("select v from busy where id = ?")
        })
        .unwrap_or_else(|| panic!("no digest row: {stats:?}"));
    assert_eq!(busy.get::<u64, _>("count"), Some(3));
    assert_eq!(busy.get::<u64, _>("errors"), Some(0));
    assert_eq!(busy.get::<u64, _>("rows"), Some(3));
    assert_eq!(
        busy.get::<String, _>("shards_per_statement").as_deref(),
        Some("1.00")
    );
    let slow: Vec<mysql_async::Row> = a.query("SHOW SLOW QUERIES").await.unwrap();
    assert_eq!(slow.len(), 1, "{slow:?}");
    assert_eq!(
        slow[0].get::<String, _>("statement").as_deref(),
        Some("SELECT SLEEP(0.06)")
    );
    assert_eq!(slow[0].get::<String, _>("user").as_deref(), Some(USER));
    a.query_drop("RESET STATS").await.unwrap();
    let stats: Vec<mysql_async::Row> = a.query("SHOW STATS").await.unwrap();
    assert!(stats.is_empty(), "{stats:?}");

    // SHOW SESSIONS lists the application's session.
    let sessions: Vec<mysql_async::Row> = a.query("SHOW SESSIONS").await.unwrap();
    let mine = sessions
        .iter()
        .find(|r| r.get::<u64, _>("id") == Some(app_id))
        .unwrap_or_else(|| panic!("session {app_id} not listed: {sessions:?}"));
    assert_eq!(mine.get::<String, _>("user").as_deref(), Some(USER));
    assert_eq!(mine.get::<String, _>("schema").as_deref(), Some(db));

    // PREVIEW: the route, nothing run; in the schema USE names, or by qualified name.
    a.query_drop(format!("USE {db}")).await.unwrap();
    let one: Vec<(String, Option<String>, String, String, String)> = a
        .query("PREVIEW SELECT * FROM busy WHERE id = 3")
        .await
        .unwrap();
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!((one[0].0.as_str(), one[0].2.as_str()), ("dn2", "read"));
    let all: Vec<(String, Option<String>, String, String, String)> = a
        .query("PREVIEW SELECT * FROM busy ORDER BY id LIMIT 2")
        .await
        .unwrap();
    let nodes: Vec<&str> = all.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(nodes, ["dn1", "dn2"], "{all:?}");
    assert!(
        all[0].3.contains("order") || all[0].3.contains("ORDER") || all[0].3.contains("sort"),
        "{all:?}"
    );
    let cli_preview = cli_ok(
        &p,
        &format!("PREVIEW UPDATE {db}.busy SET v = 0 WHERE id = 4"),
    );
    assert!(cli_preview.starts_with("dn1\t0\twrite\t"), "{cli_preview}");

    // A replica out of the read rotation and back.
    eventually("reads on the replica", || {
        let opts = p.opts(USER, PASSWORD, Some(db));
        async move {
            let mut c = Conn::new(opts).await.unwrap();
            c.query_first::<u32, _>("SELECT @@server_id").await.unwrap() == Some(replica_id)
        }
    })
    .await;
    a.query_drop(format!("SET REPLICA '{replica}' OFFLINE"))
        .await
        .unwrap();
    let nodes: Vec<mysql_async::Row> = a.query("SHOW NODES").await.unwrap();
    let rep = nodes
        .iter()
        .find(|r| r.get::<String, _>("Address").as_deref() == Some(replica.as_str()))
        .expect("the replica is listed");
    assert_eq!(rep.get::<String, _>("Serves_reads").as_deref(), Some("No"));
    assert!(rep
        .get::<String, _>("Excluded_because")
        .is_some_and(|e| e.contains("offline")));
    let mut c = p.conn(Some(db)).await;
    for _ in 0..5 {
        let id: Option<u32> = c.query_first("SELECT @@server_id").await.unwrap();
        assert_eq!(id, Some(primary_id), "reads stay off an offline replica");
    }
    a.query_drop(format!("SET REPLICA '{replica}' ONLINE"))
        .await
        .unwrap();
    eventually("reads back on the replica", || {
        let opts = p.opts(USER, PASSWORD, Some(db));
        async move {
            let mut c = Conn::new(opts).await.unwrap();
            c.query_first::<u32, _>("SELECT @@server_id").await.unwrap() == Some(replica_id)
        }
    })
    .await;

    // Writes switched to the replica's server, and back.
    let writer = |p: &Proxy| {
        let opts = p.opts(USER, PASSWORD, Some(db));
        async move {
            let mut c = Conn::new(opts).await.unwrap();
            c.query_first::<u32, _>("/* shardgate:primary */ SELECT @@server_id")
                .await
                .unwrap()
        }
    };
    assert_eq!(writer(&p).await, Some(primary_id));
    let switched = cli_ok(&p, &format!("SWITCH PRIMARY OF dn1 TO '{replica}'"));
    assert!(switched.contains("in effect"), "{switched}");
    assert_eq!(writer(&p).await, Some(replica_id));
    a.query_drop(format!("SWITCH PRIMARY OF dn1 TO '{primary}'"))
        .await
        .unwrap();
    assert_eq!(writer(&p).await, Some(primary_id));
    let sources: Vec<String> = a
        .query("SELECT source FROM config_history ORDER BY version")
        .await
        .unwrap();
    assert_eq!(
        sources,
        ["start", "switch primary of dn1", "switch primary of dn1"]
    );

    // KILL from the admin port ends any session.
    a.query_drop(format!("KILL {app_id}")).await.unwrap();
    assert!(
        app.query_drop("SELECT 1").await.is_err(),
        "the killed session is gone"
    );
    let audited: Vec<String> = a
        .query("SELECT statement FROM config_audit ORDER BY id")
        .await
        .unwrap();
    assert!(audited.iter().any(|s| s.starts_with("KILL")), "{audited:?}");
    assert!(
        audited.iter().any(|s| s.starts_with("SET REPLICA")),
        "{audited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_missing_tables_makes_what_the_staged_layout_needs() {
    let db = "adm_create";
    setup(db).await;
    let p = Proxy::with_config(&config(db));
    let mut a = admin(&p).await;
    // Eight shards of `spare`, four per node: spare_4 .. spare_7 do not exist yet.
    a.query_drop(
        "UPDATE rule_properties SET value = '8' WHERE rule = 'r_spare' AND property = 'shards'",
    )
    .await
    .unwrap();
    a.query_drop(format!(
        "UPDATE tables SET tables_per_node = 4 WHERE schema_name = '{db}' AND name = 'spare'"
    ))
    .await
    .unwrap();
    // And a broadcast table nothing defines.
    a.query_drop(format!(
        "INSERT INTO tables (schema_name, name, kind) VALUES ('{db}', 'ghost', 'broadcast')"
    ))
    .await
    .unwrap();
    let rows: Vec<(String, String, String, String)> =
        a.query("CREATE MISSING TABLES").await.unwrap();
    let created: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r.3.starts_with("created"))
        .map(|r| (r.0.clone(), r.2.clone()))
        .collect();
    assert_eq!(
        created,
        [
            ("dn1".to_string(), "spare_4".to_string()),
            ("dn2".to_string(), "spare_5".to_string()),
            ("dn1".to_string(), "spare_6".to_string()),
            ("dn2".to_string(), "spare_7".to_string()),
        ],
        "{rows:?}"
    );
    let ghosts: Vec<&(String, String, String, String)> =
        rows.iter().filter(|r| r.2 == "ghost").collect();
    assert_eq!(ghosts.len(), 2, "{rows:?}");
    assert!(ghosts.iter().all(|r| r.3.contains("no table")), "{rows:?}");
    // Created like the others: the same columns and keys.
    let mut d2 = direct(&sandbox().groups[1].primary, Some(db)).await;
    let (_, made): (String, String) = d2
        .query_first("SHOW CREATE TABLE spare_7")
        .await
        .unwrap()
        .unwrap();
    assert!(
        made.contains("`k` int(11) NOT NULL") && made.contains("PRIMARY KEY (`k`)"),
        "{made}"
    );
    // Run again: nothing left to create.
    let again: Vec<(String, String, String, String)> =
        a.query("CREATE MISSING TABLES").await.unwrap();
    assert!(again.iter().all(|r| r.2 == "ghost"), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_drivers_work_on_the_admin_port() {
    let db = "adm_python";
    setup(db).await;
    let p = Proxy::with_config(&config(db));
    let python = tests::python_env();
    let port = p.announced_port("admin").to_string();
    tests::run_checks(
        &python,
        "admin.py",
        &["127.0.0.1", &port, DBA, DBA_PASSWORD],
    );
}

/// The README's walk-through: a pass-through shardgate becomes one with a sharded
/// table over two nodes, in admin statements only, and the saved file starts it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_pass_through_to_a_sharded_table_in_admin_statements() {
    let db = "adm_walk";
    tests::recreate_db(sandbox(), db).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sg");
    let p = Proxy::passthrough_with(&addr(0), &[], &["--data-dir", data.to_str().unwrap()]);
    let mut app = p.conn(Some(db)).await;
    app.query_drop("CREATE TABLE orders (id BIGINT PRIMARY KEY, user_id INT NOT NULL, amount INT)")
        .await
        .unwrap();
    // The admin port takes the pass-through account.
    let mut a = Conn::new(p.admin_opts(USER, PASSWORD)).await.unwrap();
    for sql in [
        format!(
            "INSERT INTO nodes (name, primary_address, user, password) VALUES ('dn2', '{}', '{USER}', '{PASSWORD}')",
            addr(1)
        ),
        format!("INSERT INTO schemas (name, node) VALUES ('{db}', 'default')"),
        "INSERT INTO rules (name, algorithm) VALUES ('by_user', 'hash_mod')".to_string(),
        "INSERT INTO rule_properties (rule, property, value) VALUES ('by_user', 'shards', '4')".to_string(),
        format!(
            "INSERT INTO tables (schema_name, name, kind, shard_column, rule, nodes, tables_per_node) \
             VALUES ('{db}', 'orders', 'sharded', 'user_id', 'by_user', 'default,dn2', 2)"
        ),
    ] {
        a.query_drop(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let checked: Vec<(String, Option<String>, Option<String>, String)> =
        a.query("VALIDATE CONFIG").await.unwrap();
    assert_eq!(
        checked.last().map(|r| r.0.as_str()),
        Some("ok"),
        "{checked:?}"
    );
    let made: Vec<(String, String, String, String)> =
        a.query("CREATE MISSING TABLES").await.unwrap();
    assert_eq!(
        made.iter().filter(|r| r.3.starts_with("created")).count(),
        4,
        "{made:?}"
    );
    a.query_drop("LOAD CONFIG TO RUNTIME").await.unwrap();
    let saved: Vec<(String, String, String)> = a.query("SAVE CONFIG TO DISK").await.unwrap();
    assert_eq!(
        saved[0].0,
        data.join("shardgate.toml").display().to_string()
    );

    let mut app = p.conn(Some(db)).await;
    let rows: Vec<String> = (1..=40)
        .map(|i| format!("({i}, {}, {i})", i % 10))
        .collect();
    app.query_drop(format!(
        "INSERT INTO orders (id, user_id, amount) VALUES {}",
        rows.join(",")
    ))
    .await
    .unwrap();
    let mut on = Vec::new();
    for g in 0..2 {
        let mut d = direct(&sandbox().groups[g].primary, Some(db)).await;
        let mut n = 0i64;
        for t in ["orders_0000", "orders_0001", "orders_0002", "orders_0003"] {
            let c: Option<i64> = d
                .query_first(format!("SELECT COUNT(*) FROM {t}"))
                .await
                .unwrap_or(Some(0));
            n += c.unwrap_or(0);
        }
        on.push(n);
    }
    assert_eq!(on.iter().sum::<i64>(), 40, "{on:?}");
    assert!(on.iter().all(|&n| n > 0), "rows on both nodes: {on:?}");
    drop(a);
    drop(app);
    drop(p);

    // The saved file starts the same shardgate.
    let p = Proxy::with_config_file(&data.join("shardgate.toml"));
    let mut app = p.conn(Some(db)).await;
    let n: Option<i64> = app
        .query_first("SELECT COUNT(*) FROM orders")
        .await
        .unwrap();
    assert_eq!(n, Some(40));
    let mut a = Conn::new(p.admin_opts(USER, PASSWORD)).await.unwrap();
    let history: Vec<(i64, String, String, String, String)> =
        a.query("SHOW CONFIG HISTORY").await.unwrap();
    assert_eq!(history.len(), 2, "the history is kept: {history:?}");
}

/// `(year, month)` of now, in UTC, moved by `months`.
fn month(months: i64) -> (i64, i64) {
    let now = proxy::config::unix_now() as u64;
    let text = proxy::stats::utc(now);
    let y: i64 = text[0..4].parse().unwrap();
    let m: i64 = text[5..7].parse().unwrap();
    let total = y * 12 + (m - 1) + months;
    (total.div_euclid(12), total.rem_euclid(12) + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_ended_date_tables_are_created_ahead() {
    let db = "adm_dates";
    tests::recreate_db(sandbox(), db).await;
    let (y, m) = month(0);
    let (ny, nm) = month(1);
    let (fy, fm) = month(2);
    let this = format!("events_{y:04}{m:02}");
    let next = format!("events_{ny:04}{nm:02}");
    // This month's table exists (on dn1: period 0); next month's does not.
    let mut d1 = direct(&sandbox().groups[0].primary, Some(db)).await;
    d1.query_drop(format!(
        "CREATE TABLE {this} (id INT PRIMARY KEY, at DATETIME NOT NULL, what VARCHAR(20))"
    ))
    .await
    .unwrap();
    let body = format!(
        "{}\n[rules.by_month]\nalgorithm = \"date\"\nunit = \"month\"\nstart = \"{y:04}-{m:02}-01\"\n\
         time_zone = \"UTC\"\nopen_ended = true\nahead = 1\nsuffix_pattern = \"yyyyMM\"\n\
         [schemas.{db}.tables.events]\nkind = \"sharded\"\ncolumn = \"at\"\nrule = \"by_month\"\nnodes = [\"dn1\", \"dn2\"]\n",
        config(db)
    );
    let p = Proxy::with_config(&body);
    eventually("next month's table on dn2", || {
        let sql = format!(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = '{next}'"
        );
        async move {
            let mut d2 = direct(&sandbox().groups[1].primary, Some(db)).await;
            d2.query_first::<i64, _>(sql).await.unwrap() == Some(1)
        }
    })
    .await;
    let mut d2 = direct(&sandbox().groups[1].primary, Some(db)).await;
    let (_, made): (String, String) = d2
        .query_first(format!("SHOW CREATE TABLE {next}"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        made.contains("`what` varchar(20)"),
        "created like this month's: {made}"
    );
    let mut a = admin(&p).await;
    let shown: Vec<(String, String, String, String, String, String)> =
        a.query("SHOW DATE TABLES").await.unwrap();
    let periods: Vec<(&str, &str, &str, &str)> = shown
        .iter()
        .map(|r| (r.1.as_str(), r.2.as_str(), r.3.as_str(), r.5.as_str()))
        .collect();
    let (this_p, next_p) = (format!("{y:04}{m:02}"), format!("{ny:04}{nm:02}"));
    assert_eq!(
        periods,
        [
            (this_p.as_str(), "current", "dn1", "yes"),
            (next_p.as_str(), "ahead", "dn2", "yes")
        ]
    );
    // Rows of next month go to its table; later ones are refused, clearly.
    let mut app = p.conn(Some(db)).await;
    app.query_drop(format!(
        "INSERT INTO events (id, at, what) VALUES (1, '{ny:04}-{nm:02}-02 10:00:00', 'soon')"
    ))
    .await
    .unwrap();
    let n: Option<i64> = d2
        .query_first(format!("SELECT COUNT(*) FROM {next}"))
        .await
        .unwrap();
    assert_eq!(n, Some(1));
    let e = app
        .query_drop(format!(
            "INSERT INTO events (id, at, what) VALUES (2, '{fy:04}-{fm:02}-02 10:00:00', 'later')"
        ))
        .await
        .expect_err("a period without a table yet");
    assert!(e.to_string().contains("not created yet"), "{e}");
}
