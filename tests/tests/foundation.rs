//! The foundation end to end: login, round trips, read/write split, hints, metadata
//! fidelity, the mysql CLI, raw protocol edge cases — all through the real binary
//! against one shared sandbox (a primary and two replicas).

use std::collections::HashMap;
use std::process::Command;
use std::sync::OnceLock;

use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};
use tests::raw::{err_code, RawClient};
use tests::{direct, error_code, Proxy, Sandbox, PASSWORD, USER};

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[2]).expect("start the MariaDB sandbox"))
}

fn primary_id() -> u32 {
    sandbox().groups[0].primary.server_id
}

fn replica_ids() -> Vec<u32> {
    sandbox().groups[0]
        .replicas
        .iter()
        .map(|r| r.server_id)
        .collect()
}

fn passthrough() -> Proxy {
    let g = &sandbox().groups[0];
    let replicas: Vec<String> = g.replicas.iter().map(|r| r.address()).collect();
    Proxy::passthrough(&g.primary.address(), &replicas)
}

/// A database of the test's own, created on the primary and replicated.
async fn fresh_db(proxy: &Proxy, name: &str) -> Conn {
    let mut c = proxy.conn(None).await;
    c.query_drop(format!("DROP DATABASE IF EXISTS {name}"))
        .await
        .unwrap();
    c.query_drop(format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    c.query_drop(format!("USE {name}")).await.unwrap();
    // Replicas must know the database before reads can use it there.
    sandbox().sync().unwrap();
    c
}

async fn server_id(c: &mut Conn, sql: &str) -> u32 {
    c.query_first::<u32, _>(sql).await.unwrap().unwrap()
}

#[tokio::test]
async fn login_accepts_good_and_rejects_bad_passwords() {
    let proxy = passthrough();
    let mut c = proxy.conn(None).await;
    assert_eq!(c.query_first::<i64, _>("SELECT 1").await.unwrap(), Some(1));
    c.disconnect().await.unwrap();

    for (user, pass) in [(USER, "wrong"), ("nobody", PASSWORD), (USER, "")] {
        let err = Conn::new(proxy.opts(user, pass, None)).await.unwrap_err();
        assert_eq!(error_code(&err), Some(1045), "{user}/{pass}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("Access denied"), "{msg}");
    }
}

#[tokio::test]
async fn caching_sha2_logins_take_the_fast_path() {
    let proxy = passthrough();
    let (mut raw, ok) = RawClient::connect_as(&proxy.addr(), USER, PASSWORD, true).unwrap();
    assert_eq!(ok[0], 0x00, "{}", String::from_utf8_lossy(&ok));
    assert!(
        raw.fast_auth,
        "no auth switch, fast authentication succeeded"
    );
    let (_, rows) = raw.command(b"\x03SELECT 1").unwrap();
    assert_eq!(rows.len(), 1);
    let (_, bad) = RawClient::connect_as(&proxy.addr(), USER, "nope", true).unwrap();
    assert_eq!(err_code(&bad), Some(1045));
}

#[tokio::test]
async fn packets_over_max_allowed_packet_get_1153() {
    let g = &sandbox().groups[0];
    let proxy = Proxy::with_config(&format!(
        "passthrough_node = \"dn1\"\n[[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\nschemas = [\"*\"]\n\
         [nodes.dn1]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [server]\nmax_allowed_packet = 1048576\n",
        g.primary.address()
    ));
    let (mut raw, _) = RawClient::connect(&proxy.addr(), USER, PASSWORD).unwrap();
    let mut q = b"\x03SELECT '".to_vec();
    q.extend(std::iter::repeat_n(b'a', 2 * 1024 * 1024));
    q.push(b'\'');
    let (p, _) = raw.command(&q).unwrap();
    assert_eq!(err_code(&p), Some(1153));
    assert!(String::from_utf8_lossy(&p).contains("max_allowed_packet"));
}

#[tokio::test]
async fn connections_past_max_connections_get_1040() {
    let g = &sandbox().groups[0];
    let proxy = Proxy::with_config(&format!(
        "passthrough_node = \"dn1\"\n[[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\nschemas = [\"*\"]\n\
         [nodes.dn1]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [server]\nmax_connections = 2\n",
        g.primary.address()
    ));
    let mut a = proxy.conn(None).await;
    let _b = proxy.conn(None).await;
    let err = Conn::new(proxy.opts(USER, PASSWORD, None))
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), Some(1040), "{err}");
    assert_eq!(a.query_first::<i64, _>("SELECT 1").await.unwrap(), Some(1));
    a.disconnect().await.unwrap();
    // A freed slot is usable again.
    let mut c = proxy.conn(None).await;
    assert_eq!(c.query_first::<i64, _>("SELECT 2").await.unwrap(), Some(2));
}

#[tokio::test]
async fn idle_clients_are_closed_after_the_idle_timeout() {
    let g = &sandbox().groups[0];
    let proxy = Proxy::with_config(&format!(
        "passthrough_node = \"dn1\"\n[[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\nschemas = [\"*\"]\n\
         [nodes.dn1]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [server]\nclient_idle_timeout_ms = 700\n",
        g.primary.address()
    ));
    let mut c = proxy.conn(None).await;
    for _ in 0..3 {
        // Busy clients stay connected however long they live.
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        assert_eq!(c.query_first::<i64, _>("SELECT 1").await.unwrap(), Some(1));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(
        c.query_drop("SELECT 1").await.is_err(),
        "idle connection still open"
    );
    let mut fresh = proxy.conn(None).await;
    assert_eq!(
        fresh.query_first::<i64, _>("SELECT 2").await.unwrap(),
        Some(2)
    );
}

#[tokio::test]
async fn sigterm_finishes_statements_in_flight_and_refuses_new_clients() {
    let mut proxy = passthrough();
    let mut busy = proxy.conn(None).await;
    let mut idle = proxy.conn(None).await;
    assert_eq!(
        idle.query_first::<i64, _>("SELECT 1").await.unwrap(),
        Some(1)
    );
    let slow = tokio::spawn(async move {
        let r: Option<i64> = busy
            .query_first("/* shardgate:primary */ SELECT SLEEP(2) + 7")
            .await
            .unwrap();
        r
    });
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    proxy.terminate();
    // The statement in flight completes with its result.
    assert_eq!(slow.await.unwrap(), Some(7));
    let status = proxy.wait_exit(std::time::Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    // Idle sessions were closed and the port no longer accepts clients.
    assert!(idle.query_drop("SELECT 1").await.is_err());
    assert!(Conn::new(proxy.opts(USER, PASSWORD, None)).await.is_err());
}

#[tokio::test]
async fn crud_and_ddl_round_trip() {
    let proxy = passthrough();
    let mut c = fresh_db(&proxy, "t_crud").await;
    c.query_drop(
        "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20), qty INT)",
    )
    .await
    .unwrap();
    c.query_drop("INSERT INTO items (name, qty) VALUES ('a', 1), ('b', 2), ('c', 3)")
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 3);
    assert_eq!(c.last_insert_id(), Some(1));
    c.query_drop("UPDATE items SET qty = qty * 10 WHERE qty >= 2")
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 2);
    c.query_drop("DELETE FROM items WHERE name = 'a'")
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 1);
    c.query_drop("ALTER TABLE items ADD COLUMN note TEXT")
        .await
        .unwrap();

    // Read your write on the primary at once, and on a replica once replicated.
    let rows: Vec<(String, i32, Option<String>)> = c
        .query("/* shardgate:primary */ SELECT name, qty, note FROM items ORDER BY id")
        .await
        .unwrap();
    assert_eq!(rows, vec![("b".into(), 20, None), ("c".into(), 30, None)]);
    sandbox().sync().unwrap();
    let rows: Vec<(String, i32)> = c
        .query("SELECT name, qty FROM items ORDER BY id")
        .await
        .unwrap();
    assert_eq!(rows, vec![("b".into(), 20), ("c".into(), 30)]);

    c.query_drop("DROP TABLE items").await.unwrap();
    let err = c
        .query_drop("/* shardgate:primary */ SELECT * FROM items")
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), Some(1146));
}

#[tokio::test]
async fn reads_go_to_replicas_and_everything_else_to_the_primary() {
    let proxy = passthrough();
    let mut c = fresh_db(&proxy, "t_split").await;
    let (primary, replicas) = (primary_id(), replica_ids());

    for _ in 0..4 {
        let id = server_id(&mut c, "SELECT @@server_id").await;
        assert!(replicas.contains(&id), "plain read answered by {id}");
    }
    assert_eq!(
        server_id(&mut c, "/* shardgate:primary */ SELECT @@server_id").await,
        primary
    );
    assert_eq!(
        server_id(&mut c, "SELECT @@server_id FROM DUAL FOR UPDATE").await,
        primary
    );
    assert_eq!(
        server_id(&mut c, "SELECT @@server_id FROM DUAL LOCK IN SHARE MODE").await,
        primary
    );

    c.query_drop("CREATE TABLE w (v INT)").await.unwrap();
    c.query_drop("INSERT INTO w VALUES (@@server_id)")
        .await
        .unwrap();
    sandbox().sync().unwrap();
    assert_eq!(
        c.query_first::<u32, _>("SELECT v FROM w").await.unwrap(),
        Some(primary)
    );

    // Inside a transaction every statement, reads included, runs on the primary.
    c.query_drop("BEGIN").await.unwrap();
    assert_eq!(server_id(&mut c, "SELECT @@server_id").await, primary);
    c.query_drop("INSERT INTO w VALUES (2)").await.unwrap();
    assert_eq!(
        c.query_first::<i64, _>("SELECT COUNT(*) FROM w")
            .await
            .unwrap(),
        Some(2)
    );
    c.query_drop("ROLLBACK").await.unwrap();
    assert!(replicas.contains(&server_id(&mut c, "SELECT @@server_id").await));
    assert_eq!(
        c.query_first::<i64, _>("/* shardgate:primary */ SELECT COUNT(*) FROM w")
            .await
            .unwrap(),
        Some(1)
    );

    // mysql_async's own transaction API (START TRANSACTION ... COMMIT).
    let mut tx = c.start_transaction(Default::default()).await.unwrap();
    assert_eq!(
        tx.query_first::<u32, _>("SELECT @@server_id")
            .await
            .unwrap(),
        Some(primary)
    );
    tx.commit().await.unwrap();

    // autocommit off makes every statement part of a transaction.
    c.query_drop("SET autocommit = 0").await.unwrap();
    assert_eq!(server_id(&mut c, "SELECT @@server_id").await, primary);
}

#[tokio::test]
async fn weighted_round_robin_spreads_reads_by_weight() {
    let g = &sandbox().groups[0];
    let proxy = Proxy::with_config(&format!(
        "passthrough_node = \"dn1\"\n[[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\nschemas = [\"*\"]\n\
         [nodes.dn1]\nprimary = \"{}\"\nreplicas = [{{ address = \"{}\", weight = 1 }}, {{ address = \"{}\", weight = 3 }}]\n\
         user = \"{USER}\"\npassword = \"{PASSWORD}\"\n",
        g.primary.address(),
        g.replicas[0].address(),
        g.replicas[1].address()
    ));
    let mut c = proxy.conn(None).await;
    let mut seen: HashMap<u32, usize> = HashMap::new();
    for _ in 0..80 {
        *seen
            .entry(server_id(&mut c, "SELECT @@server_id").await)
            .or_default() += 1;
    }
    let light = seen.get(&g.replicas[0].server_id).copied().unwrap_or(0);
    let heavy = seen.get(&g.replicas[1].server_id).copied().unwrap_or(0);
    assert_eq!(light + heavy, 80, "primary answered reads: {seen:?}");
    assert!(
        (16..=24).contains(&light) && (56..=64).contains(&heavy),
        "{seen:?}"
    );
}

const TYPES_TABLE: &str = "CREATE TABLE types (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ti TINYINT, si SMALLINT UNSIGNED, mi MEDIUMINT, i INT NOT NULL DEFAULT 0,
    d DECIMAL(12,4), f FLOAT, db DOUBLE, b BIT(5), yr YEAR,
    dt DATE, tm TIME(3), dtm DATETIME(6), ts TIMESTAMP NULL,
    c CHAR(3) CHARACTER SET latin1, vc VARCHAR(100), vb VARBINARY(10), bl BLOB, tx LONGTEXT,
    e ENUM('x','y'), st SET('a','b'), js JSON, u UUID, ip INET6, g POINT
)";

const TYPES_ROW: &str = "INSERT INTO types VALUES (NULL, -5, 65535, -8388608, 7, 12345678.1234, 1.5, -2.25e100,
    b'10101', 2024, '2024-02-29', '-838:59:59.999', '2024-12-31 23:59:59.999999', '2038-01-19 03:14:07',
    'abc', 'héllo wörld ✓', x'00ff10', x'deadbeef', REPEAT('long ', 1000), 'y', 'a,b', '{\"k\": [1, 2]}',
    '123e4567-e89b-12d3-a456-426614174000', '::1', ST_PointFromText('POINT(1 2)'))";

fn describe(columns: &[mysql_async::Column]) -> Vec<String> {
    columns.iter().map(|c| format!("{c:?}")).collect()
}

#[tokio::test]
async fn column_metadata_and_values_match_a_direct_connection() {
    let proxy = passthrough();
    let mut c = fresh_db(&proxy, "t_types").await;
    c.query_drop(TYPES_TABLE).await.unwrap();
    c.query_drop(TYPES_ROW).await.unwrap();
    c.query_drop(TYPES_ROW).await.unwrap();
    sandbox().sync().unwrap();

    // The proxy reads from a replica; compare with that same server directly. (A new
    // connection: `c` inserted with AUTO_INCREMENT, which pins it to the primary.)
    let mut c = proxy.conn(Some("t_types")).await;
    let id = server_id(&mut c, "SELECT @@server_id").await;
    let g = &sandbox().groups[0];
    let replica = g.replicas.iter().find(|r| r.server_id == id).unwrap();
    let mut d = direct(replica, Some("t_types")).await;

    for sql in [
        "SELECT * FROM types ORDER BY id",
        "SELECT id, i + 1 AS x, CONCAT(vc, '!') AS y, NULL AS z FROM types",
    ] {
        let via: Vec<Row> = c.query(sql).await.unwrap();
        let straight: Vec<Row> = d.query(sql).await.unwrap();
        assert_eq!(via.len(), 2);
        assert_eq!(
            describe(&via[0].columns()),
            describe(&straight[0].columns()),
            "{sql}"
        );
        let values =
            |rows: &[Row]| -> Vec<Vec<Value>> { rows.iter().map(|r| r.clone().unwrap()).collect() };
        assert_eq!(values(&via), values(&straight), "{sql}");
    }

    // Binary protocol: prepared statements with parameters.
    let sql = "SELECT * FROM types WHERE id = ? AND i = ?";
    let via: Vec<Row> = c.exec(sql, (1u64, 7i32)).await.unwrap();
    let straight: Vec<Row> = d.exec(sql, (1u64, 7i32)).await.unwrap();
    assert_eq!(via.len(), 1);
    assert_eq!(
        describe(&via[0].columns()),
        describe(&straight[0].columns())
    );
    assert_eq!(via[0].clone().unwrap(), straight[0].clone().unwrap());
}

fn cli(port: u16, args: &[&str], sql: &str) -> (bool, String, String) {
    let out = Command::new(&sandbox().binaries().client)
        .arg("--no-defaults")
        .arg("-h127.0.0.1")
        .arg(format!("-P{port}"))
        .arg(format!("-u{USER}"))
        .arg(format!("-p{PASSWORD}"))
        .args(args)
        .arg("-e")
        .arg(sql)
        .output()
        .expect("run the mariadb client");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn mysql_cli_sees_what_a_direct_connection_sees() {
    let proxy = passthrough();
    let mut c = fresh_db(&proxy, "t_cli").await;
    c.query_drop(TYPES_TABLE).await.unwrap();
    c.query_drop(TYPES_ROW).await.unwrap();
    sandbox().sync().unwrap();
    let primary = &sandbox().groups[0].primary;

    let sql = "SELECT id, ti, d, dt, dtm, c, vc, HEX(vb), e, st, js, u, ip FROM types; \
               SHOW COLUMNS FROM types; SELECT COUNT(*) AS n FROM types";
    for mode in [
        &["--table", "t_cli"][..],
        &["--batch", "t_cli"][..],
        &["--xml", "t_cli"][..],
    ] {
        let (ok, via, err) = cli(proxy.port, mode, sql);
        assert!(ok, "{err}");
        let (ok, straight, err) = cli(primary.port, mode, sql);
        assert!(ok, "{err}");
        assert_eq!(via, straight, "mode {mode:?}");
    }

    // Interactive-style use: the client's own commands and an error.
    let (ok, out, _) = cli(
        proxy.port,
        &["--batch", "--skip-column-names", "-c"],
        "/* shardgate:primary */ SELECT @@server_id",
    );
    assert!(ok);
    assert_eq!(out.trim(), primary.server_id.to_string());
    let (ok, _, err) = cli(proxy.port, &["t_cli"], "SELECT * FROM no_such_table");
    assert!(!ok);
    assert!(err.contains("ERROR 1146"), "{err}");
    let (ok, out, err) = cli(
        proxy.port,
        &["--batch"],
        "USE t_cli; SELECT DATABASE();\nstatus",
    );
    assert!(ok, "{err}");
    assert!(out.contains("t_cli"), "{out}");
}

#[tokio::test]
async fn protocol_edge_cases_keep_the_session() {
    let proxy = passthrough();
    let (mut raw, ok) = RawClient::connect(&proxy.addr(), USER, PASSWORD).unwrap();
    assert_eq!(ok[0], 0x00, "login OK");

    // An unknown command: 1047, and the connection stays usable.
    let (p, _) = raw.command(&[0x20, 1, 2, 3]).unwrap();
    assert_eq!(err_code(&p), Some(1047));
    let (p, _) = raw.command(&[0x0e]).unwrap();
    assert_eq!(p[0], 0x00, "ping after unknown command");

    // Query text that is not UTF-8 reaches MariaDB, which answers; the session goes on.
    let (p, rows) = raw.command(b"\x03SELECT HEX('a\xff\xfe') AS h").unwrap();
    assert_ne!(p[0], 0xFF, "{:?}", String::from_utf8_lossy(&p));
    assert_eq!(rows.len(), 1);
    let (p, _) = raw.command(b"\x03SELECT 1 /* \xc3\x28 broken */").unwrap();
    assert_ne!(p[0], 0xFF);

    // A bad hint is a clear error, not a silent fallback.
    let (p, _) = raw
        .command(b"\x03/* shardgate:primray */ SELECT 1")
        .unwrap();
    assert_eq!(err_code(&p), Some(1064));
    assert!(String::from_utf8_lossy(&p).contains("primray"));

    // Unknown database: 1049, session survives.
    let (p, _) = raw.command(b"\x02no_such_db").unwrap();
    assert_eq!(err_code(&p), Some(1049));
    let (p, rows) = raw.command(b"\x03SELECT 42").unwrap();
    assert_eq!((p[0], rows.len()), (1, 1));

    // Empty query: MariaDB's own error comes back.
    let (p, _) = raw.command(b"\x03").unwrap();
    assert_eq!(err_code(&p), Some(1065));
}

#[tokio::test]
async fn large_packets_cross_in_both_directions() {
    let proxy = passthrough();
    let mut c = fresh_db(&proxy, "t_large").await;
    c.query_drop("CREATE TABLE blobs (id INT PRIMARY KEY, b LONGBLOB)")
        .await
        .unwrap();
    // 20 MiB: more than one 16 MiB packet each way.
    let big: Vec<u8> = (0..20 * 1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    c.exec_drop("INSERT INTO blobs VALUES (1, ?)", (big.clone(),))
        .await
        .unwrap();
    let back: Vec<u8> = c
        .query_first("/* shardgate:primary */ SELECT b FROM blobs WHERE id = 1")
        .await
        .unwrap()
        .unwrap();
    assert!(back == big, "blob changed on the way");

    // A COM_QUERY of exactly 16 MiB - 1 bytes (command byte included) is followed by an
    // empty packet; the proxy must re-frame it identically.
    let prefix = b"\x03INSERT INTO blobs VALUES (2, '";
    let suffix = b"')";
    let fill = 0xFF_FFFF - prefix.len() - suffix.len();
    let mut q = prefix.to_vec();
    q.extend(std::iter::repeat_n(b'z', fill));
    q.extend_from_slice(suffix);
    assert_eq!(q.len(), 0xFF_FFFF);
    let (mut raw, _) = RawClient::connect(&proxy.addr(), USER, PASSWORD).unwrap();
    raw.command(b"\x02t_large").unwrap();
    let (p, _) = raw.command(&q).unwrap();
    assert_eq!(p[0], 0x00, "{}", String::from_utf8_lossy(&p));
    let n: Option<i64> = c
        .query_first("/* shardgate:primary */ SELECT LENGTH(b) FROM blobs WHERE id = 2")
        .await
        .unwrap();
    assert_eq!(n, Some(fill as i64));
}

#[tokio::test]
async fn session_state_stays_with_its_session() {
    let proxy = passthrough();
    let mut a = fresh_db(&proxy, "t_state").await;
    let mut b = proxy.conn(Some("t_state")).await;

    a.query_drop("SET @secret = 41").await.unwrap();
    a.query_drop("SET SESSION sql_mode = 'ANSI_QUOTES'")
        .await
        .unwrap();
    assert_eq!(
        a.query_first::<i64, _>("SELECT @secret + 1").await.unwrap(),
        Some(42)
    );
    assert_eq!(
        a.query_first::<String, _>("SELECT @@sql_mode")
            .await
            .unwrap()
            .as_deref(),
        Some("ANSI_QUOTES")
    );

    // Many statements from another client, sharing the backend pools, never see it.
    for _ in 0..20 {
        assert_eq!(
            b.query_first::<Option<i64>, _>("SELECT @secret")
                .await
                .unwrap(),
            Some(None)
        );
        assert_ne!(
            b.query_first::<String, _>("/* shardgate:primary */ SELECT @@sql_mode")
                .await
                .unwrap()
                .as_deref(),
            Some("ANSI_QUOTES")
        );
    }

    // LAST_INSERT_ID() answers for this session's own insert.
    a.query_drop("CREATE TABLE seq (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    a.query_drop("INSERT INTO seq (v) VALUES (1), (2)")
        .await
        .unwrap();
    b.query_drop("INSERT INTO seq (v) VALUES (3)")
        .await
        .unwrap();
    assert_eq!(
        a.query_first::<i64, _>("SELECT LAST_INSERT_ID()")
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        b.query_first::<i64, _>("SELECT LAST_INSERT_ID()")
            .await
            .unwrap(),
        Some(3)
    );

    // Warnings are read from the connection that produced them.
    b.query_drop("SELECT CAST('12abc' AS SIGNED)")
        .await
        .unwrap();
    let warnings: Vec<(String, u32, String)> = b.query("SHOW WARNINGS").await.unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].1, 1292);

    // After COM_RESET_CONNECTION the variable is gone.
    a.reset().await.unwrap();
    assert_eq!(
        a.query_first::<Option<i64>, _>("SELECT @secret")
            .await
            .unwrap(),
        Some(None)
    );
}

#[tokio::test]
async fn many_clients_share_the_pools() {
    let proxy = passthrough();
    let mut setup = fresh_db(&proxy, "t_many").await;
    setup
        .query_drop("CREATE TABLE hits (client INT, n INT)")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for client in 0..24 {
        let opts = proxy.opts(USER, PASSWORD, Some("t_many"));
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::new(opts).await.unwrap();
            for n in 0..25 {
                c.exec_drop("INSERT INTO hits VALUES (?, ?)", (client, n))
                    .await
                    .unwrap();
                let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
                assert_eq!(one, Some(1));
                if n % 5 == 0 {
                    c.query_drop("BEGIN").await.unwrap();
                    let mine: Option<i64> = c
                        .exec_first("SELECT COUNT(*) FROM hits WHERE client = ?", (client,))
                        .await
                        .unwrap();
                    assert_eq!(mine, Some(n as i64 + 1));
                    c.query_drop("COMMIT").await.unwrap();
                }
            }
            c.disconnect().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total: Option<i64> = setup
        .query_first("/* shardgate:primary */ SELECT COUNT(*) FROM hits")
        .await
        .unwrap();
    assert_eq!(total, Some(24 * 25));
}

#[tokio::test]
async fn logical_schemas_map_to_physical_databases() {
    let g = &sandbox().groups[0];
    {
        let mut d = direct(&g.primary, None).await;
        d.query_drop("CREATE DATABASE IF NOT EXISTS app_phys")
            .await
            .unwrap();
        d.query_drop("CREATE TABLE IF NOT EXISTS app_phys.t (v VARCHAR(10))")
            .await
            .unwrap();
        d.query_drop("DELETE FROM app_phys.t").await.unwrap();
        d.query_drop("INSERT INTO app_phys.t VALUES ('physical')")
            .await
            .unwrap();
    }
    sandbox().sync().unwrap();
    let proxy = Proxy::with_config(&format!(
        "[[users]]\nname = \"app\"\npassword = \"pw\"\n\
         [[users]]\nname = \"limited\"\npassword = \"pw\"\nschemas = [\"app\"]\n\
         [nodes.dn1]\nprimary = \"{}\"\nreplicas = [\"{}\"]\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\ndatabase = \"app_phys\"\n\
         [schemas.app]\nnode = \"dn1\"\n[schemas.other]\nnode = \"dn1\"\n",
        g.primary.address(),
        g.replicas[0].address()
    ));
    let mut c = Conn::new(proxy.opts("app", "pw", Some("app")))
        .await
        .unwrap();
    assert_eq!(
        c.query_first::<String, _>("SELECT v FROM t")
            .await
            .unwrap()
            .as_deref(),
        Some("physical")
    );
    let dbs: Vec<String> = c.query("SHOW DATABASES").await.unwrap();
    assert_eq!(dbs, ["information_schema", "app", "other"]);
    let dbs: Vec<String> = c.query("SHOW DATABASES LIKE 'ap%'").await.unwrap();
    assert_eq!(dbs, ["app"]);

    let err = c.query_drop("USE app_phys").await.unwrap_err();
    assert_eq!(
        error_code(&err),
        Some(1049),
        "physical names are not visible"
    );
    assert_eq!(c.query_first::<i64, _>("SELECT 1").await.unwrap(), Some(1));

    let err = Conn::new(proxy.opts("limited", "pw", Some("other")))
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), Some(1044));
    let mut l = Conn::new(proxy.opts("limited", "pw", Some("app")))
        .await
        .unwrap();
    let err = l.query_drop("USE other").await.unwrap_err();
    assert_eq!(error_code(&err), Some(1044));
}

#[tokio::test]
async fn prepared_statements_pin_nothing_and_survive_connection_reuse() {
    let proxy = passthrough();
    let mut c = fresh_db(&proxy, "t_prep_free").await;
    c.query_drop("CREATE TABLE p (id INT PRIMARY KEY, v VARCHAR(10))")
        .await
        .unwrap();
    let insert = c.prep("INSERT INTO p VALUES (?, ?)").await.unwrap();
    let read = c
        .prep("SELECT @@server_id, v FROM p WHERE id = ?")
        .await
        .unwrap();
    for id in 0..20 {
        c.exec_drop(&insert, (id, format!("v{id}"))).await.unwrap();
    }
    sandbox().sync().unwrap();
    // A prepared read is a read like any other: it goes to a replica, because
    // preparing pinned nothing. Other clients use the same pooled connections in
    // between, so the statement is prepared again wherever it lands.
    let mut others = Vec::new();
    for _ in 0..4 {
        others.push(proxy.conn(Some("t_prep_free")).await);
    }
    let mut seen = std::collections::BTreeSet::new();
    for id in 0..20 {
        for _ in 0..2 {
            let (server, v): (u32, String) = c.exec_first(&read, (id,)).await.unwrap().unwrap();
            assert_eq!(v, format!("v{id}"));
            seen.insert(server);
        }
        let o = &mut others[id as usize % 4];
        let n: Option<i64> = o.query_first("SELECT COUNT(*) FROM p").await.unwrap();
        assert_eq!(n, Some(20));
    }
    assert!(seen.iter().all(|s| replica_ids().contains(s)), "{seen:?}");
    assert_eq!(seen.len(), 2, "both replicas served: {seen:?}");
    // Statements that leave state on their connection still pin it.
    c.exec_drop("SET @x = ?", (5,)).await.unwrap();
    let x: Option<i64> = c.query_first("SELECT @x").await.unwrap();
    assert_eq!(x, Some(5));
    c.close(insert).await.unwrap();
    c.close(read).await.unwrap();
}

#[tokio::test]
async fn session_settings_are_replayed_not_pinned() {
    let proxy = passthrough();
    let mut a = fresh_db(&proxy, "t_replay").await;
    let mut b = proxy.conn(Some("t_replay")).await;
    a.query_drop("SET SESSION sql_mode = 'ANSI_QUOTES'")
        .await
        .unwrap();
    a.query_drop("SET time_zone = '+05:00', @@session.div_precision_increment = 7")
        .await
        .unwrap();
    a.query_drop("SET NAMES latin1").await.unwrap();
    for _ in 0..10 {
        // Reads still go to replicas: nothing pinned the session to the primary, and
        // each connection it lands on gets its settings first.
        let row: Option<(u32, String, String, String)> = a
            .query_first("SELECT @@server_id, @@sql_mode, @@time_zone, 1 / 3")
            .await
            .unwrap();
        let (server, mode, tz, third) = row.unwrap();
        assert!(replica_ids().contains(&server), "{server}");
        assert_eq!((mode.as_str(), tz.as_str()), ("ANSI_QUOTES", "+05:00"));
        assert_eq!(third, "0.3333333");
        // SET NAMES changed the bytes on the wire: é comes back in latin1.
        let e: Option<Vec<u8>> = a.query_first("SELECT _utf8mb4'é'").await.unwrap();
        assert_eq!(e, Some(vec![0xE9]));
        // Another client on the same pools sees none of it.
        let row: Option<(String, String)> = b
            .query_first("SELECT @@sql_mode, @@time_zone")
            .await
            .unwrap();
        let (mode, tz) = row.unwrap();
        assert_ne!(mode, "ANSI_QUOTES");
        assert_ne!(tz, "+05:00");
    }
    // A transaction isolation level set for the session holds in its transactions.
    a.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        .await
        .unwrap();
    a.query_drop("BEGIN").await.unwrap();
    let level: Option<String> = a.query_first("SELECT @@tx_isolation").await.unwrap();
    assert_eq!(level.as_deref(), Some("SERIALIZABLE"));
    a.query_drop("COMMIT").await.unwrap();
    // A bad setting is the server's error, and nothing is remembered.
    let e = a
        .query_drop("SET sql_mode = 'NO_SUCH_MODE'")
        .await
        .unwrap_err();
    assert_eq!(tests::error_code(&e), Some(1231));
    let mode: Option<String> = a.query_first("SELECT @@sql_mode").await.unwrap();
    assert_eq!(mode.as_deref(), Some("ANSI_QUOTES"));
    // COM_RESET_CONNECTION forgets the settings.
    a.reset().await.unwrap();
    let tz: Option<String> = a.query_first("SELECT @@time_zone").await.unwrap();
    assert_ne!(tz.as_deref(), Some("+05:00"));
}

#[tokio::test]
async fn kill_uses_shardgate_ids_and_reaches_the_backend() {
    let proxy = passthrough();
    let mut a = proxy.conn(None).await;
    let mut b = proxy.conn(None).await;
    // CONNECTION_ID() is shardgate's id, the one in the handshake.
    let id: u32 = a
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id, a.id());
    assert_ne!(id, b.id());
    // In a prepared statement too, alone or not.
    let prepared: Option<(u32, i32)> = a
        .exec_first("SELECT CONNECTION_ID(), ?", (7,))
        .await
        .unwrap();
    assert_eq!(prepared, Some((a.id(), 7)));

    // KILL QUERY stops the statement on the backend; the session goes on.
    let sleeper = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let r: Result<Option<i64>, _> = a
            .query_first("/* shardgate:primary */ SELECT SLEEP(20)")
            .await;
        (a, r, started.elapsed())
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    b.query_drop(format!("KILL QUERY {id}")).await.unwrap();
    let (mut a, r, took) = sleeper.await.unwrap();
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    match r {
        Ok(v) => assert_eq!(v, Some(1), "SLEEP reports the interruption"),
        Err(e) => assert_eq!(tests::error_code(&e), Some(1317), "{e}"),
    }
    assert_eq!(a.query_first::<i64, _>("SELECT 2").await.unwrap(), Some(2));

    // Unknown ids, and KILL CONNECTION, which closes the session.
    let e = b.query_drop("KILL 999999").await.unwrap_err();
    assert_eq!(tests::error_code(&e), Some(1094));
    b.query_drop(format!("KILL CONNECTION {id}")).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        a.query_drop("SELECT 1").await.is_err(),
        "the killed session is closed"
    );
    assert_eq!(b.query_first::<i64, _>("SELECT 3").await.unwrap(), Some(3));
    // The session's own id by name: its query (nothing runs), then itself.
    b.query_drop("KILL QUERY CONNECTION_ID()").await.unwrap();
    let e = b.query_drop("KILL CONNECTION_ID()").await.unwrap_err();
    assert_eq!(tests::error_code(&e), Some(1927), "{e}");
}

#[tokio::test]
async fn statement_timeout_stops_long_statements() {
    let g = &sandbox().groups[0];
    let proxy = Proxy::with_config(&format!(
        "passthrough_node = \"dn1\"\n[server]\nstatement_timeout_ms = 700\n\
         [[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\nschemas = [\"*\"]\n\
         [nodes.dn1]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n",
        g.primary.address()
    ));
    let mut c = proxy.conn(None).await;
    let started = std::time::Instant::now();
    let r: Result<Option<i64>, _> = c.query_first("SELECT SLEEP(10)").await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    match r {
        Ok(v) => assert_eq!(v, Some(1)),
        Err(e) => assert_eq!(tests::error_code(&e), Some(1317), "{e}"),
    }
    // Short statements are untouched, and the session goes on.
    assert_eq!(
        c.query_first::<i64, _>("SELECT SLEEP(0.1) + 5")
            .await
            .unwrap(),
        Some(5)
    );
}

#[tokio::test]
async fn load_data_local_infile_is_relayed_to_the_primary() {
    let proxy = passthrough();
    let mut c = fresh_db(&proxy, "t_infile").await;
    c.query_drop("CREATE TABLE imported (id INT PRIMARY KEY, name VARCHAR(20))")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rows.csv");
    // 30,000 rows: several packets of file data.
    let body: String = (0..30_000).map(|i| format!("{i},name-{i}\n")).collect();
    std::fs::write(&file, body).unwrap();
    let port = proxy.port;
    let sql = format!(
        "LOAD DATA LOCAL INFILE '{}' INTO TABLE imported FIELDS TERMINATED BY ','; SELECT /* shardgate:primary */ COUNT(*), MAX(name) FROM imported",
        file.display()
    );
    let (ok, out, err) = cli(
        port,
        &["--local-infile=1", "--comments", "-N", "-D", "t_infile"],
        &sql,
    );
    assert!(ok, "{err}");
    // (the CLI keeps the routing hint only with --comments)
    assert_eq!(out.trim(), "30000\tname-9999");
    // A file the client refuses to send (local-infile off) is the client's error, and
    // the session is still in step.
    let (ok, _, err) = cli(
        port,
        &["--local-infile=0", "--comments", "-D", "t_infile"],
        &sql,
    );
    assert!(!ok);
    assert!(err.contains("ERROR"), "{err}");
    let n: Option<i64> = c
        .query_first("/* shardgate:primary */ SELECT COUNT(*) FROM imported")
        .await
        .unwrap();
    assert_eq!(n, Some(30_000));
}

#[tokio::test]
async fn change_user_logs_in_again_and_forgets_the_session() {
    let g = &sandbox().groups[0];
    let replicas: Vec<String> = g
        .replicas
        .iter()
        .map(|r| format!("\"{}\"", r.address()))
        .collect();
    let proxy = Proxy::with_config(&format!(
        "passthrough_node = \"dn1\"\n\
         [[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\nschemas = [\"*\"]\n\
         [[users]]\nname = \"other\"\npassword = \"other-pw\"\nschemas = [\"*\"]\n\
         privileges = [\"read\", \"write\", \"ddl\", \"admin\"]\n\
         [nodes.dn1]\nprimary = \"{}\"\nreplicas = [{}]\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n",
        g.primary.address(),
        replicas.join(", ")
    ));
    let mut c = proxy.conn(None).await;
    c.query_drop("SET @left_behind = 1").await.unwrap();
    c.query_drop("SET time_zone = '+07:00'").await.unwrap();
    let id = c.id();
    c.change_user(
        mysql_async::ChangeUserOpts::default()
            .with_user(Some("other".into()))
            .with_pass(Some("other-pw".into()))
            .with_db_name(Some("mysql".into())),
    )
    .await
    .unwrap();
    // Same connection, new session: nothing of the old one remains.
    assert_eq!(
        c.query_first::<u32, _>("SELECT CONNECTION_ID()")
            .await
            .unwrap(),
        Some(id)
    );
    let row: Option<(Option<i64>, String, String)> = c
        .query_first("SELECT @left_behind, @@time_zone, DATABASE()")
        .await
        .unwrap();
    let (var, tz, db) = row.unwrap();
    assert_eq!(var, None);
    assert_ne!(tz, "+07:00");
    assert_eq!(db, "mysql");
    // KILL now checks against the new user.
    let mut first_user = proxy.conn(None).await;
    let e = first_user
        .query_drop(format!("KILL QUERY {id}"))
        .await
        .unwrap_err();
    assert_eq!(tests::error_code(&e), Some(1095));
    // A wrong password fails the change and closes the connection.
    let e = c
        .change_user(
            mysql_async::ChangeUserOpts::default()
                .with_user(Some(USER.into()))
                .with_pass(Some("wrong".into())),
        )
        .await
        .unwrap_err();
    assert_eq!(tests::error_code(&e), Some(1045), "{e}");
}

#[tokio::test]
async fn compressed_protocol_with_the_cli_and_mysql_async() {
    let proxy = passthrough();
    let mut c = fresh_db(&proxy, "t_zlib").await;
    c.query_drop("CREATE TABLE z (id INT PRIMARY KEY, v LONGTEXT, b LONGBLOB)")
        .await
        .unwrap();
    // The CLI with --compress: a 6 MB value, a multi-statement batch, an error.
    let sql = "INSERT INTO z (id, v) VALUES (1, REPEAT('ab', 3000000)); \
               SELECT /* shardgate:primary */ LENGTH(v), MD5(v) = MD5(REPEAT('ab', 3000000)) FROM z; \
               SELECT /* shardgate:primary */ v FROM z WHERE id = 1";
    let (ok, out, err) = cli(
        proxy.port,
        &["--compress", "--comments", "-N", "-D", "t_zlib"],
        sql,
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "6000000\t1");
    assert_eq!(lines[1].len(), 6_000_000);
    let (ok, _, err) = cli(
        proxy.port,
        &["--compress", "-D", "t_zlib"],
        "SELECT * FROM no_such",
    );
    assert!(!ok && err.contains("1146"), "{err}");

    // mysql_async with compression: text and binary protocol, large packets.
    let opts = mysql_async::OptsBuilder::from_opts(proxy.opts(USER, PASSWORD, Some("t_zlib")))
        .compression(mysql_async::Compression::fast());
    let mut z = mysql_async::Conn::new(opts).await.unwrap();
    let big: Vec<u8> = (0..20 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    z.exec_drop("INSERT INTO z (id, b) VALUES (2, ?)", (big.clone(),))
        .await
        .unwrap();
    let back: Vec<u8> = z
        .query_first("/* shardgate:primary */ SELECT b FROM z WHERE id = 2")
        .await
        .unwrap()
        .unwrap();
    assert!(back == big, "value changed through the compressed protocol");
    let n: Option<i64> = z
        .exec_first(
            "/* shardgate:primary */ SELECT COUNT(*) FROM z WHERE id > ?",
            (0,),
        )
        .await
        .unwrap();
    assert_eq!(n, Some(2));
}

#[tokio::test]
async fn show_shardgate_sessions_tells_why_a_session_is_pinned() {
    let proxy = passthrough();
    let mut a = proxy.conn(None).await;
    let mut b = proxy.conn(None).await;
    a.query_drop("SET @x = 1").await.unwrap();
    let rows: Vec<(u32, String, String, Option<String>)> =
        b.query("SHOW SHARDGATE SESSIONS").await.unwrap();
    let mine = rows.iter().find(|r| r.0 == a.id()).expect("a is listed");
    assert_eq!(mine.1, USER);
    assert!(mine.2.contains("user_variable"), "{mine:?}");
    assert!(
        mine.3.as_deref().is_some_and(|s| s.contains("primary")),
        "a pinned session keeps its primary connection: {mine:?}"
    );
    let other = rows.iter().find(|r| r.0 == b.id()).expect("b is listed");
    assert_eq!(other.2, "", "b is not pinned");
    // COM_RESET_CONNECTION unpins.
    a.reset().await.unwrap();
    let rows: Vec<(u32, String, String, Option<String>)> =
        b.query("SHOW SHARDGATE SESSIONS").await.unwrap();
    let mine = rows.iter().find(|r| r.0 == a.id()).unwrap();
    assert_eq!(mine.2, "");
}

#[tokio::test]
async fn stored_procedures_return_all_their_results() {
    let proxy = passthrough();
    let mut c = fresh_db(&proxy, "t_call").await;
    c.query_drop(
        "CREATE PROCEDURE two_results(IN n INT) BEGIN SELECT n AS a; SELECT n + 1 AS b, 'x' AS c; END",
    )
    .await
    .unwrap();
    // Text protocol: two result sets and the CALL's own OK.
    let mut r = c.query_iter("CALL two_results(41)").await.unwrap();
    let first: Vec<i64> = r.collect().await.unwrap();
    let second: Vec<(i64, String)> = r.collect().await.unwrap();
    drop(r);
    assert_eq!(first, [41]);
    assert_eq!(second, [(42, "x".into())]);
    // Binary protocol.
    let mut r = c.exec_iter("CALL two_results(?)", (1,)).await.unwrap();
    let first: Vec<i64> = r.collect().await.unwrap();
    let second: Vec<(i64, String)> = r.collect().await.unwrap();
    drop(r);
    assert_eq!((first, second), (vec![1], vec![(2, "x".into())]));
    // The mariadb CLI prints both.
    let (ok, out, err) = cli(proxy.port, &["-N", "-D", "t_call"], "CALL two_results(7)");
    assert!(ok, "{err}");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["7", "8", "x"]);
    // The session is in step afterwards.
    assert_eq!(c.query_first::<i64, _>("SELECT 5").await.unwrap(), Some(5));
}

/// A cursor (EXECUTE with CURSOR_TYPE_READ_ONLY, then COM_STMT_FETCH) on a statement
/// that runs on one node: its rows come in the batches the client asks for, from the
/// connection that holds the cursor; after the last row the session is free again.
#[tokio::test]
async fn cursors_fetch_rows_in_batches() {
    let proxy = passthrough();
    let mut c = fresh_db(&proxy, "t_cursor").await;
    c.query_drop("CREATE TABLE c (id INT PRIMARY KEY)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO c VALUES (1), (2), (3), (4), (5), (6), (7)")
        .await
        .unwrap();
    sandbox().sync().unwrap();
    let addr = proxy.addr();
    let batches = tokio::task::spawn_blocking(move || {
        let (mut raw, _) = RawClient::connect(&addr, USER, PASSWORD).unwrap();
        let (ok, _) = raw
            .command(b"\x16SELECT id FROM t_cursor.c WHERE id > ? ORDER BY id")
            .unwrap();
        assert_eq!(ok[0], 0x00, "prepared: {}", String::from_utf8_lossy(&ok));
        let id = u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]]);
        // One parameter definition and one column definition, each followed by EOF.
        for _ in 0..4 {
            raw.read_packet().unwrap();
        }
        let mut exec = vec![0x17];
        exec.extend_from_slice(&id.to_le_bytes());
        exec.push(0x01); // CURSOR_TYPE_READ_ONLY
        exec.extend_from_slice(&1u32.to_le_bytes());
        exec.extend_from_slice(&[0x00, 0x01, 0x08, 0x00]);
        exec.extend_from_slice(&2i64.to_le_bytes());
        raw.write_packet(0, &exec).unwrap();
        let (_, count) = raw.read_packet().unwrap();
        assert_eq!(count, [1], "one column");
        raw.read_packet().unwrap(); // its definition
        let (_, eof) = raw.read_packet().unwrap();
        let status = u16::from_le_bytes([eof[3], eof[4]]);
        assert_eq!(
            (eof[0], status & 0x0040),
            (0xFE, 0x0040),
            "a cursor, no rows yet"
        );
        let mut fetch = vec![0x1C];
        fetch.extend_from_slice(&id.to_le_bytes());
        fetch.extend_from_slice(&3u32.to_le_bytes());
        // Batches of 3 until the server says the last row was sent: rows 3..=7.
        let mut batches = Vec::new();
        while batches.len() < 5 {
            raw.write_packet(0, &fetch).unwrap();
            let mut rows = Vec::new();
            let last = loop {
                let (_, p) = raw.read_packet().unwrap();
                assert_ne!(p[0], 0xFF, "{}", String::from_utf8_lossy(&p));
                if p[0] == 0xFE && p.len() < 9 {
                    break u16::from_le_bytes([p[3], p[4]]) & 0x0080 != 0;
                }
                // A binary row: header, null bitmap, then the INT.
                rows.push(i32::from_le_bytes([p[2], p[3], p[4], p[5]]));
            };
            batches.push(rows);
            if last {
                break;
            }
        }
        // The cursor is closed now. A fetch gets 1421 and leaves the session's
        // transaction alone.
        let (ok, _) = raw.command(b"\x03BEGIN").unwrap();
        assert_eq!(ok[0], 0x00);
        let (ok, _) = raw
            .command(b"\x03INSERT INTO t_cursor.c VALUES (8)")
            .unwrap();
        assert_eq!(ok[0], 0x00, "{}", String::from_utf8_lossy(&ok));
        raw.write_packet(0, &fetch).unwrap();
        let (_, closed) = raw.read_packet().unwrap();
        let (commit, _) = raw.command(b"\x03COMMIT").unwrap();
        // A cursor open again: the session's next write runs on the connection it
        // holds, which is a primary's.
        raw.write_packet(0, &exec).unwrap();
        for _ in 0..3 {
            raw.read_packet().unwrap();
        }
        let (write, _) = raw
            .command(b"\x03INSERT INTO t_cursor.c VALUES (9)")
            .unwrap();
        // Closing the statement lets the connection go.
        let mut close = vec![0x19];
        close.extend_from_slice(&id.to_le_bytes());
        raw.write_packet(0, &close).unwrap();
        let (first, rows) = raw
            .command(b"\x03SELECT COUNT(*) FROM t_cursor.c /* shardgate:primary */")
            .unwrap();
        (batches, err_code(&closed), commit, write, first, rows)
    })
    .await
    .unwrap();
    let (batches, closed, commit, write, first, rows) = batches;
    assert_eq!(batches.concat(), [3, 4, 5, 6, 7], "{batches:?}");
    assert_eq!(batches[0], [3, 4, 5]);
    assert_eq!(closed, Some(1421), "a fetch after the last row");
    assert_eq!(
        commit[0],
        0x00,
        "COMMIT: {}",
        String::from_utf8_lossy(&commit)
    );
    assert_eq!(
        write[0],
        0x00,
        "write beside a cursor: {}",
        String::from_utf8_lossy(&write)
    );
    assert_eq!((first[0], rows.len()), (1, 1));
    // 7 rows, then 8 (committed) and 9.
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM t_cursor.c /* shardgate:primary */")
        .await
        .unwrap();
    assert_eq!(n, Some(9));
}

#[tokio::test]
async fn the_same_prepared_text_in_two_databases_stays_apart() {
    let proxy = passthrough();
    let mut setup = proxy.conn(None).await;
    for (db, v) in [("t_prep_a", 1), ("t_prep_b", 2)] {
        setup
            .query_drop(format!("DROP DATABASE IF EXISTS {db}"))
            .await
            .unwrap();
        setup
            .query_drop(format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        setup
            .query_drop(format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT)"))
            .await
            .unwrap();
        setup
            .query_drop(format!("INSERT INTO {db}.t VALUES (1, {v})"))
            .await
            .unwrap();
    }
    sandbox().sync().unwrap();
    let mut a = proxy.conn(Some("t_prep_a")).await;
    let mut b = proxy.conn(Some("t_prep_b")).await;
    // Both sessions share pooled connections; the statement prepared for one
    // database must never answer for the other.
    // On the primary, so both sessions draw from one pool.
    let sql = "/* shardgate:primary */ SELECT v FROM t WHERE id = ?";
    for _ in 0..20 {
        let va: Option<i64> = a.exec_first(sql, (1,)).await.unwrap();
        let vb: Option<i64> = b.exec_first(sql, (1,)).await.unwrap();
        assert_eq!((va, vb), (Some(1), Some(2)));
    }
}

/// `DROP DATABASE` of a connection's current database leaves it with none, without a
/// COM_INIT_DB: shardgate must not go on believing the name. mysqlslap drops and
/// creates its schema on a pooled connection that had it selected, selects it again
/// and creates its table: before, that failed with "No database selected".
#[tokio::test]
async fn mysqlslap_recreates_its_schema_through_shardgate() {
    let proxy = passthrough();
    let port = proxy.port.to_string();
    let out = std::process::Command::new("mariadb-slap")
        .args(["--no-defaults", "-h127.0.0.1", "-P", &port, "-u", USER])
        .arg(format!("-p{PASSWORD}"))
        .args([
            "--create-schema=t_slap",
            "--auto-generate-sql",
            "--concurrency=4",
            "--iterations=3",
            "--number-of-queries=100",
        ])
        .output()
        .expect("run mariadb-slap (Debian: mariadb-client)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Average number of seconds"), "{text}");
}
