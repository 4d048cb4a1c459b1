//! The admin port on the running proxy: SHOW STATS / SLOW QUERIES / SESSIONS / NODES,
//! PREVIEW, KILL, replicas in and out of rotation, SWITCH PRIMARY, CREATE MISSING
//! TABLES, open-ended date tables created ahead, the README walk-through from a
//! pass-through shardgate, and Python drivers. One sandbox for the binary.

mod admin_common;

use admin_common::*;
use mysql_async::prelude::*;
use mysql_async::Conn;
use tests::{direct, Proxy, PASSWORD, USER};

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

/// What a DBA may type by mistake gets a clear error, and the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_admin_input_gets_clear_errors() {
    let db = "adm_odd";
    setup(db).await;
    let p = Proxy::with_config(&config(db));
    let mut a = admin(&p).await;
    let code = |e: mysql_async::Error| tests::error_code(&e);
    // Text that is not UTF-8 is shown, not a failure.
    let v: Vec<Option<String>> = a.query("SELECT CAST(X'C328' AS TEXT)").await.unwrap();
    assert_eq!(v.len(), 1);
    let empty = a.query_drop("/* nothing */").await.expect_err("empty");
    assert_eq!(code(empty), Some(1065));
    let typo = a
        .query_drop("SET REPLICA '127.0.0.1:1' OFLINE")
        .await
        .expect_err("a typo is not done");
    assert_eq!(code(typo), Some(1064));
    let unknown = a
        .query_drop("USE no_such_schema")
        .await
        .expect_err("unknown");
    assert_eq!(code(unknown), Some(1049));
    // Verbs after a comment, and SHOW TABLES.
    let checked: Vec<(String, Option<String>, Option<String>, String)> =
        a.query("/* ci */ VALIDATE CONFIG").await.unwrap();
    assert_eq!(checked.last().map(|r| r.0.as_str()), Some("ok"));
    let tables: Vec<String> = a.query("SHOW TABLES").await.unwrap();
    assert!(tables.iter().any(|t| t == "runtime_nodes"), "{tables:?}");
    // Every bad entry at once, each under its key.
    a.query_drop("INSERT INTO rule_properties VALUES ('r_busy', 'shardz', '3')")
        .await
        .unwrap();
    a.query_drop("UPDATE nodes SET user = '' WHERE name = 'dn2'")
        .await
        .unwrap();
    a.query_drop(format!(
        "UPDATE tables SET tables_per_node = 'two' WHERE schema_name = '{db}' AND name = 'spare'"
    ))
    .await
    .unwrap();
    let rows: Vec<(String, Option<String>, Option<String>, String)> =
        a.query("VALIDATE CONFIG").await.unwrap();
    let keys: Vec<&str> = rows.iter().filter_map(|r| r.1.as_deref()).collect();
    for key in [
        "rules.r_busy.shardz",
        &format!("schemas.{db}.tables.spare.tables_per_node"),
    ] {
        assert!(keys.contains(&key), "{key} in {rows:?}");
    }
    // Statements on many shards count them in SHOW STATS.
    a.query_drop("LOAD CONFIG FROM DISK").await.unwrap();
    let mut app = p.conn(Some(db)).await;
    app.query_drop("INSERT INTO busy (id, v) VALUES (100, 1), (101, 1)")
        .await
        .unwrap();
    app.query_drop("UPDATE busy SET v=v+1 WHERE id >= 100")
        .await
        .unwrap();
    let stats: Vec<mysql_async::Row> = a.query("SHOW STATS").await.unwrap();
    let of = |text: &str| {
        stats
            .iter()
            .find(|r| r.get::<String, _>("statement").as_deref() == Some(text))
            .unwrap_or_else(|| panic!("no `{text}` in {stats:?}"))
            .clone()
    };
    let insert = of("insert into busy(id, v) values(?),(?)");
    assert_eq!(
        insert.get::<String, _>("shards_per_statement").as_deref(),
        Some("2.00")
    );
    assert_eq!(insert.get::<u64, _>("rows"), Some(2));
    let update = of("update busy set v = v + ? where id >= ?");
    assert_eq!(update.get::<u64, _>("rows"), Some(2));
    // The session is still fine.
    let one: Option<i64> = a.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}
