//! Writes land whole or say exactly what happened: multi-shard writes in a pinned
//! session, DDL that fails halfway, shards that disagree on their columns, broadcast
//! copies. One sandbox (two groups) for the whole binary.

use std::sync::OnceLock;

use mysql_async::prelude::*;
use mysql_async::Conn;
use tests::{direct, error_code, Proxy, Sandbox, PASSWORD, USER};

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[0, 0]).expect("start the MariaDB sandbox"))
}

/// shardgate over `db`: `t` sharded by user_id (mod 4: shards 0 and 2 on dn1, 1 and 3
/// on dn2), `products` broadcast.
async fn setup(db: &str) -> (Proxy, Conn) {
    tests::recreate_db(sandbox(), db).await;
    let p = Proxy::with_config(&config(db));
    let mut c = p.conn(Some(db)).await;
    c.query_drop("CREATE TABLE t (user_id INT PRIMARY KEY, name VARCHAR(20), v INT)")
        .await
        .unwrap();
    (p, c)
}

fn config(db: &str) -> String {
    let s = sandbox();
    let (g1, g2) = (&s.groups[0], &s.groups[1]);
    format!(
        "[[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [nodes.dn1]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [nodes.dn2]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [rules.by_user]\nalgorithm = \"mod\"\nshards = 4\n\
         [schemas.{db}]\nnode = \"dn1\"\n\
         [schemas.{db}.tables.t]\nkind = \"sharded\"\ncolumn = \"user_id\"\nrule = \"by_user\"\nnodes = [\"dn1\", \"dn2\"]\ntables_per_node = 2\n\
         [schemas.{db}.tables.products]\nkind = \"broadcast\"\n\
         [rules.by_key]\nalgorithm = \"hash_mod\"\nshards = 4\n\
         [schemas.{db}.tables.keyed]\nkind = \"sharded\"\ncolumn = \"k\"\nrule = \"by_key\"\nnodes = [\"dn1\", \"dn2\"]\ntables_per_node = 2\n",
        g1.primary.address(),
        g2.primary.address(),
    )
}

/// user_ids in a physical table, read straight from a group's primary.
async fn physical(group: usize, db: &str, table: &str) -> Vec<i32> {
    let mut d = direct(&sandbox().groups[group].primary, Some(db)).await;
    d.query(format!("SELECT user_id FROM {table} ORDER BY user_id"))
        .await
        .unwrap()
}

#[tokio::test]
async fn multi_shard_writes_in_a_pinned_session_are_all_or_nothing() {
    let db = "wr_pinned";
    let (p, mut c) = setup(db).await;
    c.query_drop("INSERT INTO t (user_id, name, v) VALUES (0, 'zero', 1), (2, 'two', 1)")
        .await
        .unwrap();
    // A user variable pins the session to its connection on dn1.
    c.query_drop("SET @x = 1").await.unwrap();
    // 600 and 602 land on shards 0 and 2 (dn1) with 2, which exists: nothing commits.
    let e = c
        .query_drop(
            "INSERT INTO t (user_id, name, v) VALUES (600, 'a', 1), (602, 'b', 1), (2, 'dup', 1)",
        )
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), Some(1062), "{e}");
    assert_eq!(physical(0, db, "t_0000").await, [0]);
    assert_eq!(physical(0, db, "t_0002").await, [2]);
    // Both rows change, in one statement that says so.
    c.query_drop("UPDATE t SET v = v + 1000 WHERE user_id IN (0, 2)")
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 2);
    let v: Vec<i32> = c
        .query("SELECT v FROM t WHERE user_id IN (0, 2) ORDER BY user_id")
        .await
        .unwrap();
    assert_eq!(v, [1001, 1001]);
    // The session is still pinned and still works.
    let x: Option<i64> = c.query_first("SELECT @x").await.unwrap();
    assert_eq!(x, Some(1));
    // Shards name an expression column after their own physical table (`t_0000`.v + 1):
    // that is not a difference in shape. (A fresh session: a pinned one stays on dn1.)
    let mut c = p.conn(Some(db)).await;
    let mut sums: Vec<i64> = c.query("SELECT t.v + 1 FROM t").await.unwrap();
    sums.sort();
    assert_eq!(sums, [1002, 1002]);
    let n: Option<i64> = c
        .query_first("SELECT COUNT(t.user_id) FROM t")
        .await
        .unwrap();
    assert_eq!(n, Some(2));
}

#[tokio::test]
async fn one_sessions_errors_and_warnings_never_reach_another() {
    let db = "wr_diag";
    let (p, mut c) = setup(db).await;
    c.query_drop("INSERT INTO t (user_id, name, v) VALUES (2, 'two', 1)")
        .await
        .unwrap();
    // A multi-shard write that fails on one shard, then the client goes.
    assert!(c
        .query_drop("INSERT INTO t (user_id, name, v) VALUES (1, 'a', 1), (2, 'dup', 1)")
        .await
        .is_err());
    c.query_drop("SELECT 'x' + 1").await.unwrap();
    c.disconnect().await.unwrap();
    // Fresh sessions (on the connections the pool lends last, once the first session
    // has ended) see nothing of it.
    for _ in 0..3 {
        let mut n = p.conn(Some(db)).await;
        for _ in 0..100 {
            let sessions: Vec<mysql_async::Row> = n.query("SHOW SHARDGATE SESSIONS").await.unwrap();
            if sessions.len() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let warnings: Vec<mysql_async::Row> = n.query("SHOW WARNINGS").await.unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let count: Option<i64> = n.query_first("SELECT @@warning_count").await.unwrap();
        assert_eq!(count, Some(0));
    }
}

#[tokio::test]
async fn ddl_that_fails_halfway_says_exactly_what_changed() {
    let db = "wr_ddl";
    let (_p, mut c) = setup(db).await;
    // Shard 2 holds a duplicate name: the unique key fails there.
    c.query_drop("INSERT INTO t (user_id, name, v) VALUES (0, 'a', 1), (1, 'b', 1), (2, 'c', 1), (6, 'c', 1), (3, 'd', 1)")
        .await
        .unwrap();
    let e = c
        .query_drop("ALTER TABLE t ADD COLUMN q INT NOT NULL DEFAULT 1, ADD UNIQUE KEY uq (name)")
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert_eq!(error_code(&e), Some(1062), "{msg}");
    assert!(msg.contains("DDL cannot be rolled back"), "{msg}");
    assert!(msg.contains("applied on dn1 shard 0, dn2 shard 1"), "{msg}");
    assert!(msg.contains("failed on dn1 shard 2"), "{msg}");
    assert!(
        msg.contains("dn2 shard 3 in database `wr_ddl`: ALTER TABLE"),
        "{msg}"
    );
    assert!(!msg.contains("rolled back the statement"), "{msg}");
    // What MariaDB holds agrees with the report.
    for (group, table, has) in [
        (0, "t_0000", true),
        (1, "t_0001", true),
        (0, "t_0002", false),
        (1, "t_0003", false),
    ] {
        let mut d = direct(&sandbox().groups[group].primary, Some(db)).await;
        let cols: Vec<String> = d
            .query(format!("SELECT column_name FROM information_schema.columns WHERE table_schema = '{db}' AND table_name = '{table}'"))
            .await
            .unwrap();
        assert_eq!(cols.iter().any(|c| c == "q"), has, "{table}: {cols:?}");
    }
    // Reads never mix shapes: a scatter whose shards disagree ends with an error, and
    // the session goes on.
    for sql in ["SELECT * FROM t", "SELECT * FROM t ORDER BY user_id"] {
        let e = c.query_drop(sql).await.unwrap_err();
        assert!(e.to_string().contains("different columns"), "{sql}: {e}");
    }
    let n: Option<i64> = c.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(n, Some(5));
}

#[tokio::test]
async fn keys_from_a_latin1_client_reach_the_shard_a_utf8_client_looks_in() {
    let db = "wr_latin1";
    let (p, mut c) = setup(db).await;
    c.query_drop(
        "CREATE TABLE keyed (id INT PRIMARY KEY, k VARCHAR(20) NOT NULL) DEFAULT CHARSET utf8mb4",
    )
    .await
    .unwrap();
    // A latin1 client: its bytes C3 A9 are the two characters 'Ã©', its E9 is 'é'.
    let (mut raw, _) = tests::raw::RawClient::connect(&p.addr(), USER, PASSWORD).unwrap();
    let run = |raw: &mut tests::raw::RawClient, sql: &[u8]| {
        let mut packet = vec![0x03];
        packet.extend_from_slice(sql);
        let (first, _) = raw.command(&packet).unwrap();
        assert_eq!(
            <[u8]>::first(&first),
            Some(&0x00),
            "{}: {first:?}",
            String::from_utf8_lossy(sql)
        );
    };
    run(&mut raw, format!("USE {db}").as_bytes());
    run(&mut raw, b"SET NAMES latin1");
    let keys: [(&[u8], &str); 4] = [
        (b"caf\xc3\xa9", "caf\u{c3}\u{a9}"),
        (b"caf\xe9", "caf\u{e9}"),
        (b"na\xc3\xafve", "na\u{c3}\u{af}ve"),
        (b"\xc3\xa0 la", "\u{c3}\u{a0} la"),
    ];
    for (i, (bytes, _)) in keys.iter().enumerate() {
        let mut sql = format!("INSERT INTO keyed (id, k) VALUES ({i}, '").into_bytes();
        sql.extend_from_slice(bytes);
        sql.extend_from_slice(b"')");
        run(&mut raw, &sql);
    }
    // A utf8mb4 session whose SET merely mentions a character set stays utf8mb4: its
    // C3 A9 is 'é'.
    let (mut utf8, _) = tests::raw::RawClient::connect(&p.addr(), USER, PASSWORD).unwrap();
    run(&mut utf8, format!("USE {db}").as_bytes());
    run(
        &mut utf8,
        b"SET SESSION sql_mode = CAST('STRICT_ALL_TABLES' AS CHAR CHARACTER SET latin1)",
    );
    run(
        &mut utf8,
        b"INSERT INTO keyed (id, k) VALUES (9, 'd\xc3\xa9j\xc3\xa0')",
    );
    let found: Option<i32> = c
        .exec_first("SELECT id FROM keyed WHERE k = ?", ("d\u{e9}j\u{e0}",))
        .await
        .unwrap();
    assert_eq!(found, Some(9));
    // A utf8mb4 client finds every row with a point lookup, which goes to one shard.
    for (i, (_, text)) in keys.iter().enumerate() {
        let found: Option<i32> = c
            .exec_first("SELECT id FROM keyed WHERE k = ?", (text.to_string(),))
            .await
            .unwrap();
        assert_eq!(found, Some(i as i32), "key {text:?}");
        let found: Option<i32> = c
            .query_first(format!("SELECT id FROM keyed WHERE k = '{text}'"))
            .await
            .unwrap();
        assert_eq!(found, Some(i as i32), "key {text:?} (text protocol)");
    }
}

/// `shardgate check-broadcast` over `db`'s config: (success, output).
fn check_broadcast(db: &str) -> (bool, String) {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::io::Write::write_all(&mut file, config(db).as_bytes()).unwrap();
    let out = std::process::Command::new(tests::shardgate_bin())
        .args(["check-broadcast", "-c"])
        .arg(file.path())
        .env("SHARDGATE_LOG", "error")
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test]
async fn broadcast_copies_change_together_and_are_checked() {
    let db = "wr_broadcast";
    let (_p, mut c) = setup(db).await;
    c.query_drop("CREATE TABLE products (id INT PRIMARY KEY, name VARCHAR(20) UNIQUE)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO products VALUES (1, 'pen'), (2, 'ink')")
        .await
        .unwrap();
    let (ok, out) = check_broadcast(db);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("{db}.products: consistent")), "{out}");

    // A copy changed behind shardgate's back: the check says so, and fails.
    let mut d2 = direct(&sandbox().groups[1].primary, Some(db)).await;
    d2.query_drop("INSERT INTO products VALUES (3, 'cap')")
        .await
        .unwrap();
    let (ok, out) = check_broadcast(db);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("{db}.products: COPIES DIFFER")),
        "{out}"
    );

    // A write that fails on one copy (the name exists on dn2 only) changes none.
    let e = c
        .query_drop("INSERT INTO products VALUES (4, 'cap')")
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), Some(1062), "{e}");
    let mut d1 = direct(&sandbox().groups[0].primary, Some(db)).await;
    let on_dn1: Vec<i32> = d1
        .query("SELECT id FROM products ORDER BY id")
        .await
        .unwrap();
    assert_eq!(on_dn1, [1, 2]);
    d2.query_drop("DELETE FROM products WHERE id = 3")
        .await
        .unwrap();
    let (ok, out) = check_broadcast(db);
    assert!(ok, "{out}");
}

#[tokio::test]
async fn statements_are_planned_as_the_sessions_sql_mode_reads_them() {
    let db = "wr_sqlmode";
    let (_p, mut c) = setup(db).await;
    c.query_drop("CREATE TABLE keyed (id INT PRIMARY KEY, k VARCHAR(20) NOT NULL)")
        .await
        .unwrap();
    // Under NO_BACKSLASH_ESCAPES a backslash is a character like any other, and a
    // string ends at its next quote.
    c.query_drop("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'")
        .await
        .unwrap();
    c.query_drop(r"INSERT INTO keyed (id, k) VALUES (1, 'a\'), (2, 'b\\'), (3, 'c\n')")
        .await
        .unwrap();
    let id: Option<i32> = c
        .query_first(r"SELECT id FROM keyed WHERE k = 'b\\' AND id > 0")
        .await
        .unwrap();
    assert_eq!(id, Some(2));
    // Read back in the default mode, each key is found on the shard its value says:
    // the rows were placed by the value the server stored.
    c.query_drop("SET SESSION sql_mode = DEFAULT")
        .await
        .unwrap();
    for (id, literal) in [(1, r"'a\\'"), (2, r"'b\\\\'"), (3, r"'c\\n'")] {
        let found: Option<i32> = c
            .query_first(format!("SELECT id FROM keyed WHERE k = {literal}"))
            .await
            .unwrap();
        assert_eq!(found, Some(id), "{literal}");
    }
    // Under ANSI_QUOTES "x" is an identifier: tables and columns may be written so,
    // and `k = "k"` compares the column with itself (every row), not with a string.
    c.query_drop("SET SESSION sql_mode = 'ANSI_QUOTES'")
        .await
        .unwrap();
    c.query_drop("INSERT INTO \"keyed\" (\"id\", \"k\") VALUES (4, 'q')")
        .await
        .unwrap();
    let id: Option<i32> = c
        .query_first("SELECT \"id\" FROM \"keyed\" WHERE \"k\" = 'q'")
        .await
        .unwrap();
    assert_eq!(id, Some(4));
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM keyed WHERE k = \"k\"")
        .await
        .unwrap();
    assert_eq!(n, Some(4));
    // The default mode reads "k" as a string again, with its own cached plan.
    c.query_drop("SET SESSION sql_mode = DEFAULT")
        .await
        .unwrap();
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM keyed WHERE k = \"k\"")
        .await
        .unwrap();
    assert_eq!(n, Some(0));
}
