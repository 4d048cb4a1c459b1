//! The admin port's config verbs: DBAs stage layout changes in SQL tables, validate
//! them, put them in effect under client load without dropping a client, save them to
//! the config file, and roll back; invalid edits and edits that would strand rows are
//! refused. Driven with the `mysql` command-line client and with mysql_async. One
//! sandbox (three groups, the third a spare node) for the binary; each test has its
//! own schema.

mod admin_common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use admin_common::*;
use mysql_async::prelude::*;
use mysql_async::Conn;
use tests::{direct, error_code, Proxy, PASSWORD, USER};

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
    assert!(text.contains("3 existing rows are not where"), "{text}");
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

/// Placement changes count exactly the rows the new layout would miss or misread:
/// shards turned into copies hold a part each (every row is missing somewhere); copies
/// turned into a single table are found when it is one of them; a schema dropped
/// from the layout leaves all its rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_changes_count_rows_exactly() {
    let db = "adm_count";
    setup(db).await;
    let p = Proxy::with_config(&config(db));
    let mut a = admin(&p).await;
    // `busy` (20 rows, mod 2, table `busy` on each node) as a broadcast table: each
    // node has only its half, so every row is missing from one copy.
    a.query_drop(format!(
        "UPDATE tables SET kind = 'broadcast', shard_column = NULL, rule = NULL WHERE schema_name = '{db}' AND name = 'busy'"
    ))
    .await
    .unwrap();
    let e = a
        .query_drop("LOAD CONFIG TO RUNTIME")
        .await
        .expect_err("shards are not copies");
    assert!(e.to_string().contains("20 existing rows"), "{e}");
    a.query_drop("LOAD CONFIG FROM DISK").await.unwrap();

    // `countries` as a broadcast table (empty: fine), filled through shardgate, then
    // single on dn2, one of its copies: nothing is missed.
    a.query_drop(format!(
        "INSERT INTO tables (schema_name, name, kind) VALUES ('{db}', 'countries', 'broadcast')"
    ))
    .await
    .unwrap();
    a.query_drop("LOAD CONFIG TO RUNTIME").await.unwrap();
    let mut app = p.conn(Some(db)).await;
    app.query_drop("INSERT INTO countries VALUES ('de'), ('fr'), ('it')")
        .await
        .unwrap();
    a.query_drop(format!(
        "UPDATE tables SET kind = 'single', node = 'dn2' WHERE schema_name = '{db}' AND name = 'countries'"
    ))
    .await
    .unwrap();
    let loaded: Vec<(i64, u64, String)> = a.query("LOAD CONFIG TO RUNTIME").await.unwrap();
    assert_eq!(loaded[0].1, 0, "{loaded:?}");

    // The schema dropped from the layout: its rows are looked for nowhere.
    a.query_drop(format!("DELETE FROM tables WHERE schema_name = '{db}'"))
        .await
        .unwrap();
    a.query_drop(format!(
        "UPDATE schemas SET name = '{db}_new' WHERE name = '{db}'"
    ))
    .await
    .unwrap();
    let e = a
        .query_drop("LOAD CONFIG TO RUNTIME")
        .await
        .expect_err("a dropped schema with rows");
    let text = e.to_string();
    assert!(
        text.contains(&format!("{db}.busy: 20 of 20 rows")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{db}.countries: 3 of 3 rows")),
        "{text}"
    );
    let forced: Vec<(i64, u64, String)> = a.query("LOAD CONFIG TO RUNTIME FORCE").await.unwrap();
    assert_eq!(forced[0].1, 23, "{forced:?}");
}

/// LOAD CONFIG FROM DISK stages the file as the config file's form reads it: a user
/// written without `privileges` keeps the default rights through a LOAD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_staged_from_disk_keeps_default_rights() {
    let db = "adm_disk";
    setup(db).await;
    let p = Proxy::with_config(&config(db));
    let mut a = admin(&p).await;
    a.query_drop("LOAD CONFIG FROM DISK").await.unwrap();
    let diff: Vec<(String, Option<String>, Option<String>)> =
        a.query("SHOW CONFIG DIFF").await.unwrap();
    assert!(diff.is_empty(), "the file is what runs: {diff:?}");
    a.query_drop("LOAD CONFIG TO RUNTIME").await.unwrap();
    let mut app = p.conn(Some(db)).await;
    app.query_drop("UPDATE busy SET v = v + 1 WHERE id = 2")
        .await
        .expect("the user still writes");
}

/// A reload outside the admin port while a DBA has edits staged: the staged entries
/// the DBA did not touch follow it, so the DBA's LOAD does not undo the reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_load_never_undoes_an_outside_change() {
    let db = "adm_rebase";
    setup(db).await;
    let p = Proxy::with_config(&config(db));
    let mut a = admin(&p).await;
    a.query_drop("UPDATE settings SET value = '250' WHERE name = 'reads.causal_wait_ms'")
        .await
        .unwrap();
    // The file changes another setting, and shardgate reloads it (SIGHUP).
    p.reload(&format!(
        "{}\n[reads]\nmax_replica_lag_ms = 777\n",
        config(db)
    ));
    let lag = || async {
        let mut a = admin(&p).await;
        let v: Option<String> = a
            .query_first(
                "SELECT value FROM runtime_settings WHERE name = 'reads.max_replica_lag_ms'",
            )
            .await
            .unwrap();
        v
    };
    eventually("the reload in effect", || async {
        lag().await.as_deref() == Some("777")
    })
    .await;
    let diff: Vec<(String, Option<String>, Option<String>)> =
        a.query("SHOW CONFIG DIFF").await.unwrap();
    assert_eq!(
        diff,
        [(
            "reads.causal_wait_ms".to_string(),
            Some("1000".to_string()),
            Some("250".to_string())
        )],
        "only the DBA's own edit differs"
    );
    a.query_drop("LOAD CONFIG TO RUNTIME").await.unwrap();
    assert_eq!(
        lag().await.as_deref(),
        Some("777"),
        "the reload is not undone"
    );
}
