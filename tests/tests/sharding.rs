//! Sharded, broadcast and single tables end to end: two replication groups, a logical
//! schema whose `orders` is split over four physical tables, checked against what each
//! MariaDB server really holds.

use std::sync::OnceLock;

use mysql_async::prelude::*;
use mysql_async::{Conn, Row};
use tests::{direct, error_code, Proxy, Sandbox, PASSWORD, USER};

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[1, 1]).expect("start the MariaDB sandbox"))
}

/// shardgate with schema `db` (created on both primaries) sharded as in the README.
async fn proxy(db: &str) -> Proxy {
    proxy_with(db, "").await
}

async fn proxy_with(db: &str, extra: &str) -> Proxy {
    let s = sandbox();
    for g in &s.groups {
        let mut c = direct(&g.primary, None).await;
        c.query_drop(format!("DROP DATABASE IF EXISTS {db}"))
            .await
            .unwrap();
        c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    }
    s.sync().unwrap();
    let (g1, g2) = (&s.groups[0], &s.groups[1]);
    Proxy::with_config(&format!(
        "[[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [nodes.dn1]\nprimary = \"{}\"\nreplicas = [\"{}\"]\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [nodes.dn2]\nprimary = \"{}\"\nreplicas = [\"{}\"]\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [rules.by_user]\nalgorithm = \"mod\"\nshards = 4\n\
         [schemas.{db}]\nnode = \"dn1\"\n\
         [schemas.{db}.tables.orders]\nkind = \"sharded\"\ncolumn = \"user_id\"\nrule = \"by_user\"\nnodes = [\"dn1\", \"dn2\"]\ntables_per_node = 2\n\
         global_id = {{ column = \"id\", worker_id = 7 }}\n\
         [schemas.{db}.tables.countries]\nkind = \"broadcast\"\n\
         [schemas.{db}.tables.audit]\nkind = \"single\"\nnode = \"dn2\"\n{extra}",
        g1.primary.address(),
        g1.replicas[0].address(),
        g2.primary.address(),
        g2.replicas[0].address(),
    ))
}

async fn setup(db: &str) -> (Proxy, Conn) {
    let p = proxy(db).await;
    let mut c = p.conn(Some(db)).await;
    c.query_drop("CREATE TABLE orders (id INT PRIMARY KEY, user_id INT NOT NULL, amount DECIMAL(10,2), note VARCHAR(20))")
        .await
        .unwrap();
    c.query_drop("CREATE TABLE countries (code CHAR(2) PRIMARY KEY, name VARCHAR(40))")
        .await
        .unwrap();
    c.query_drop("CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(40))")
        .await
        .unwrap();
    (p, c)
}

/// Rows of a physical table, read straight from a group's primary.
async fn physical_ids(group: usize, db: &str, table: &str) -> Vec<i32> {
    let mut d = direct(&sandbox().groups[group].primary, Some(db)).await;
    d.query(format!("SELECT id FROM {table} ORDER BY id"))
        .await
        .unwrap()
}

#[tokio::test]
async fn rows_land_on_their_shards_and_read_back() {
    let db = "sh_rows";
    let (_p, mut c) = setup(db).await;
    c.query_drop("INSERT INTO orders (id, user_id, amount) VALUES (1, 1, 10), (2, 2, 20), (3, 3, 30), (4, 4, 40), (5, 5, 50), (6, 6, 60)")
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 6);

    // mod 4, round robin over dn1, dn2: shard 0 and 2 on dn1, 1 and 3 on dn2.
    assert_eq!(physical_ids(0, db, "orders_0000").await, [4]);
    assert_eq!(physical_ids(1, db, "orders_0001").await, [1, 5]);
    assert_eq!(physical_ids(0, db, "orders_0002").await, [2, 6]);
    assert_eq!(physical_ids(1, db, "orders_0003").await, [3]);

    let row: Option<(i32, String)> = c
        .query_first("/* shardgate:primary */ SELECT id, amount FROM orders WHERE user_id = 5")
        .await
        .unwrap();
    assert_eq!(row, Some((5, "50.00".into())));
    sandbox().sync().unwrap();
    // Reads go to the shard's replica; the client sees logical names in the metadata.
    let rows: Vec<Row> = c
        .query("SELECT @@server_id, id FROM orders WHERE user_id IN (1, 5)")
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let server: u32 = rows[0].get(0).unwrap();
    assert_eq!(server, sandbox().groups[1].replicas[0].server_id);
    let cols = rows[0].columns();
    assert_eq!(cols[1].table_str(), "orders");
    assert_eq!(cols[1].org_table_str(), "orders");
    assert_eq!(cols[1].schema_str(), db);

    // No shard key: every shard answers, one result set.
    let mut all: Vec<i32> = c.query("SELECT id FROM orders").await.unwrap();
    all.sort();
    assert_eq!(all, [1, 2, 3, 4, 5, 6]);
    let some: Vec<i32> = c
        .query("SELECT id FROM orders WHERE amount > 1000")
        .await
        .unwrap();
    assert!(some.is_empty());

    c.query_drop("UPDATE orders SET note = 'vip' WHERE user_id = 2")
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 1);
    c.query_drop("UPDATE orders SET note = 'all' WHERE amount >= 30")
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 4, "summed over shards");
    c.query_drop("DELETE FROM orders WHERE user_id IN (3, 4)")
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 2);
    let n: Vec<i32> = c
        .query("/* shardgate:primary */ SELECT id FROM orders")
        .await
        .unwrap();
    assert_eq!(n.len(), 4);
}

#[tokio::test]
async fn prepared_statements_are_routed_by_their_parameters() {
    let db = "sh_prepared";
    let (_p, mut c) = setup(db).await;
    let insert = c
        .prep("INSERT INTO orders (id, user_id, amount, note) VALUES (?, ?, ?, ?)")
        .await
        .unwrap();
    for (id, user) in [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6)] {
        c.exec_drop(&insert, (id, user, format!("{id}.50"), format!("n{id}")))
            .await
            .unwrap();
        assert_eq!(c.affected_rows(), 1);
    }
    // Every row is on its shard, as with the text protocol.
    assert_eq!(physical_ids(0, db, "orders_0000").await, [4]);
    assert_eq!(physical_ids(1, db, "orders_0001").await, [1, 5]);
    assert_eq!(physical_ids(0, db, "orders_0002").await, [2, 6]);
    assert_eq!(physical_ids(1, db, "orders_0003").await, [3]);

    // Reads with binary rows, NULL parameters and logical names in the metadata.
    let select = c
        .prep("/* shardgate:primary */ SELECT id, amount, note FROM orders WHERE user_id IN (?, ?) AND (note = ? OR ? IS NULL) ORDER BY id")
        .await
        .unwrap();
    let rows: Vec<mysql_async::Row> = c
        .exec(&select, (1, 5, None::<String>, None::<String>))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].columns()[0].table_str(), "orders");
    assert_eq!(rows[0].columns()[0].schema_str(), db);
    let got: Vec<(i32, String, String)> = rows.into_iter().map(mysql_async::from_row).collect();
    assert_eq!(
        got,
        [
            (1, "1.50".into(), "n1".into()),
            (5, "5.50".into(), "n5".into())
        ]
    );
    let one: Vec<(i32, String, String)> = c.exec(&select, (5, 5, "n5", "n5")).await.unwrap();
    assert_eq!(one, [(5, "5.50".into(), "n5".into())]);
    // The same statement, other parameters: another shard, no new PREPARE needed.
    let two: Vec<(i32, String, String)> = c
        .exec(&select, (2, 2, None::<String>, None::<String>))
        .await
        .unwrap();
    assert_eq!(two, [(2, "2.50".into(), "n2".into())]);

    let update = c
        .prep("UPDATE orders SET note = ? WHERE user_id = ?")
        .await
        .unwrap();
    c.exec_drop(&update, ("vip", 6)).await.unwrap();
    assert_eq!(c.affected_rows(), 1);
    c.exec_drop("DELETE FROM orders WHERE user_id = ?", (4,))
        .await
        .unwrap();
    assert!(physical_ids(0, db, "orders_0000").await.is_empty());

    // Rows bound to different shards in one execution are refused, and nothing runs.
    let err = c
        .exec_drop(
            "INSERT INTO orders (id, user_id) VALUES (?, ?), (?, ?)",
            (20, 1, 21, 2),
        )
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), Some(1235), "{err}");
    assert_eq!(physical_ids(1, db, "orders_0001").await, [1, 5]);
    // A key the rule cannot read might match rows anywhere: every shard runs it, in
    // one transaction per node, and the server's error rolls all of them back.
    let err = c
        .exec_drop(&update, ("x", "not a number"))
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), Some(1292), "{err}");
    assert!(err.to_string().contains("rolled back"), "{err}");
    // A prepared write over every shard: affected rows are summed.
    c.exec_drop("UPDATE orders SET note = ? WHERE amount > ?", ("big", 2))
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 4);

    // Broadcast tables take prepared statements too.
    c.exec_drop(
        "INSERT INTO countries (code, name) VALUES (?, ?)",
        ("DE", "Germany"),
    )
    .await
    .unwrap();
    let name: Option<String> = c
        .exec_first(
            "/* shardgate:primary */ SELECT name FROM countries WHERE code = ?",
            ("DE",),
        )
        .await
        .unwrap();
    assert_eq!(name.as_deref(), Some("Germany"));
    // In a transaction, prepared executions take a branch on each node they reach,
    // and ROLLBACK undoes them all.
    c.query_drop("BEGIN").await.unwrap();
    c.exec_drop(&update, ("t", 2)).await.unwrap();
    c.exec_drop(&update, ("t", 1)).await.unwrap();
    c.query_drop("ROLLBACK").await.unwrap();
    let notes: Vec<String> = c
        .query("/* shardgate:primary */ SELECT note FROM orders WHERE user_id IN (1, 2) ORDER BY user_id")
        .await
        .unwrap();
    assert!(notes.iter().all(|n| n != "t"), "{notes:?}");
    c.close(insert).await.unwrap();
    c.close(select).await.unwrap();
    c.close(update).await.unwrap();
}

#[tokio::test]
async fn global_ids_are_generated_when_an_insert_omits_them() {
    let db = "sh_ids";
    let (_p, mut c) = setup(db).await;
    // orders.id is INT in setup(): a snowflake needs BIGINT.
    c.query_drop("ALTER TABLE orders MODIFY id BIGINT NOT NULL")
        .await
        .unwrap();
    c.query_drop("INSERT INTO orders (user_id, amount) VALUES (1, 10), (2, 20), (5, 50)")
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 3);
    let first = c
        .last_insert_id()
        .expect("the first generated id is the insert id");
    let rows: Vec<(i64, i32)> = c
        .query("/* shardgate:primary */ SELECT id, user_id FROM orders ORDER BY id")
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].0 as u64, first);
    // In row order, increasing, from worker 7.
    assert_eq!(rows.iter().map(|r| r.1).collect::<Vec<_>>(), [1, 2, 5]);
    assert!(rows.iter().all(|(id, _)| (id >> 12) & 0x3ff == 7));
    // The rows are on their shards.
    let d0: Vec<i64> = direct(&sandbox().groups[1].primary, Some(db))
        .await
        .query("SELECT user_id FROM orders_0001 ORDER BY user_id")
        .await
        .unwrap();
    assert_eq!(d0, [1, 5]);
    // Each INSERT gets new ids.
    c.query_drop("INSERT INTO orders (user_id) VALUES (1)")
        .await
        .unwrap();
    assert!(c.last_insert_id().unwrap() > rows[2].0 as u64);
}

#[tokio::test]
async fn multi_shard_writes_are_all_or_nothing() {
    let db = "sh_atomic";
    let (_p, mut c) = setup(db).await;
    c.query_drop("INSERT INTO orders (id, user_id) VALUES (10, 1)")
        .await
        .unwrap();
    // Row for shard 2 is new, row for shard 1 collides with id 10: nothing may stay.
    let err = c
        .query_drop("INSERT INTO orders (id, user_id) VALUES (11, 2), (10, 5)")
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), Some(1062), "{err}");
    assert!(err.to_string().contains("rolled back"), "{err}");
    assert!(
        physical_ids(0, db, "orders_0002").await.is_empty(),
        "shard 2 kept a row of a failed statement"
    );

    // Inside a transaction, a failing statement over two shards of one node (0 and 2
    // live on dn1) rolls back to its start, and the transaction goes on.
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("INSERT INTO orders (id, user_id) VALUES (20, 2)")
        .await
        .unwrap();
    let err = c
        .query_drop("INSERT INTO orders (id, user_id) VALUES (21, 4), (20, 6)")
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), Some(1062), "{err}");
    c.query_drop("INSERT INTO orders (id, user_id) VALUES (22, 8)")
        .await
        .unwrap();
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(physical_ids(0, db, "orders_0002").await, [20]);
    assert_eq!(
        physical_ids(0, db, "orders_0000").await,
        [22],
        "21 was rolled back with its statement"
    );
}

#[tokio::test]
async fn broadcast_and_single_tables() {
    let db = "sh_bcast";
    let (_p, mut c) = setup(db).await;
    c.query_drop("INSERT INTO countries VALUES ('FR', 'France'), ('JP', 'Japan')")
        .await
        .unwrap();
    // Two rows on each of two nodes, but one table to the client: as MariaDB says.
    assert_eq!(c.affected_rows(), 2);
    c.query_drop("UPDATE countries SET name = UPPER(name) WHERE code = 'JP'")
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 1);
    c.query_drop("UPDATE countries SET name = UPPER(name) WHERE code = 'JP'")
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 0, "nothing changed");
    for g in 0..2 {
        let mut d = direct(&sandbox().groups[g].primary, Some(db)).await;
        let n: Option<i64> = d
            .query_first("SELECT COUNT(*) FROM countries")
            .await
            .unwrap();
        assert_eq!(n, Some(2), "group {g}");
    }
    let name: Option<String> = c
        .query_first("/* shardgate:primary */ SELECT name FROM countries WHERE code = 'JP'")
        .await
        .unwrap();
    assert_eq!(name.as_deref(), Some("JAPAN"));
    c.query_drop("INSERT INTO audit (what) VALUES ('x')")
        .await
        .unwrap();
    // LAST_INSERT_ID() names no table, yet must come from the node that inserted.
    let id: Option<i64> = c.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
    assert_eq!(id, Some(1));
    let mut d2 = direct(&sandbox().groups[1].primary, Some(db)).await;
    let n: Option<i64> = d2.query_first("SELECT COUNT(*) FROM audit").await.unwrap();
    assert_eq!(n, Some(1));
    let mut d1 = direct(&sandbox().groups[0].primary, Some(db)).await;
    let err = d1.query_drop("SELECT * FROM audit").await.unwrap_err();
    assert_eq!(error_code(&err), Some(1146), "audit lives on dn2 only");
}

#[tokio::test]
async fn what_cannot_be_answered_right_gets_a_clear_error() {
    let db = "sh_errors";
    let (_p, mut c) = setup(db).await;
    for (sql, code) in [
        // A locking read cannot be gathered (the locks would be on the copies).
        (
            "SELECT id FROM orders o WHERE id IN (SELECT user_id FROM orders) FOR UPDATE",
            1235,
        ),
        ("UPDATE orders SET user_id = 2 WHERE user_id = 1", 1105),
        // Without a column list the table's four columns are taken: three values
        // are the server's own error.
        ("INSERT INTO orders VALUES (1, 2, 3)", 1136),
        ("SELEC id FROM orders", 1064),
    ] {
        let err = c.query_drop(sql).await.unwrap_err();
        assert_eq!(error_code(&err), Some(code), "{sql}: {err}");
    }
    // The session survives every one of them.
    assert_eq!(c.query_first::<i64, _>("SELECT 1").await.unwrap(), Some(1));
    // A prepared read whose execution needs several shards is answered, merged as
    // the text statement would be.
    c.query_drop("INSERT INTO orders (id, user_id, note) VALUES (91, 1, 'x'), (92, 2, 'x')")
        .await
        .unwrap();
    let ids: Vec<i32> = c
        .exec("SELECT id FROM orders WHERE note = ? ORDER BY id", ("x",))
        .await
        .unwrap();
    assert_eq!(ids, [91, 92]);
    c.query_drop("DELETE FROM orders WHERE id IN (91, 92)")
        .await
        .unwrap();
    // A transaction spreads over two nodes, and is rolled back on both.
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("INSERT INTO orders (id, user_id) VALUES (1, 2)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO orders (id, user_id) VALUES (2, 1)")
        .await
        .unwrap();
    c.query_drop("ROLLBACK").await.unwrap();
    assert!(
        physical_ids(0, db, "orders_0002").await.is_empty(),
        "rolled back"
    );
    assert!(
        physical_ids(1, db, "orders_0001").await.is_empty(),
        "rolled back"
    );
}

#[tokio::test]
async fn transactions_start_on_the_node_of_their_first_statement() {
    let db = "sh_txn";
    let (_p, mut c) = setup(db).await;
    // user 1 is on shard 1, on dn2, not the schema's default node.
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("INSERT INTO orders (id, user_id) VALUES (1, 1), (2, 5)")
        .await
        .unwrap();
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM orders WHERE user_id IN (1, 5)")
        .await
        .unwrap();
    assert_eq!(n, Some(2), "the transaction sees its own rows");
    assert!(
        physical_ids(1, db, "orders_0001").await.is_empty(),
        "not visible before COMMIT"
    );
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(physical_ids(1, db, "orders_0001").await, [1, 2]);

    c.query_drop("START TRANSACTION").await.unwrap();
    c.query_drop("UPDATE orders SET note = 'x' WHERE user_id = 1")
        .await
        .unwrap();
    c.query_drop("ROLLBACK").await.unwrap();
    let note: Option<Option<String>> = c
        .query_first("/* shardgate:primary */ SELECT note FROM orders WHERE user_id = 1")
        .await
        .unwrap();
    assert_eq!(note, Some(None));

    // A transaction that runs nothing ends without touching any node.
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(c.query_first::<i64, _>("SELECT 1").await.unwrap(), Some(1));
}

#[tokio::test]
async fn explain_sharding_shows_the_plan() {
    let db = "sh_explain";
    let (_p, mut c) = setup(db).await;
    let rows: Vec<(String, Option<String>, String, String, String)> = c
        .query("EXPLAIN SHARDING SELECT * FROM orders WHERE user_id IN (1, 2)")
        .await
        .unwrap();
    assert_eq!(
        rows,
        [
            (
                "dn2".into(),
                Some("1".into()),
                "read".into(),
                "concatenate rows".into(),
                "SELECT * FROM `orders_0001` WHERE user_id IN (1, 2)".into()
            ),
            (
                "dn1".into(),
                Some("2".into()),
                "read".into(),
                "concatenate rows".into(),
                "SELECT * FROM `orders_0002` WHERE user_id IN (1, 2)".into()
            ),
        ]
    );
    let rows: Vec<(String, Option<String>, String, String, String)> =
        c.query("EXPLAIN SHARDING SELECT 1").await.unwrap();
    let e = c.query_drop("EXPLAIN SHARDING").await.unwrap_err();
    assert_eq!(error_code(&e), Some(1064), "{e}");
    assert_eq!(rows[0].0, "dn1");
}

#[tokio::test]
async fn show_statements_use_logical_names() {
    let db = "sh_show";
    let (_p, mut c) = setup(db).await;
    let mut d1 = direct(&sandbox().groups[0].primary, Some(db)).await;
    d1.query_drop("CREATE TABLE plain (id INT)").await.unwrap();

    let tables: Vec<String> = c.query("SHOW TABLES").await.unwrap();
    assert_eq!(tables, ["audit", "countries", "orders", "plain"]);
    let full: Vec<(String, String)> = c.query("SHOW FULL TABLES LIKE 'o%'").await.unwrap();
    assert_eq!(full, [("orders".to_string(), "BASE TABLE".to_string())]);

    let columns: Vec<Row> = c.query("DESCRIBE orders").await.unwrap();
    let names: Vec<String> = columns
        .iter()
        .map(|r| r.get::<String, _>(0).unwrap())
        .collect();
    assert_eq!(names, ["id", "user_id", "amount", "note"]);
    let columns: Vec<Row> = c.query("SHOW COLUMNS FROM `orders`").await.unwrap();
    assert_eq!(columns.len(), 4);

    let (name, create): (String, String) = c
        .query_first("SHOW CREATE TABLE orders")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(name, "orders");
    assert!(create.starts_with("CREATE TABLE `orders` ("), "{create}");
    assert!(!create.contains("orders_0"), "{create}");
    let err = c.query_drop("SHOW CREATE TABLE nope").await.unwrap_err();
    assert_eq!(error_code(&err), Some(1146));
}

/// Statements containing `marker` running on the servers of both groups (primaries
/// and replicas): where a scatter read's parts run.
async fn parts_running(marker: &str) -> usize {
    let s = sandbox();
    let servers = s
        .groups
        .iter()
        .flat_map(|g| std::iter::once(&g.primary).chain(&g.replicas));
    running_on(servers, marker).await
}

async fn running_on<'a>(
    servers: impl Iterator<Item = &'a proxy::sandbox::Instance>,
    marker: &str,
) -> usize {
    let mut n = 0;
    {
        for server in servers {
            let mut d = direct(server, None).await;
            let here: Option<i64> = d
                .query_first(format!(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                     WHERE INFO LIKE '%{marker}%' AND INFO NOT LIKE '%PROCESSLIST%'"
                ))
                .await
                .unwrap();
            n += here.unwrap_or(0) as usize;
        }
    }
    n
}

/// A scatter read sends every shard's part before it reads any answer: all four
/// parts are seen running on the backends at the same moment, with and without a
/// merge step.
#[tokio::test]
async fn a_scatter_reads_parts_run_at_once() {
    let db = "sh_fanout";
    let (p, mut c) = setup(db).await;
    c.query_drop("INSERT INTO orders (id, user_id) VALUES (1, 0), (2, 1), (3, 2), (4, 3)")
        .await
        .unwrap();
    // Reads go to the replicas: let them have the rows.
    sandbox().sync().unwrap();
    for (marker, sql) in [
        (
            "fan_merge",
            "SELECT user_id, SLEEP(1.5) AS fan_merge FROM orders ORDER BY user_id",
        ),
        (
            "fan_concat",
            "SELECT user_id, SLEEP(1.5) AS fan_concat FROM orders",
        ),
    ] {
        let mut client = p.conn(Some(db)).await;
        let sql = sql.to_string();
        let running = tokio::spawn(async move {
            let rows: Vec<(i32, i32)> = client.query(sql).await.unwrap();
            rows.len()
        });
        let mut most = 0;
        for _ in 0..20 {
            most = most.max(parts_running(marker).await);
            if most == 4 || running.is_finished() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(running.await.unwrap(), 4);
        assert_eq!(most, 4, "{marker}: at most {most} parts ran at once");
    }
}

/// An information_schema question in a batch: never one node's answer for the
/// batch's other statements (a sharded table's rows from one node), and never a
/// client left waiting for results that do not come. It gets all of its answers or a
/// clear error, and the session goes on.
#[tokio::test]
async fn a_catalog_question_in_a_batch_is_answered_whole_or_refused() {
    let db = "sh_catalog_batch";
    let (_p, mut c) = setup(db).await;
    c.query_drop("INSERT INTO orders (id, user_id) VALUES (1, 0), (2, 1), (3, 2), (4, 3)")
        .await
        .unwrap();
    sandbox().sync().unwrap();
    let sql = "SELECT table_name FROM information_schema.tables \
               WHERE table_schema = DATABASE() ORDER BY table_name; SELECT COUNT(*) FROM orders";
    let answered = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let mut result = c.query_iter(sql).await?;
        let tables: Vec<String> = result.collect().await?;
        let count: Vec<i64> = result.collect().await?;
        drop(result);
        Ok::<_, mysql_async::Error>((tables, count))
    })
    .await
    .expect("the batch's answer ended");
    match answered {
        Ok((tables, count)) => {
            assert!(tables.iter().any(|t| t == "orders"), "{tables:?}");
            assert_eq!(count, [4], "every shard's rows");
        }
        Err(e) => assert_eq!(error_code(&e), Some(1235), "{e}"),
    }
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

/// A write over several nodes runs on all of them at once (each node's shards in
/// turn, on the one connection of its transaction), and commits everywhere.
#[tokio::test]
async fn a_multi_node_writes_parts_run_at_once() {
    let db = "sh_fanout_write";
    let (p, mut c) = setup(db).await;
    c.query_drop("INSERT INTO orders (id, user_id) VALUES (1, 0), (2, 1), (3, 2), (4, 3)")
        .await
        .unwrap();
    let mut client = p.conn(Some(db)).await;
    let running = tokio::spawn(async move {
        client
            .query_drop("UPDATE orders SET id = id + 10 WHERE SLEEP(1.5) = 0 AND 'fan_write' <> ''")
            .await
            .unwrap();
        client.affected_rows()
    });
    let mut most = 0;
    for _ in 0..40 {
        // On the primaries only: the replicas replay the write after it commits.
        let primaries = sandbox().groups.iter().map(|g| &g.primary);
        most = most.max(running_on(primaries, "fan_write").await);
        if most == 2 || running.is_finished() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(running.await.unwrap(), 4);
    assert_eq!(most, 2, "at most {most} nodes wrote at once");
    sandbox().sync().unwrap();
    let ids: Vec<i32> = c.query("SELECT id FROM orders ORDER BY id").await.unwrap();
    assert_eq!(ids, [11, 12, 13, 14]);
}

/// When one node's part of a write fails, the other nodes run no more of theirs: the
/// statement is rolled back anyway, and what a rollback cannot undo (a
/// non-transactional table) is not done at all.
#[tokio::test]
async fn a_failing_node_stops_the_other_nodes_parts() {
    let db = "sh_write_stop";
    let (_p, mut c) = setup(db).await;
    c.query_drop("INSERT INTO orders (id, user_id) VALUES (1, 0)")
        .await
        .unwrap();
    // dn2 holds shards 1 and 3; there they keep rows whatever happens after.
    let mut d2 = direct(&sandbox().groups[1].primary, Some(db)).await;
    for t in ["orders_0001", "orders_0003"] {
        d2.query_drop(format!("ALTER TABLE {t} ENGINE = MyISAM"))
            .await
            .unwrap();
    }
    // Shard 0 (dn1) fails at once on a duplicate key; dn2 runs shard 1 for a second,
    // then would run shard 3.
    let e = c
        .query_drop("INSERT INTO orders (id, user_id) VALUES (1, 0), (2 + SLEEP(1), 1), (3, 3)")
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), Some(1062), "{e}");
    // dn2's first part ran if it started before dn1's failure was known (the parts
    // start at once, so either may come first); nothing else is there.
    let ran: Vec<i32> = d2.query("SELECT id FROM orders_0001").await.unwrap();
    assert!(ran.is_empty() || ran == [2], "{ran:?}");
    let stopped: Vec<i32> = d2.query("SELECT id FROM orders_0003").await.unwrap();
    assert!(
        stopped.is_empty(),
        "dn2 went on after dn1 failed: {stopped:?}"
    );
}

/// Statements long enough to be planned off the I/O thread (a 200,000-value IN list,
/// a PREPARE with 65,535 parameters) answer like short ones.
#[tokio::test]
async fn the_longest_in_lists_are_planned_and_answered() {
    let db = "sh_long";
    let (_p, mut c) = setup(db).await;
    c.query_drop("INSERT INTO orders (id, user_id) VALUES (1, 0), (2, 1), (3, 2), (4, 3), (5, 77)")
        .await
        .unwrap();
    sandbox().sync().unwrap();
    let values: Vec<String> = (0..200_000).map(|i| (i * 3).to_string()).collect();
    let n: Option<i64> = c
        .query_first(format!(
            "SELECT COUNT(*) FROM orders WHERE user_id IN ({})",
            values.join(",")
        ))
        .await
        .unwrap();
    // 0 and 3 are multiples of 3; 1, 2 and 77 are not.
    assert_eq!(n, Some(2));
    // Every parameter on shard 1 (mod 4), so the execution runs on one shard: 1 and
    // 77 hold rows, the rest do not.
    let marks = vec!["?"; 65_535].join(",");
    let params: Vec<mysql_async::Value> = (0..65_535i64)
        .map(|i| {
            mysql_async::Value::Int(if i < 2 {
                [1, 77][i as usize]
            } else {
                1_000_001 + 4 * i
            })
        })
        .collect();
    let stmt = c
        .prep(format!(
            "SELECT COUNT(*) FROM orders WHERE user_id IN ({marks})"
        ))
        .await
        .unwrap();
    let n: Option<i64> = c
        .exec_first(&stmt, mysql_async::Params::Positional(params))
        .await
        .unwrap();
    assert_eq!(n, Some(2));
}

/// A shard's physical table is not a table clients may name: a row written there
/// would sit where its shard key does not send reads, and dropping it breaks every
/// read of the logical table.
#[tokio::test]
async fn physical_shard_tables_cannot_be_named() {
    let db = "sh_physical";
    let (p, mut c) = setup(db).await;
    for sql in [
        "INSERT INTO orders_0000 (id, user_id) VALUES (5000, 1)",
        "SELECT * FROM orders_0001",
        "DROP TABLE orders_0002",
        "UPDATE `orders_0003` SET note = 'x'",
        "SELECT * FROM orders o JOIN orders_0001 p ON p.id = o.id WHERE o.user_id = 1",
        "RENAME TABLE orders_0000 TO oo",
        "DROP INDEX ix ON orders_0000",
        "LOCK TABLES orders_0000 READ",
        "EXECUTE IMMEDIATE 'SELECT * FROM orders_0000'",
        "SELECT * FROM sh_physical.orders_0001",
    ] {
        let e = c.query_drop(sql).await.unwrap_err();
        assert_eq!(error_code(&e), Some(1146), "{sql}: {e}");
    }
    // COM_FIELD_LIST names a table too.
    let addr = p.addr();
    let code = tokio::task::spawn_blocking(move || {
        let (mut raw, _) = tests::raw::RawClient::connect(&addr, USER, PASSWORD).unwrap();
        let mut init = vec![0x02];
        init.extend_from_slice(db.as_bytes());
        raw.command(&init).unwrap();
        let (answer, _) = raw.command(b"\x04orders_0000\0").unwrap();
        tests::raw::err_code(&answer)
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1146));
    // All four shards are still there and empty.
    for (group, table) in [
        (0, "orders_0000"),
        (1, "orders_0001"),
        (0, "orders_0002"),
        (1, "orders_0003"),
    ] {
        assert!(physical_ids(group, db, table).await.is_empty());
    }
}

/// Executable comments mean what the backend makes of them: MariaDB skips code for
/// MySQL 5.7+ (`/*!50700`–`/*!99999`) and runs its own (`/*M!`), and routing follows.
#[tokio::test]
async fn executable_comments_route_as_the_server_reads_them() {
    let db = "sh_comments";
    let (_p, mut c) = setup(db).await;
    c.query_drop("/*!40101 SET NAMES utf8mb4 */").await.unwrap();
    c.query_drop("INSERT INTO orders (id, user_id) VALUES (1, 1), (2, 2) /*!99999 , (3, 3) */")
        .await
        .unwrap();
    sandbox().sync().unwrap();
    for (sql, want) in [
        (
            "SELECT id FROM orders WHERE user_id IN (1, 2) /*!99999 AND user_id = 2 */ ORDER BY id",
            vec![1, 2],
        ),
        (
            "SELECT id FROM orders WHERE user_id = 1 /*M!100000 OR user_id = 2 */ ORDER BY id",
            vec![1, 2],
        ),
        (
            "SELECT id FROM orders WHERE user_id = 1 /*!40101 OR user_id = 2 */ ORDER BY id",
            vec![1, 2],
        ),
        (
            "SELECT id FROM orders /*M!999999 WHERE user_id = 2 */ ORDER BY id",
            vec![1, 2],
        ),
        // `||` is OR in MariaDB's default sql_mode.
        (
            "SELECT id FROM orders WHERE user_id = 1 || user_id = 2 ORDER BY id",
            vec![1, 2],
        ),
    ] {
        let got: Vec<i32> = c.query(sql).await.unwrap();
        assert_eq!(got, want, "{sql}");
    }
}

/// Replica connections refuse writes: a SELECT that calls a stored function which
/// writes is refused there (not run on the replica alone, which would then differ from
/// its primary), and runs on the primary when sent there.
#[tokio::test]
async fn a_replica_never_takes_a_write_a_select_hides() {
    let db = "sh_replica_write";
    let (_p, mut c) = setup(db).await;
    c.query_drop("CREATE TABLE audit_log (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(20))")
        .await
        .unwrap();
    c.query_drop(
        "CREATE FUNCTION fw() RETURNS INT DETERMINISTIC MODIFIES SQL DATA \
         BEGIN INSERT INTO audit_log (what) VALUES ('x'); RETURN 1; END",
    )
    .await
    .unwrap();
    sandbox().sync().unwrap();
    let e = c.query_drop("SELECT fw()").await.unwrap_err();
    assert_eq!(error_code(&e), Some(1792), "{e}");
    let n: Option<i32> = c
        .query_first("/* shardgate:primary */ SELECT fw()")
        .await
        .unwrap();
    assert_eq!(n, Some(1));
    sandbox().sync().unwrap();
    // The replica has exactly the primary's row.
    let g = &sandbox().groups[0];
    for server in [&g.primary, &g.replicas[0]] {
        let mut d = direct(server, Some(db)).await;
        let n: Option<i64> = d
            .query_first("SELECT COUNT(*) FROM audit_log")
            .await
            .unwrap();
        assert_eq!(n, Some(1));
    }
}

/// A statement timeout stops every part of a scatter read, not only the last one
/// started: soon after it fires, no part runs on any backend.
#[tokio::test]
async fn a_statement_timeout_stops_every_part() {
    let db = "sh_timeout";
    let p = proxy_with(db, "[server]\nstatement_timeout_ms = 500\n").await;
    let mut c = p.conn(Some(db)).await;
    c.query_drop("CREATE TABLE orders (id INT PRIMARY KEY, user_id INT NOT NULL, amount DECIMAL(10,2), note VARCHAR(20))")
        .await
        .unwrap();
    c.query_drop("INSERT INTO orders (id, user_id) VALUES (1, 0), (2, 1), (3, 2), (4, 3)")
        .await
        .unwrap();
    sandbox().sync().unwrap();
    let mut client = p.conn(Some(db)).await;
    let running = tokio::spawn(async move {
        // Parts sleep 2, 4, 6 and 8 s.
        client
            .query_drop("SELECT user_id, SLEEP(2 + 2 * user_id) AS fan_timeout FROM orders")
            .await
    });
    // Killed, every part is gone well before the shortest uncut ones (6 s, 8 s) would
    // end; one killed alone would leave the others running that long.
    let mut left = usize::MAX;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        left = parts_running("fan_timeout").await;
        if left == 0 {
            break;
        }
    }
    let answer = running.await.unwrap();
    assert!(answer.is_err(), "the timeout ends the statement");
    assert_eq!(left, 0, "parts still running 4 s after the timeout");
}

/// SHOW TABLES lists logical tables however the schema is named.
#[tokio::test]
async fn show_tables_from_a_schema_lists_logical_tables() {
    let db = "sh_show_from";
    let (_p, mut c) = setup(db).await;
    for sql in [
        "SHOW TABLES".to_string(),
        format!("SHOW TABLES FROM {db}"),
        format!("SHOW FULL TABLES IN `{db}` LIKE 'ord%'"),
    ] {
        let rows: Vec<mysql_async::Row> = c.query(&sql).await.unwrap();
        let names: Vec<String> = rows
            .iter()
            .map(|r| r.get::<String, _>(0).unwrap())
            .collect();
        assert!(names.iter().any(|n| n == "orders"), "{sql}: {names:?}");
        assert!(
            !names.iter().any(|n| n.starts_with("orders_")),
            "{sql}: {names:?}"
        );
    }
}
