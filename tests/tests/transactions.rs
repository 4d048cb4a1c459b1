//! Transactions over several data nodes: they commit whole or not at all, their
//! savepoints mean the same on every node, a node lost before the commit rolls
//! everything back and says which, and an abandoned one leaves no branch or lock
//! behind. One sandbox (two groups) for the whole binary; crashes are in xa_crash.rs.

use std::sync::OnceLock;

use mysql_async::prelude::*;
use mysql_async::Conn;
use tests::{direct, error_code, Proxy, Sandbox, PASSWORD, USER};

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[0, 0]).expect("start the MariaDB sandbox"))
}

/// `acct` sharded by id mod 2: even ids on dn1, odd on dn2 (each node's table is `acct`).
fn config(db: &str, mode: &str) -> String {
    let s = sandbox();
    format!(
        "[[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [server]\ninstance_id = \"{db}\"\n\
         [transactions]\nmode = \"{mode}\"\n\
         [nodes.dn1]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [nodes.dn2]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [rules.by_id]\nalgorithm = \"mod\"\nshards = 2\n\
         [schemas.{db}]\nnode = \"dn1\"\n\
         [schemas.{db}.tables.acct]\nkind = \"sharded\"\ncolumn = \"id\"\nrule = \"by_id\"\nnodes = [\"dn1\", \"dn2\"]\n",
        s.groups[0].primary.address(),
        s.groups[1].primary.address(),
    )
}

async fn setup(db: &str, mode: &str) -> (Proxy, Conn) {
    tests::recreate_db(sandbox(), db).await;
    let p = Proxy::with_config(&config(db, mode));
    let mut c = p.conn(Some(db)).await;
    c.query_drop("CREATE TABLE acct (id INT PRIMARY KEY, balance INT NOT NULL)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO acct (id, balance) VALUES (0, 100), (1, 100), (2, 100), (3, 100)")
        .await
        .unwrap();
    (p, c)
}

/// Balances of ids 0..4, read on the nodes themselves.
async fn balances(db: &str) -> Vec<i32> {
    let mut out = vec![0; 4];
    for (group, table) in [(0, "acct"), (1, "acct")] {
        let mut d = direct(&sandbox().groups[group].primary, Some(db)).await;
        let rows: Vec<(i32, i32)> = d
            .query(format!("SELECT id, balance FROM {table} WHERE id < 4"))
            .await
            .unwrap();
        for (id, b) in rows {
            out[id as usize] = b;
        }
    }
    out
}

/// Prepared XA branches of the shardgate that serves `db` (its instance id), on
/// both nodes: none may be left behind.
async fn prepared_branches(db: &str) -> usize {
    let prefix = format!("sg:{db}:");
    let mut n = 0;
    for g in &sandbox().groups {
        let mut d = direct(&g.primary, None).await;
        let rows: Vec<(u32, u32, u32, Vec<u8>)> = d.query("XA RECOVER").await.unwrap();
        n += rows
            .iter()
            .filter(|r| r.3.starts_with(prefix.as_bytes()))
            .count();
    }
    n
}

#[tokio::test]
async fn a_transaction_over_two_nodes_commits_whole_or_not_at_all() {
    let db = "tx_whole";
    let (p, mut c) = setup(db, "xa").await;
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("UPDATE acct SET balance = balance - 10 WHERE id = 0")
        .await
        .unwrap();
    c.query_drop("UPDATE acct SET balance = balance + 10 WHERE id = 1")
        .await
        .unwrap();
    // Its own writes, on both nodes, in one read.
    let sum: i64 = c
        .query_first("SELECT SUM(balance) FROM acct WHERE id IN (0, 1)")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sum, 200);
    let mine: Vec<i32> = c
        .query("SELECT balance FROM acct ORDER BY id")
        .await
        .unwrap();
    assert_eq!(mine, [90, 110, 100, 100]);
    // Nobody else sees any of it before COMMIT.
    assert_eq!(balances(db).await, [100, 100, 100, 100]);
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(balances(db).await, [90, 110, 100, 100]);

    c.query_drop("START TRANSACTION").await.unwrap();
    c.query_drop("UPDATE acct SET balance = 0 WHERE id IN (0, 1, 2, 3)")
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 4);
    c.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(balances(db).await, [90, 110, 100, 100]);

    // Autocommit off: the transaction the statements open spans both nodes too.
    c.query_drop("SET autocommit = 0").await.unwrap();
    c.query_drop("UPDATE acct SET balance = balance + 1 WHERE id = 2")
        .await
        .unwrap();
    c.query_drop("UPDATE acct SET balance = balance + 1 WHERE id = 3")
        .await
        .unwrap();
    c.query_drop("ROLLBACK").await.unwrap();
    c.query_drop("UPDATE acct SET balance = balance + 5 WHERE id = 2")
        .await
        .unwrap();
    c.query_drop("UPDATE acct SET balance = balance + 5 WHERE id = 3")
        .await
        .unwrap();
    assert_eq!(balances(db).await, [90, 110, 100, 100]);
    c.query_drop("COMMIT").await.unwrap();
    c.query_drop("SET autocommit = 1").await.unwrap();
    assert_eq!(balances(db).await, [90, 110, 105, 105]);
    assert_eq!(prepared_branches(db).await, 0);
    drop(p);
}

/// With autocommit off (the default of PyMySQL and mysql-connector-python), DDL as
/// the first statement runs, as on the server: it opens no XA branch (which would
/// refuse it); later DDL commits what came before.
#[tokio::test]
async fn ddl_with_autocommit_off_commits_as_the_server_does() {
    let db = "tx_ddl_auto";
    let (_p, mut c) = setup(db, "xa").await;
    c.query_drop("SET autocommit = 0").await.unwrap();
    c.query_drop("TRUNCATE acct").await.unwrap();
    c.query_drop("INSERT INTO acct (id, balance) VALUES (1, 5), (2, 6)")
        .await
        .unwrap();
    c.query_drop("ALTER TABLE acct ADD COLUMN note INT")
        .await
        .unwrap();
    c.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(balances(db).await, [0, 5, 6, 0], "committed by the ALTER");
    let e = c.query_drop("TRUNCATE no_such_table").await.unwrap_err();
    assert_eq!(tests::error_code(&e), Some(1146), "{e}");
}

#[tokio::test]
async fn savepoints_mean_the_same_on_every_node() {
    let db = "tx_savepoints";
    let (_p, mut c) = setup(db, "xa").await;
    c.query_drop("BEGIN").await.unwrap();
    // Set while only dn1 has a branch: dn2's branch gets it when it opens.
    c.query_drop("UPDATE acct SET balance = 1 WHERE id = 0")
        .await
        .unwrap();
    c.query_drop("SAVEPOINT a").await.unwrap();
    c.query_drop("UPDATE acct SET balance = 2 WHERE id = 1")
        .await
        .unwrap();
    c.query_drop("UPDATE acct SET balance = 2 WHERE id = 0")
        .await
        .unwrap();
    c.query_drop("SAVEPOINT b").await.unwrap();
    c.query_drop("UPDATE acct SET balance = 3 WHERE id IN (0, 1)")
        .await
        .unwrap();
    c.query_drop("ROLLBACK TO SAVEPOINT b").await.unwrap();
    let seen: Vec<i32> = c
        .query("SELECT balance FROM acct WHERE id IN (0, 1) ORDER BY id")
        .await
        .unwrap();
    assert_eq!(seen, [2, 2]);
    c.query_drop("ROLLBACK TO SAVEPOINT a").await.unwrap();
    let e = c.query_drop("ROLLBACK TO SAVEPOINT b").await.unwrap_err();
    assert_eq!(error_code(&e), Some(1305), "{e}");
    c.query_drop("RELEASE SAVEPOINT a").await.unwrap();
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(balances(db).await, [1, 100, 100, 100]);
    assert_eq!(prepared_branches(db).await, 0);
}

#[tokio::test]
async fn a_node_lost_before_commit_rolls_back_every_node_and_is_named() {
    let db = "tx_lost";
    let (p, mut c) = setup(db, "xa").await;
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("UPDATE acct SET balance = 0 WHERE id = 0")
        .await
        .unwrap();
    c.query_drop("UPDATE acct SET balance = 0 WHERE id = 1")
        .await
        .unwrap();
    // shardgate's connections to dn2 in this test's database are killed: the branch
    // there dies with its connection.
    let mut d = direct(&sandbox().groups[1].primary, None).await;
    let ids: Vec<u64> = d
        .query(format!(
            "SELECT id FROM information_schema.processlist WHERE user = '{USER}' AND db = '{db}' AND id <> CONNECTION_ID()"
        ))
        .await
        .unwrap();
    assert!(!ids.is_empty());
    for id in ids {
        let _ = d.query_drop(format!("KILL {id}")).await;
    }
    let e = c.query_drop("COMMIT").await.unwrap_err();
    assert_eq!(error_code(&e), Some(1927), "{e}");
    assert!(e.to_string().contains("dn2"), "{e}");
    assert!(
        e.to_string().contains("rolled it back on every node"),
        "{e}"
    );
    assert_eq!(balances(db).await, [100, 100, 100, 100]);
    // The session goes on.
    c.query_drop("UPDATE acct SET balance = 7 WHERE id IN (0, 1)")
        .await
        .unwrap();
    assert_eq!(balances(db).await, [7, 7, 100, 100]);
    assert_eq!(prepared_branches(db).await, 0);
    drop(p);
}

#[tokio::test]
async fn an_abandoned_transaction_leaves_no_branch_and_no_lock() {
    let db = "tx_abandoned";
    let (p, mut c) = setup(db, "xa").await;
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("UPDATE acct SET balance = 0 WHERE id IN (0, 1)")
        .await
        .unwrap();
    drop(c);
    // Another client takes the same rows at once (a lock left behind would make it
    // wait, and fail after 2 s).
    let mut other = p.conn(Some(db)).await;
    other
        .query_drop("SET SESSION innodb_lock_wait_timeout = 2")
        .await
        .unwrap();
    other
        .query_drop("UPDATE acct SET balance = balance + 1 WHERE id IN (0, 1)")
        .await
        .unwrap();
    assert_eq!(balances(db).await, [101, 101, 100, 100]);
    assert_eq!(prepared_branches(db).await, 0);
}

#[tokio::test]
async fn best_effort_spans_nodes_without_xa() {
    let db = "tx_best_effort";
    let (_p, mut c) = setup(db, "best_effort").await;
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("UPDATE acct SET balance = 50 WHERE id = 0")
        .await
        .unwrap();
    c.query_drop("UPDATE acct SET balance = 150 WHERE id = 1")
        .await
        .unwrap();
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(balances(db).await, [50, 150, 100, 100]);
}

#[tokio::test]
async fn a_consistent_snapshot_transaction_writes_on_one_node_in_xa_mode() {
    let db = "tx_snapshot";
    let (_p, mut c) = setup(db, "xa").await;
    c.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await
        .unwrap();
    c.query_drop("UPDATE acct SET balance = 1 WHERE id = 0")
        .await
        .unwrap();
    // Reads on the other node are fine; a write there could not commit atomically.
    let _: Vec<i32> = c.query("SELECT balance FROM acct").await.unwrap();
    let e = c
        .query_drop("UPDATE acct SET balance = 1 WHERE id = 1")
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), Some(1235), "{e}");
    assert!(e.to_string().contains("best_effort"), "{e}");
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(balances(db).await, [1, 100, 100, 100]);
}

#[tokio::test]
async fn a_deadlock_on_one_node_rolls_back_the_whole_transaction() {
    let db = "tx_deadlock";
    let (p, mut a) = setup(db, "xa").await;
    a.query_drop("INSERT INTO acct (id, balance) VALUES (4, 100), (6, 100), (8, 100)")
        .await
        .unwrap();
    let mut b = p.conn(Some(db)).await;
    // A writes on dn2 (id 1), then on dn1 (id 0).
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("UPDATE acct SET balance = 1 WHERE id = 1")
        .await
        .unwrap();
    a.query_drop("UPDATE acct SET balance = 1 WHERE id = 0")
        .await
        .unwrap();
    // B holds more rows on dn1, so that InnoDB picks A's branch as the victim.
    b.query_drop("BEGIN").await.unwrap();
    for id in [2, 4, 6, 8] {
        // One row at a time: on a table this small an IN list is a scan, which
        // would wait for A's row.
        b.query_drop(format!("UPDATE acct SET balance = 2 WHERE id = {id}"))
            .await
            .unwrap();
    }
    let waiting = tokio::spawn(async move {
        let r = a
            .query_drop("UPDATE acct SET balance = 1 WHERE id = 2")
            .await;
        (r, a)
    });
    // A waits for B's row on dn1.
    let mut d = direct(&sandbox().groups[0].primary, Some(db)).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // (A statement of A's that ended instead shows its answer below.)
    while !waiting.is_finished() {
        // A's statement on dn1's server is blocked there (B holds row 2): InnoDB
        // does not always show the wait as LOCK WAIT (seen as RUNNING, "Updating",
        // for 30 s in full runs), so the statement being on the server is enough.
        let locked: Option<i64> = d
            .query_first(
                "SELECT COUNT(*) FROM information_schema.processlist \
                 WHERE command = 'Query' AND id <> CONNECTION_ID() \
                 AND info LIKE '%balance = 1 WHERE id = 2%'",
            )
            .await
            .unwrap();
        if locked.unwrap_or(0) > 0 {
            break;
        }
        if std::time::Instant::now() > deadline {
            let trx: Vec<mysql_async::Row> = d
                .query("SELECT trx_state, trx_mysql_thread_id, trx_query FROM information_schema.innodb_trx")
                .await
                .unwrap();
            // What each server and shardgate were doing, to tell a stall from a race.
            let mut threads = Vec::new();
            for g in &sandbox().groups {
                let mut n = direct(&g.primary, None).await;
                let list: Vec<mysql_async::Row> = n.query("SHOW FULL PROCESSLIST").await.unwrap();
                threads.push(list);
            }
            let log = p.log();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            panic!(
                "A never waited; transactions on dn1: {trx:?}\nprocesslists: {threads:?}\n\
                 shardgate's log (newest first):\n{}",
                tail.join("\n")
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    b.query_drop("UPDATE acct SET balance = 2 WHERE id = 0")
        .await
        .unwrap();
    let (r, mut a) = waiting.await.unwrap();
    let e = r.unwrap_err();
    assert_eq!(error_code(&e), Some(1213), "{e}");
    b.query_drop("COMMIT").await.unwrap();
    // As on one server, A's transaction is gone whole (its write on dn2 too), and A
    // runs in autocommit again.
    assert_eq!(balances(db).await, [2, 100, 2, 100]);
    a.query_drop("UPDATE acct SET balance = 9 WHERE id = 3")
        .await
        .unwrap();
    assert_eq!(balances(db).await, [2, 100, 2, 9]);
    assert_eq!(prepared_branches(db).await, 0);
}

#[tokio::test]
async fn session_state_set_inside_a_transaction_does_not_stop_its_commit() {
    let db = "tx_pinned";
    let (p, mut c) = setup(db, "xa").await;
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("UPDATE acct SET balance = 5 WHERE id = 0")
        .await
        .unwrap();
    c.query_drop("UPDATE acct SET balance = 6 WHERE id = 1")
        .await
        .unwrap();
    // A user variable ties the session to this connection (dn2's XA branch).
    c.query_drop("SET @mark = 42").await.unwrap();
    c.query_drop("UPDATE acct SET balance = 7 WHERE id = 3")
        .await
        .unwrap();
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(balances(db).await, [5, 6, 100, 7]);
    let mark: Option<i64> = c.query_first("SELECT @mark").await.unwrap();
    assert_eq!(mark, Some(42));
    // DDL commits a transaction over both nodes first (XA branches refuse DDL).
    let mut c = p.conn(Some(db)).await;
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("UPDATE acct SET balance = 8 WHERE id = 0")
        .await
        .unwrap();
    c.query_drop("UPDATE acct SET balance = 8 WHERE id = 1")
        .await
        .unwrap();
    c.query_drop("CREATE TABLE other (a INT)").await.unwrap();
    assert_eq!(balances(db).await, [8, 8, 100, 7]);
    assert_eq!(prepared_branches(db).await, 0);
}

#[tokio::test]
async fn chained_ends_and_what_commits_first_apply_to_every_node() {
    let db = "tx_chain";
    let (p, mut c) = setup(db, "best_effort").await;
    // COMMIT AND CHAIN commits everywhere and begins the next transaction.
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("UPDATE acct SET balance = 1 WHERE id = 0")
        .await
        .unwrap();
    c.query_drop("UPDATE acct SET balance = 1 WHERE id = 1")
        .await
        .unwrap();
    c.query_drop("COMMIT AND CHAIN").await.unwrap();
    c.query_drop("UPDATE acct SET balance = 2 WHERE id IN (0, 1)")
        .await
        .unwrap();
    c.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(balances(db).await, [1, 1, 100, 100]);
    // A chained transaction keeps the ended one's access mode.
    c.query_drop("START TRANSACTION READ ONLY").await.unwrap();
    let _: Vec<i32> = c.query("SELECT balance FROM acct").await.unwrap();
    c.query_drop("COMMIT AND CHAIN").await.unwrap();
    let e = c
        .query_drop("UPDATE acct SET balance = 9 WHERE id = 0")
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), Some(1792), "{e}");
    c.query_drop("ROLLBACK").await.unwrap();
    // COMMIT RELEASE ends the session after the commit, on one node as on two.
    for ids in ["0", "0, 1"] {
        let mut r = p.conn(Some(db)).await;
        r.query_drop("BEGIN").await.unwrap();
        r.query_drop(format!(
            "UPDATE acct SET balance = balance + 10 WHERE id IN ({ids})"
        ))
        .await
        .unwrap();
        r.query_drop("COMMIT RELEASE").await.unwrap();
        assert!(
            r.query_drop("SELECT 1").await.is_err(),
            "the session is closed"
        );
    }
    assert_eq!(balances(db).await, [21, 11, 100, 100]);
    // completion_type would chain behind shardgate's back.
    let e = c.query_drop("SET completion_type = 1").await.unwrap_err();
    assert_eq!(error_code(&e), Some(1235), "{e}");
    // LOCK TABLES commits first, as on one server.
    c.query_drop("CREATE TABLE plain (a INT)").await.unwrap();
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("UPDATE acct SET balance = 3 WHERE id IN (2, 3)")
        .await
        .unwrap();
    c.query_drop("LOCK TABLES plain WRITE").await.unwrap();
    c.query_drop("UNLOCK TABLES").await.unwrap();
    assert_eq!(balances(db).await, [21, 11, 3, 3]);
}

#[tokio::test]
async fn branches_follow_the_session_and_only_transactions_make_branches() {
    let db = "tx_follow";
    let (_p, mut c) = setup(db, "xa").await;
    // A snapshot transaction may make its one write on any node.
    c.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await
        .unwrap();
    c.query_drop("UPDATE acct SET balance = 1 WHERE id = 1")
        .await
        .unwrap();
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(balances(db).await, [100, 1, 100, 100]);
    // A setting runs on the session's own node (dn1); dn2's branch, parked then, gets
    // it when it runs next.
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("UPDATE acct SET balance = 2 WHERE id = 0")
        .await
        .unwrap();
    c.query_drop("UPDATE acct SET balance = 2 WHERE id = 1")
        .await
        .unwrap();
    c.query_drop("SET time_zone = '+05:00'").await.unwrap();
    let (b, tz): (i32, String) = c
        .query_first("SELECT balance, @@session.time_zone FROM acct WHERE id = 1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((b, tz.as_str()), (2, "+05:00"));
    c.query_drop("COMMIT").await.unwrap();
    // A connection kept for the warnings of a statement run before the transaction's
    // first one is no branch of it.
    c.query_drop("BEGIN").await.unwrap();
    let _: Option<i64> = c.query_first("SELECT CAST('7x' AS SIGNED)").await.unwrap();
    c.query_drop("UPDATE acct SET balance = 3 WHERE id = 1")
        .await
        .unwrap();
    c.query_drop("UPDATE acct SET balance = 3 WHERE id = 0")
        .await
        .unwrap();
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(balances(db).await, [3, 3, 100, 100]);
    assert_eq!(prepared_branches(db).await, 0);
}
