//! Multi-shard SELECTs with a merge step, checked against MariaDB itself: the same
//! rows live in `orders` sharded over two groups (through shardgate) and in one plain
//! table on a primary (the oracle), and every query must give the same answer both
//! ways, value for value.

use std::sync::OnceLock;

use mysql_async::prelude::*;
use mysql_async::{Conn, Value};
use tests::{direct, Proxy, Sandbox, PASSWORD, USER};

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[0, 0]).expect("start the MariaDB sandbox"))
}

const TABLE: &str = "(id INT PRIMARY KEY, user_id INT NOT NULL, amount DECIMAL(10,2), qty INT, \
    price DOUBLE, note VARCHAR(20), day DATE, t TIME, kind ENUM('x','b','a')) \
    DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci";

/// Deterministic rows with NULLs, negative numbers, case and accent variants, trailing
/// spaces, and TIME values past a day and below zero.
fn rows() -> Vec<String> {
    let notes = [
        "'a'", "'A'", "'a '", "'b'", "'é'", "'E'", "NULL", "'zz'", "'Zz'", "'m'",
    ];
    (1..=160)
        .map(|i: i64| {
            let user = i % 37 + 1;
            let amount = if i % 11 == 0 {
                "NULL".to_string()
            } else {
                format!("{}.{:02}", (i * 7919) % 500 - 100, (i * 31) % 100)
            };
            let qty = if i % 13 == 0 {
                "NULL".to_string()
            } else {
                ((i * 17) % 23 - 8).to_string()
            };
            let price = format!("{}", ((i * 13) % 40) as f64 * 0.25);
            let note = notes[(i as usize * 7) % notes.len()];
            let day = format!("'2024-{:02}-{:02}'", i % 12 + 1, i % 28 + 1);
            let t = format!(
                "'{}{:02}:{:02}:00'",
                if i % 5 == 0 { "-" } else { "" },
                (i * 3) % 40,
                i % 60
            );
            let kind = ["'x'", "'b'", "'a'"][(i % 3) as usize];
            format!("({i}, {user}, {amount}, {qty}, {price}, {note}, {day}, {t}, {kind})")
        })
        .collect()
}

struct Fixture {
    _proxy: Proxy,
    sharded: Conn,
    oracle: Conn,
}

async fn fixture(db: &str) -> Fixture {
    let s = sandbox();
    for g in &s.groups {
        let mut c = direct(&g.primary, None).await;
        for name in [db.to_string(), format!("{db}_a")] {
            c.query_drop(format!("DROP DATABASE IF EXISTS {name}"))
                .await
                .unwrap();
            c.query_drop(format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
        }
    }
    let (g1, g2) = (&s.groups[0], &s.groups[1]);
    let proxy = Proxy::with_config(&format!(
        "[[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [nodes.dn1]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\ndatabase = \"{db}_a\"\n\
         [nodes.dn2]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [rules.by_user]\nalgorithm = \"mod\"\nshards = 4\n\
         [schemas.{db}]\nnode = \"dn1\"\n\
         [schemas.{db}.tables.orders]\nkind = \"sharded\"\ncolumn = \"user_id\"\nrule = \"by_user\"\nnodes = [\"dn1\", \"dn2\"]\ntables_per_node = 2\n",
        g1.primary.address(),
        g2.primary.address(),
    ));
    let mut sharded = proxy.conn(Some(db)).await;
    let mut oracle = direct(&g1.primary, Some(db)).await;
    sharded
        .query_drop(format!("CREATE TABLE orders {TABLE}"))
        .await
        .unwrap();
    oracle
        .query_drop(format!("CREATE TABLE oracle_orders {TABLE}"))
        .await
        .unwrap();
    let values = rows().join(", ");
    let columns = "(id, user_id, amount, qty, price, note, day, t, kind)";
    sharded
        .query_drop(format!("INSERT INTO orders {columns} VALUES {values}"))
        .await
        .unwrap();
    oracle
        .query_drop(format!(
            "INSERT INTO oracle_orders {columns} VALUES {values}"
        ))
        .await
        .unwrap();
    Fixture {
        _proxy: proxy,
        sharded,
        oracle,
    }
}

/// How two answers must agree.
#[derive(Clone, Copy, PartialEq)]
enum Check {
    /// The same rows in the same order.
    Ordered,
    /// The same rows in any order (no ORDER BY fixes it).
    AnyOrder,
    /// As `Ordered`, with strings compared as the ci collation does (a group's name
    /// may be any of its spellings).
    OrderedCi,
    AnyOrderCi,
    /// LIMIT without ORDER BY: only the number of rows is determined.
    Count,
}

fn fold(v: &Value) -> Value {
    match v {
        Value::Bytes(b) => {
            let s = String::from_utf8_lossy(b)
                .trim_end()
                .to_lowercase()
                .replace('é', "e");
            Value::Bytes(s.into_bytes())
        }
        other => other.clone(),
    }
}

async fn answer(c: &mut Conn, sql: &str) -> Vec<Vec<Value>> {
    let rows: Vec<mysql_async::Row> = c.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.into_iter().map(|r| r.unwrap()).collect()
}

async fn compare(f: &mut Fixture, sql: &str, check: Check) {
    let mut got = answer(&mut f.sharded, sql).await;
    let mut want = answer(&mut f.oracle, &sql.replace("orders", "oracle_orders")).await;
    if matches!(check, Check::OrderedCi | Check::AnyOrderCi) {
        for rows in [&mut got, &mut want] {
            for r in rows.iter_mut() {
                for v in r.iter_mut() {
                    *v = fold(v);
                }
            }
        }
    }
    match check {
        Check::Count => assert_eq!(got.len(), want.len(), "{sql}"),
        Check::AnyOrder | Check::AnyOrderCi => {
            let key = |r: &Vec<Value>| format!("{r:?}");
            got.sort_by_key(key);
            want.sort_by_key(key);
            assert_eq!(got, want, "{sql}");
        }
        Check::Ordered | Check::OrderedCi => assert_eq!(got, want, "{sql}"),
    }
}

use Check::*;

const QUERIES: &[(&str, Check)] = &[
    // ORDER BY and LIMIT
    ("SELECT id, user_id FROM orders ORDER BY id", Ordered),
    ("SELECT id FROM orders ORDER BY id DESC LIMIT 7", Ordered),
    ("SELECT id, amount FROM orders ORDER BY amount, id LIMIT 5, 10", Ordered),
    ("SELECT id, amount FROM orders ORDER BY amount DESC, id DESC LIMIT 20", Ordered),
    ("SELECT id FROM orders ORDER BY note, id", Ordered),
    ("SELECT id, note FROM orders ORDER BY note DESC, id LIMIT 30", Ordered),
    ("SELECT id, t FROM orders ORDER BY t, id", Ordered),
    ("SELECT id, price FROM orders ORDER BY price DESC, id", Ordered),
    ("SELECT id FROM orders ORDER BY day DESC, id LIMIT 3, 4", Ordered),
    ("SELECT * FROM orders ORDER BY id LIMIT 10", Ordered),
    ("SELECT id FROM orders o ORDER BY o.qty, o.id", Ordered),
    ("SELECT id, qty * 2 AS q2 FROM orders ORDER BY q2 DESC, id LIMIT 15", Ordered),
    ("SELECT id FROM orders WHERE qty > 0 ORDER BY user_id, id LIMIT 0, 5", Ordered),
    ("SELECT id FROM orders ORDER BY 1 DESC LIMIT 3", Ordered),
    ("SELECT id FROM orders ORDER BY id LIMIT 500", Ordered),
    ("SELECT id FROM orders ORDER BY id LIMIT 0", Ordered),
    ("SELECT id FROM orders WHERE user_id IN (1, 2) ORDER BY id DESC LIMIT 2", Ordered),
    ("SELECT id FROM orders LIMIT 3", Count),
    ("SELECT id FROM orders LIMIT 150, 100", Count),
    // aggregates without GROUP BY
    ("SELECT COUNT(*) FROM orders", Ordered),
    ("SELECT COUNT(*), COUNT(amount), SUM(amount), AVG(amount), MIN(amount), MAX(amount) FROM orders", Ordered),
    ("SELECT SUM(qty), AVG(qty), MIN(qty), MAX(qty), SUM(price), AVG(price) FROM orders", Ordered),
    ("SELECT MIN(note), MAX(note) FROM orders", OrderedCi),
    ("SELECT MIN(day), MAX(day), MIN(t), MAX(t) FROM orders", Ordered),
    ("SELECT COUNT(*), SUM(amount), AVG(qty), MIN(note) FROM orders WHERE id < 0", Ordered),
    ("SELECT COUNT(*) FROM orders WHERE user_id IN (1, 2, 3)", Ordered),
    ("SELECT COUNT(DISTINCT user_id) FROM orders", Ordered),
    ("SELECT COUNT(DISTINCT note) FROM orders", Ordered),
    ("SELECT COUNT(DISTINCT note), MIN(note), COUNT(*) FROM orders", OrderedCi),
    ("SELECT COUNT(DISTINCT qty) FROM orders WHERE qty IS NULL", Ordered),
    ("SELECT user_id % 3 AS b, COUNT(DISTINCT qty), COUNT(*), SUM(amount), AVG(price) FROM orders GROUP BY b", Ordered),
    ("SELECT day, COUNT(DISTINCT note) AS n FROM orders GROUP BY day HAVING n > 1 ORDER BY n DESC, day LIMIT 5", Ordered),
    ("SELECT qty, COUNT(DISTINCT t) FROM orders GROUP BY qty HAVING COUNT(DISTINCT t) >= 7", Ordered),
    // Regressions found by random differential queries (issue 11): the same
    // COUNT(DISTINCT x) twice; COUNT(DISTINCT x) with other aggregates over no rows.
    ("SELECT COUNT(DISTINCT note), COUNT(DISTINCT note) FROM orders", Ordered),
    ("SELECT qty, COUNT(DISTINCT note) AS a, COUNT(DISTINCT note) AS b FROM orders GROUP BY qty", Ordered),
    ("SELECT COUNT(DISTINCT note), COUNT(*), SUM(amount), MIN(qty), AVG(price) FROM orders WHERE id < 0", Ordered),
    ("SELECT COUNT(DISTINCT note) FROM orders WHERE id < 0 HAVING COUNT(DISTINCT note) > 0", Ordered),
    ("SELECT COUNT(*) AS c, SUM(amount) s FROM orders LIMIT 1", Ordered),
    ("SELECT COUNT(*) FROM orders LIMIT 0", Ordered),
    ("SELECT MAX(id) FROM orders HAVING MAX(id) > 100", Ordered),
    ("SELECT MAX(id) FROM orders HAVING MAX(id) > 1000", Ordered),
    // GROUP BY, HAVING
    ("SELECT user_id, COUNT(*), SUM(amount) FROM orders GROUP BY user_id", Ordered),
    ("SELECT user_id, COUNT(*) AS n FROM orders GROUP BY user_id ORDER BY n DESC, user_id LIMIT 5", Ordered),
    ("SELECT qty, COUNT(*) FROM orders GROUP BY qty ORDER BY qty DESC", Ordered),
    ("SELECT note, COUNT(*) FROM orders GROUP BY note", OrderedCi),
    ("SELECT COUNT(*), MIN(id) FROM orders GROUP BY note", Ordered),
    ("SELECT day, SUM(qty), AVG(amount) FROM orders GROUP BY day HAVING SUM(qty) > 3", Ordered),
    ("SELECT user_id % 5 AS b, COUNT(*) FROM orders GROUP BY b", Ordered),
    ("SELECT user_id, MAX(amount) AS m FROM orders GROUP BY user_id HAVING m IS NOT NULL AND COUNT(*) >= 5 ORDER BY m DESC, user_id", Ordered),
    ("SELECT AVG(amount) FROM orders GROUP BY user_id % 3 ORDER BY 1", Ordered),
    ("SELECT user_id, COUNT(*) FROM orders GROUP BY user_id ORDER BY COUNT(*) DESC, user_id LIMIT 3", Ordered),
    ("SELECT user_id FROM orders GROUP BY user_id ORDER BY SUM(amount) DESC, user_id LIMIT 4", Ordered),
    ("SELECT user_id, SUM(qty) FROM orders GROUP BY user_id HAVING SUM(qty) BETWEEN 1 AND 10", Ordered),
    ("SELECT user_id, SUM(qty) FROM orders GROUP BY user_id HAVING NOT (SUM(qty) < 0 OR MIN(qty) IS NULL)", Ordered),
    ("SELECT amount FROM orders GROUP BY amount ORDER BY amount DESC LIMIT 5", Ordered),
    ("SELECT amount, COUNT(*) FROM orders GROUP BY amount LIMIT 3", Ordered),
    ("SELECT price, COUNT(*), SUM(price) FROM orders GROUP BY price ORDER BY price", Ordered),
    ("SELECT t, COUNT(*) FROM orders GROUP BY t ORDER BY t DESC LIMIT 5", Ordered),
    ("SELECT day, note, COUNT(*) FROM orders GROUP BY day, note ORDER BY day DESC", OrderedCi),
    ("SELECT note, MIN(t), MAX(price), AVG(price) FROM orders WHERE qty IS NOT NULL GROUP BY note ORDER BY note DESC", OrderedCi),
    // DISTINCT
    ("SELECT DISTINCT qty FROM orders", AnyOrder),
    ("SELECT DISTINCT user_id % 3, qty FROM orders ORDER BY 2 DESC, 1", Ordered),
    ("SELECT DISTINCT note FROM orders", AnyOrderCi),
    ("SELECT DISTINCT day FROM orders ORDER BY day LIMIT 4", Ordered),
];

#[tokio::test]
async fn merged_answers_match_mariadb() {
    let mut f = fixture("mg_diff").await;
    for (sql, check) in QUERIES {
        compare(&mut f, sql, *check).await;
    }
    // The hidden sort columns raise no warnings of their own (a number compared with
    // a padded string did: 'Truncated incorrect DECIMAL value').
    for sql in [
        "SELECT id FROM orders ORDER BY id",
        "SELECT qty, COUNT(DISTINCT day) FROM orders GROUP BY qty",
        "SELECT DISTINCT t FROM orders ORDER BY t",
    ] {
        f.sharded.query_drop(sql).await.unwrap();
        assert_eq!(f.sharded.get_warnings(), 0, "{sql}");
    }
    // Inside a transaction (which stays on one node: even users live on dn1), where
    // the shards' results are read in turn.
    f.sharded.query_drop("BEGIN").await.unwrap();
    let dn1 = "user_id IN (2, 4, 6, 8, 10, 12, 14)";
    for (sql, check) in [
        (
            format!("SELECT id, note FROM orders WHERE {dn1} ORDER BY note DESC, id LIMIT 3, 9"),
            Ordered,
        ),
        (
            format!("SELECT COUNT(*), SUM(amount), AVG(price) FROM orders WHERE {dn1}"),
            Ordered,
        ),
        (
            format!(
                "SELECT qty, COUNT(*) FROM orders WHERE {dn1} GROUP BY qty HAVING COUNT(*) > 1"
            ),
            Ordered,
        ),
        (
            format!("SELECT DISTINCT note FROM orders WHERE {dn1}"),
            AnyOrderCi,
        ),
    ] {
        compare(&mut f, &sql, check).await;
    }
    f.sharded.query_drop("COMMIT").await.unwrap();
}

#[tokio::test]
async fn merges_that_would_be_wrong_are_answered_by_a_gather() {
    let mut f = fixture("mg_refuse").await;
    // Shapes a shard-by-shard merge would get wrong: once refused, now gathered and
    // evaluated by one server, so they equal the oracle.
    for (sql, check) in [
        ("SELECT id FROM orders ORDER BY kind, id", Check::Ordered),
        ("SELECT SUM(amount) / COUNT(*) FROM orders", Check::Ordered),
        (
            "SELECT COUNT(DISTINCT note), COUNT(DISTINCT qty) FROM orders",
            Check::Ordered,
        ),
        // The shard key's distinct count next to another's would be summed per
        // (group, note) and come out too large.
        (
            "SELECT COUNT(DISTINCT user_id), COUNT(DISTINCT note) FROM orders",
            Check::Ordered,
        ),
        (
            "SELECT qty, COUNT(DISTINCT note), AVG(DISTINCT user_id) FROM orders GROUP BY qty",
            Check::AnyOrder,
        ),
        // Over no rows a merge would have to make up `1`.
        ("SELECT 1, COUNT(DISTINCT note) FROM orders", Check::Ordered),
        // MariaDB compares a string with a number as a double.
        (
            "SELECT user_id, MAX(note) FROM orders GROUP BY user_id HAVING MAX(note) > 2",
            Check::AnyOrderCi,
        ),
        (
            "SELECT note, COUNT(*) FROM orders GROUP BY note HAVING MIN(day) > 20240101",
            Check::AnyOrderCi,
        ),
        (
            "SELECT user_id, GROUP_CONCAT(id ORDER BY id) FROM orders GROUP BY user_id",
            Check::AnyOrder,
        ),
        (
            "SELECT id, ROW_NUMBER() OVER (ORDER BY id) FROM orders ORDER BY id",
            Check::Ordered,
        ),
    ] {
        compare(&mut f, sql, check).await;
    }
    // The session goes on.
    let n: Option<i64> = f
        .sharded
        .query_first("SELECT COUNT(*) FROM orders")
        .await
        .unwrap();
    assert_eq!(n, Some(160));
    // The catalog speaks of the logical schema and table, although dn1 keeps them in
    // `mg_refuse_a` as `orders_0000` and `orders_0002`.
    let current: Option<String> = f.sharded.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(current.as_deref(), Some("mg_refuse"));
    let tables: Vec<(String, String)> = f
        .sharded
        .query("SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = 'mg_refuse' ORDER BY table_name")
        .await
        .unwrap();
    assert_eq!(tables, [("mg_refuse".to_string(), "orders".to_string())]);
    let columns: Vec<(String, String)> = f
        .sharded
        .query("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'orders' ORDER BY ordinal_position")
        .await
        .unwrap();
    assert_eq!(columns.len(), 9, "{columns:?}");
    assert!(columns.iter().all(|(t, _)| t == "orders"));
    assert_eq!(columns[1].1, "user_id");
    // EXPLAIN SHARDING names the merge steps.
    let plan: Vec<(String, Option<String>, String, String, String)> = f
        .sharded
        .query("EXPLAIN SHARDING SELECT user_id, COUNT(*) FROM orders GROUP BY user_id ORDER BY COUNT(*) DESC LIMIT 2")
        .await
        .unwrap();
    assert_eq!(plan.len(), 4);
    assert!(plan[0].3.contains("aggregate COUNT"), "{:?}", plan[0]);
    assert!(plan[0].3.contains("limit 2"), "{:?}", plan[0]);
    assert!(
        !plan[0].4.contains("LIMIT"),
        "groups must reach the merge whole: {:?}",
        plan[0]
    );
}

/// (Not a merge: this binary's sandbox is the one no other test prepares statements
/// on, so the server's statement count is this test's alone.)
#[tokio::test]
async fn backend_statement_handles_stay_bounded() {
    let g = &sandbox().groups[0];
    let mut root = direct(&g.primary, None).await;
    root.query_drop("SET GLOBAL max_prepared_stmt_count = 300")
        .await
        .unwrap();
    let proxy = Proxy::passthrough(&g.primary.address(), &[]);
    let mut c = proxy.conn(None).await;
    // 600 different statements from one client: without a bound, the backend
    // connection would hold 600 and the server would refuse the 301st (1461).
    let mut failures = Vec::new();
    for i in 0..600 {
        let sql = format!("SELECT ? + {i}");
        match c.exec_first::<i64, _, _>(sql.as_str(), (1,)).await {
            Ok(v) => assert_eq!(v, Some(1 + i)),
            Err(e) => failures.push(e.to_string()),
        }
    }
    let count: Option<(String, u64)> = root
        .query_first("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'")
        .await
        .unwrap();
    root.query_drop("SET GLOBAL max_prepared_stmt_count = DEFAULT")
        .await
        .unwrap();
    assert!(
        failures.is_empty(),
        "{} failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    let (_, count) = count.unwrap();
    assert!(
        count <= 256 + 8,
        "{count} statements prepared on the server"
    );
}
