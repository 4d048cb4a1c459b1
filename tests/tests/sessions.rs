//! Sessions and transactions behave as MySQL's, and nothing of one client reaches
//! another: abandoned transactions, one-shot transaction settings, statements that
//! touch no table, a lost backend connection, LAST_INSERT_ID(), fair pools. One
//! sandbox (two groups, a replica each) for the whole binary.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::Conn;
use tests::raw::RawClient;
use tests::{direct, error_code, Proxy, Sandbox, PASSWORD, USER};

const IN_TRANS: u16 = 1;

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[1, 1]).expect("start the MariaDB sandbox"))
}

fn passthrough() -> Proxy {
    let g = &sandbox().groups[0];
    let replicas: Vec<String> = g.replicas.iter().map(|r| r.address()).collect();
    Proxy::passthrough(&g.primary.address(), &replicas)
}

/// `db` created afresh on both primaries (and their replicas).
async fn fresh_db(db: &str) {
    tests::recreate_db(sandbox(), db).await;
    sandbox().sync().unwrap();
}

/// shardgate with logical schema `db` on dn1: `orders` sharded by user_id over both
/// nodes, `audit` (AUTO_INCREMENT) on dn2 only. `extra` is appended to the config.
async fn sharded(db: &str, extra: &str) -> Proxy {
    fresh_db(db).await;
    Proxy::with_config(&sharded_config(db, extra))
}

fn sharded_config(db: &str, extra: &str) -> String {
    let (g1, g2) = (&sandbox().groups[0], &sandbox().groups[1]);
    format!(
        "[[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [nodes.dn1]\nprimary = \"{}\"\nreplicas = [\"{}\"]\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [nodes.dn2]\nprimary = \"{}\"\nreplicas = [\"{}\"]\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [rules.by_user]\nalgorithm = \"mod\"\nshards = 4\n\
         [schemas.{db}]\nnode = \"dn1\"\n\
         [schemas.{db}.tables.orders]\nkind = \"sharded\"\ncolumn = \"user_id\"\nrule = \"by_user\"\nnodes = [\"dn1\", \"dn2\"]\ntables_per_node = 2\n\
         [schemas.{db}.tables.audit]\nkind = \"single\"\nnode = \"dn2\"\n{extra}",
        g1.primary.address(),
        g1.replicas[0].address(),
        g2.primary.address(),
        g2.replicas[0].address(),
    )
}

async fn count(c: &mut Conn, sql: &str) -> i64 {
    c.query_first::<i64, _>(sql).await.unwrap().unwrap()
}

/// Rows of `db.t` on group 0's primary as a READ UNCOMMITTED reader sees them: an
/// uncommitted row of a transaction still open anywhere shows up here.
async fn dirty_count(db: &str, table: &str) -> i64 {
    let mut d = direct(&sandbox().groups[0].primary, Some(db)).await;
    d.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")
        .await
        .unwrap();
    count(&mut d, &format!("SELECT COUNT(*) FROM {table}")).await
}

/// A new session sees `schema` in SHOW DATABASES within a few seconds: a reload that
/// adds it is in effect.
async fn lists_schema(p: &Proxy, schema: &str) -> bool {
    eventually(async || {
        let mut n = p.conn(None).await;
        let dbs: Vec<String> = n.query("SHOW DATABASES").await.unwrap();
        dbs.iter().any(|d| d == schema)
    })
    .await
}

async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn an_abandoned_transaction_is_rolled_back_and_reaches_no_one() {
    let db = "ss_abandon";
    fresh_db(db).await;
    let p = passthrough();
    let mut setup = p.conn(Some(db)).await;
    setup
        .query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    drop(setup);

    // A client opens a transaction, writes, and goes away: with COM_QUIT, and by
    // just closing its socket.
    let mut a = p.conn(Some(db)).await;
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("INSERT INTO t VALUES (600)").await.unwrap();
    a.disconnect().await.unwrap();
    let (mut b, _) = tests::raw::RawClient::connect(&p.addr(), USER, PASSWORD).unwrap();
    b.command(format!("\x03USE {db}").as_bytes()).unwrap();
    b.command(b"\x03START TRANSACTION").unwrap();
    b.command(b"\x03INSERT INTO t VALUES (601)").unwrap();
    drop(b);

    assert!(
        eventually(async || dirty_count(db, "t").await == 0).await,
        "the abandoned transactions' rows are still pending on the server"
    );

    // Later clients' autocommit writes commit for real, and see nothing foreign.
    for i in 0..20 {
        let mut c = p.conn(Some(db)).await;
        let (in_txn,): (i64,) = c
            .query_first("/* shardgate:primary */ SELECT @@in_transaction")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(in_txn, 0, "a fresh session found a transaction open");
        assert_eq!(
            count(&mut c, "/* shardgate:primary */ SELECT COUNT(*) FROM t").await,
            i
        );
        c.query_drop(format!("INSERT INTO t VALUES ({i})"))
            .await
            .unwrap();
        c.disconnect().await.unwrap();
    }
    let mut d = direct(&sandbox().groups[0].primary, Some(db)).await;
    assert_eq!(count(&mut d, "SELECT COUNT(*) FROM t").await, 20);
}

/// A layout change (SIGHUP) adds a node whose name sorts first, so every node's
/// position moves. A transaction open across the change finishes on the snapshot it
/// began with (it reads its own rows); statements after it route by the new layout.
#[tokio::test]
async fn a_layout_change_lets_open_transactions_finish_where_they_began() {
    let db = "ss_layout";
    let p = sharded(db, "").await;
    let mut c = p.conn(Some(db)).await;
    c.query_drop("CREATE TABLE orders (id INT PRIMARY KEY, user_id INT NOT NULL)")
        .await
        .unwrap();
    // A table no rule names lives on the schema's node, dn1; a prepared statement on
    // it is routed by shardgate and must keep running there.
    c.query_drop("CREATE TABLE notes (id INT PRIMARY KEY)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO notes VALUES (1), (2)")
        .await
        .unwrap();
    // Reads go to the replicas.
    sandbox().sync().unwrap();
    let mut prepared = p.conn(Some(db)).await;
    let notes = "SELECT COUNT(*) FROM notes WHERE id > ?";
    let n: Option<i64> = prepared.exec_first(notes, (0,)).await.unwrap();
    assert_eq!(n, Some(2));
    // A session whose last statement left a warning keeps its connection for SHOW
    // WARNINGS: that must not keep it on the old layout.
    let mut warned = p.conn(Some(db)).await;
    warned.query_drop("SELECT 1 + 'x'").await.unwrap();
    c.query_drop("BEGIN").await.unwrap();
    // user 1 lives in shard 1, on dn2: the second node, the third after the change.
    c.query_drop("INSERT INTO orders (id, user_id) VALUES (1, 1)")
        .await
        .unwrap();

    // dn0 is the other group's primary, where `notes` does not exist.
    let g1 = &sandbox().groups[0];
    let g2 = &sandbox().groups[1];
    let extra = format!(
        "[nodes.dn0]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [schemas.{db}_new]\nnode = \"dn0\"\n",
        g2.primary.address()
    );
    p.reload(&sharded_config(db, &extra));
    assert!(
        lists_schema(&p, &format!("{db}_new")).await,
        "the new layout was not put in effect"
    );

    let dbs: Vec<String> = warned.query("SHOW DATABASES").await.unwrap();
    assert!(dbs.contains(&format!("{db}_new")), "{dbs:?}");
    // The same prepared statement, after the change: still on dn1.
    let n: Option<i64> = prepared.exec_first(notes, (1,)).await.unwrap();
    assert_eq!(n, Some(1));
    // Still the transaction's connection: its own uncommitted row, on dn2.
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM orders WHERE user_id = 1").await,
        1
    );
    c.query_drop("INSERT INTO orders (id, user_id) VALUES (5, 5)")
        .await
        .unwrap();
    c.query_drop("COMMIT").await.unwrap();
    // After it, the new layout: every user's rows where the rule puts them.
    for u in [0, 2, 3] {
        c.query_drop(format!(
            "INSERT INTO orders (id, user_id) VALUES ({}, {u})",
            10 + u
        ))
        .await
        .unwrap();
    }
    let mut d2 = direct(&sandbox().groups[1].primary, Some(db)).await;
    let on_dn2: Vec<i32> = d2
        .query("SELECT id FROM orders_0001 UNION ALL SELECT id FROM orders_0003 ORDER BY id")
        .await
        .unwrap();
    assert_eq!(on_dn2, [1, 5, 13]);
    let mut d1 = direct(&g1.primary, Some(db)).await;
    let on_dn1: Vec<i32> = d1
        .query("SELECT id FROM orders_0000 UNION ALL SELECT id FROM orders_0002 ORDER BY id")
        .await
        .unwrap();
    assert_eq!(on_dn1, [10, 12]);
    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM orders").await, 5);

    // When the layout moves the statement's database to another node, the client is
    // told to prepare again, rather than the statement running where it used to.
    let moved = sharded_config(
        db,
        &format!("{extra}[schemas.{db}_later]\nnode = \"dn1\"\n"),
    )
    .replace(
        &format!("[schemas.{db}]\nnode = \"dn1\""),
        &format!("[schemas.{db}]\nnode = \"dn2\""),
    );
    assert!(moved.contains(&format!("[schemas.{db}]\nnode = \"dn2\"")));
    p.reload(&moved);
    assert!(lists_schema(&p, &format!("{db}_later")).await);
    let e = prepared
        .exec_first::<i64, _, _>(notes, (1,))
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), Some(1615), "{e}");

    // A file that does not validate changes nothing, and the log says why without
    // quoting it.
    p.reload("[[users]]\nname = \"\"\npassword = \"S3cretInTheFile\"\n");
    assert!(eventually(async || p.log().contains("config reload refused")).await);
    assert!(!p.log().contains("S3cretInTheFile"), "{}", p.log());
    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM orders").await, 5);
    let mut n = p.conn(None).await;
    let dbs: Vec<String> = n.query("SHOW DATABASES").await.unwrap();
    assert!(dbs.contains(&format!("{db}_new")), "{dbs:?}");
}

/// Layout changes wake idle sessions, but do not make them less idle: a session
/// idle past `client_idle_timeout_ms` is closed however many reloads came meanwhile.
#[tokio::test]
async fn layout_changes_do_not_keep_idle_sessions_open() {
    let db = "ss_idle_reload";
    let body = sharded_config(db, "[server]\nclient_idle_timeout_ms = 1500\n");
    fresh_db(db).await;
    let p = Proxy::with_config(&body);
    let mut c = p.conn(Some(db)).await;
    c.query_drop("SELECT 1").await.unwrap();
    let until = Instant::now() + Duration::from_millis(3500);
    while Instant::now() < until {
        p.reload(&body);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        c.query_drop("SELECT 1").await.is_err(),
        "idle for 3.5 s with a 1.5 s limit, yet still open"
    );
}

/// Even at debug level, the log never quotes a statement's secrets (sqlparser's own
/// debug output prints whole statements).
#[tokio::test]
async fn debug_logs_do_not_quote_statements() {
    let db = "ss_debug_log";
    fresh_db(db).await;
    let p = Proxy::with_config_logging(&sharded_config(db, ""), Some("debug"));
    let mut c = p.conn(Some(db)).await;
    c.query_drop(
        "CREATE TABLE orders (id INT PRIMARY KEY, user_id INT NOT NULL, note VARCHAR(64))",
    )
    .await
    .unwrap();
    c.query_drop("SELECT id, PASSWORD('Sup3rSecret9') FROM orders WHERE user_id = 1")
        .await
        .unwrap();
    c.query_drop("UPDATE orders SET note = 'Sup3rSecret9' WHERE user_id = 2")
        .await
        .unwrap();
    // Not liftable into a plan template: the whole text is parsed.
    c.query_drop("SELECT id FROM orders WHERE note LIKE 'Sup3rSecret9%'")
        .await
        .unwrap();
    let log = p.log();
    assert!(log.contains("DEBUG"), "debug logging was on");
    assert!(!log.contains("Sup3rSecret9"), "{log}");
}

/// A layout change that takes a user's write right away, or removes the user, acts
/// on that user's open sessions too, not only on new logins.
#[tokio::test]
async fn a_layout_change_reaches_the_sessions_of_changed_users() {
    let db = "ss_users";
    let temp = |privileges: &str| {
        format!("[[users]]\nname = \"temp\"\npassword = \"pw\"\nprivileges = [{privileges}]\n")
    };
    let p = sharded(db, &temp("\"read\", \"write\", \"ddl\"")).await;
    let mut c = p.conn(Some(db)).await;
    c.query_drop("CREATE TABLE notes (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let mut t = Conn::new(p.opts("temp", "pw", Some(db))).await.unwrap();
    t.query_drop("INSERT INTO notes VALUES (1)").await.unwrap();
    // A session pinned to its connection (a user variable) keeps its node ids on the
    // old snapshot, but not its old rights.
    let mut pinned = Conn::new(p.opts("temp", "pw", Some(db))).await.unwrap();
    pinned.query_drop("SET @x = 1").await.unwrap();

    p.reload(&sharded_config(db, &temp("\"read\"")));
    // A write that writes nothing, until the right is gone.
    let read_only = eventually(async || {
        let e = t
            .query_drop("INSERT INTO notes SELECT 2 FROM DUAL WHERE 0")
            .await;
        matches!(&e, Err(e) if error_code(e) == Some(1142))
    })
    .await;
    assert!(read_only, "the open session kept its write right");
    let e = pinned
        .query_drop("INSERT INTO notes SELECT 2 FROM DUAL WHERE 0")
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), Some(1142), "{e}");
    let x: Option<i64> = pinned.query_first("SELECT @x").await.unwrap();
    assert_eq!(x, Some(1), "still its own connection");
    sandbox().sync().unwrap();
    assert_eq!(count(&mut t, "SELECT COUNT(*) FROM notes").await, 1);

    p.reload(&sharded_config(db, ""));
    let gone = eventually(async || {
        let e = Conn::new(p.opts("temp", "pw", Some(db))).await.map(drop);
        matches!(&e, Err(e) if error_code(e) == Some(1045))
    })
    .await;
    assert!(gone, "the removed user could still log in");
    // Its idle session was closed when the change came, without waiting for its next
    // statement (which would have been answered 1927).
    let e = t.query_drop("SELECT 1").await.unwrap_err();
    assert_eq!(error_code(&e), None, "{e}");
}

#[tokio::test]
async fn a_one_shot_isolation_level_travels_with_its_transaction() {
    let db = "ss_isolation";
    fresh_db(db).await;
    let p = passthrough();
    let mut c = p.conn(Some(db)).await;
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let mut other = direct(&sandbox().groups[0].primary, Some(db)).await;

    // READ COMMITTED for the next transaction only: it sees another client's commit.
    // Another session's transaction starts in between, on the backend connection
    // that ran the SET (the pool lends the last one returned): it stays at
    // REPEATABLE READ.
    let mut n = p.conn(Some(db)).await;
    c.query_drop("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        .await
        .unwrap();
    n.query_drop("START TRANSACTION").await.unwrap();
    assert_eq!(count(&mut n, "SELECT COUNT(*) FROM t").await, 0);
    c.query_drop("START TRANSACTION").await.unwrap();
    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM t").await, 0);
    other.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM t").await,
        1,
        "the transaction did not run at READ COMMITTED"
    );
    assert_eq!(
        count(&mut n, "SELECT COUNT(*) FROM t").await,
        0,
        "another session's transaction got the one-shot READ COMMITTED"
    );
    c.query_drop("COMMIT").await.unwrap();
    n.query_drop("COMMIT").await.unwrap();

    // The next transaction is back at REPEATABLE READ: its snapshot holds.
    c.query_drop("START TRANSACTION").await.unwrap();
    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM t").await, 1);
    other.query_drop("INSERT INTO t VALUES (2)").await.unwrap();
    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM t").await, 1);
    c.query_drop("COMMIT").await.unwrap();

    // Changing the characteristics inside a transaction fails, as on MariaDB.
    c.query_drop("BEGIN").await.unwrap();
    let e = c
        .query_drop("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), Some(1568), "{e}");
    c.query_drop("ROLLBACK").await.unwrap();

    // READ ONLY travels too: the transaction refuses writes.
    c.query_drop("SET TRANSACTION READ ONLY").await.unwrap();
    c.query_drop("START TRANSACTION").await.unwrap();
    let e = c.query_drop("INSERT INTO t VALUES (3)").await.unwrap_err();
    assert_eq!(error_code(&e), Some(1792), "{e}");
    c.query_drop("ROLLBACK").await.unwrap();
    c.query_drop("INSERT INTO t VALUES (3)").await.unwrap();

    // Other sessions never get the one-shot setting: their transactions are RR.
    for _ in 0..10 {
        let mut n = p.conn(Some(db)).await;
        n.query_drop("START TRANSACTION").await.unwrap();
        let before = count(&mut n, "SELECT COUNT(*) FROM t").await;
        other
            .query_drop("INSERT INTO t SELECT MAX(id) + 1 FROM t")
            .await
            .unwrap();
        assert_eq!(count(&mut n, "SELECT COUNT(*) FROM t").await, before);
        n.query_drop("COMMIT").await.unwrap();
    }
}

#[tokio::test]
async fn statements_without_tables_follow_the_transaction() {
    let db = "ss_tableless";
    let p = sharded(db, "").await;
    let mut c = p.conn(Some(db)).await;
    c.query_drop("CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(20))")
        .await
        .unwrap();
    c.query_drop("CREATE TABLE orders (id INT PRIMARY KEY, user_id INT NOT NULL)")
        .await
        .unwrap();
    sandbox().sync().unwrap();

    // Connection checks and savepoints before the first statement on data do not
    // tie the transaction to the default node (dn1); audit lives on dn2.
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("SELECT 1").await.unwrap();
    c.query_drop("SELECT NOW()").await.unwrap();
    // A pool's prepared validation query too; it reads where the transaction will,
    // on a primary (dn1's: the schema's node), not on a replica.
    let server: Option<u32> = c.exec_first("SELECT @@server_id + ?", (0,)).await.unwrap();
    assert_eq!(server, Some(sandbox().groups[0].primary.server_id));
    c.query_drop("SAVEPOINT a").await.unwrap();
    let e = c
        .query_drop("ROLLBACK TO SAVEPOINT nope")
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), Some(1305), "{e}");
    c.query_drop("INSERT INTO audit (what) VALUES ('x')")
        .await
        .unwrap();
    // Inside the transaction on dn2, statements without tables stay on dn2.
    let port: u16 = c.query_first("SELECT @@port").await.unwrap().unwrap();
    assert_eq!(port, sandbox().groups[1].primary.port);
    c.query_drop("SELECT 1").await.unwrap();
    c.query_drop("SAVEPOINT b").await.unwrap();
    c.query_drop("INSERT INTO audit (what) VALUES ('y')")
        .await
        .unwrap();
    c.query_drop("ROLLBACK TO SAVEPOINT b").await.unwrap();
    c.query_drop("ROLLBACK TO SAVEPOINT a").await.unwrap();
    c.query_drop("INSERT INTO audit (what) VALUES ('z')")
        .await
        .unwrap();
    c.query_drop("COMMIT").await.unwrap();
    let mut d = direct(&sandbox().groups[1].primary, Some(db)).await;
    let rows: Vec<String> = d.query("SELECT what FROM audit").await.unwrap();
    assert_eq!(rows, ["z"]);

    // An AUTO_INCREMENT insert pins nothing: reads on another node still run.
    c.query_drop("INSERT INTO audit (what) VALUES ('w')")
        .await
        .unwrap();
    let id = c.last_insert_id().unwrap();
    c.query_drop("SELECT * FROM orders WHERE user_id = 2")
        .await
        .unwrap();
    let last: u64 = c
        .query_first("SELECT LAST_INSERT_ID()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last, id);
}

#[tokio::test]
async fn last_insert_id_agrees_with_the_ok_packet() {
    let db = "ss_insert_id";
    let extra = format!(
        "[schemas.{db}.tables.t2]\nkind = \"sharded\"\ncolumn = \"user_id\"\nrule = \"by_user\"\nnodes = [\"dn1\", \"dn2\"]\ntables_per_node = 2\n"
    );
    let p = sharded(db, &extra).await;
    let mut c = p.conn(Some(db)).await;
    c.query_drop(
        "CREATE TABLE t2 (id INT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, note VARCHAR(10))",
    )
    .await
    .unwrap();
    c.query_drop("INSERT INTO t2 (user_id, note) VALUES (2,'a'), (1,'b'), (5,'c')")
        .await
        .unwrap();
    let told = c.last_insert_id().unwrap();
    assert_ne!(told, 0);
    let asked: u64 = c
        .query_first("SELECT LAST_INSERT_ID()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(asked, told);
    let identity: u64 = c.query_first("SELECT @@identity").await.unwrap().unwrap();
    assert_eq!(identity, told);

    // A statement that generates no id leaves the value alone, as on MariaDB.
    c.query_drop("UPDATE t2 SET note = 'u' WHERE user_id = 1")
        .await
        .unwrap();
    let asked: u64 = c
        .query_first("SELECT LAST_INSERT_ID()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(asked, told);

    // Another session's LAST_INSERT_ID() is its own: 0 for a fresh one.
    for _ in 0..5 {
        let mut n = p.conn(Some(db)).await;
        let fresh: u64 = n
            .query_first("SELECT LAST_INSERT_ID()")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(fresh, 0);
    }
}

/// The backend thread running the transaction that wrote into `db`. InnoDB serves
/// `innodb_trx` from a cache that it refreshes only after 100 ms without readers, so
/// it is asked every 150 ms until it knows.
async fn transaction_thread(db: &str) -> u64 {
    let mut d = direct(&sandbox().groups[0].primary, None).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found: Option<u64> = d
            .query_first(format!(
                "SELECT p.id FROM information_schema.innodb_trx t \
                 JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id WHERE p.db = '{db}'"
            ))
            .await
            .unwrap();
        match found {
            Some(id) => return id,
            None if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(150)).await
            }
            None => panic!("no transaction open in {db}"),
        }
    }
}

#[tokio::test]
async fn a_lost_backend_connection_never_lets_commit_say_ok() {
    let db = "ss_lost";
    fresh_db(db).await;
    let p = passthrough();
    let mut c = p.conn(Some(db)).await;
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    // Autocommit reads below go to the replica: it must have the table.
    sandbox().sync().unwrap();
    let mut d = direct(&sandbox().groups[0].primary, Some(db)).await;

    for end in ["COMMIT", "ROLLBACK"] {
        c.query_drop("BEGIN").await.unwrap();
        c.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
        let thread = transaction_thread(db).await;
        d.query_drop(format!("KILL {thread}")).await.unwrap();
        // The statement that meets the loss fails; so does every one after it.
        let e = c.query_drop("INSERT INTO t VALUES (2)").await.unwrap_err();
        assert!(error_code(&e).is_some(), "{e}");
        let e = c.query_drop("SELECT 1").await.unwrap_err();
        assert_eq!(error_code(&e), Some(1927), "{e}");
        let e = c.query_drop("INSERT INTO t VALUES (3)").await.unwrap_err();
        assert_eq!(error_code(&e), Some(1927), "{e}");
        match end {
            "COMMIT" => {
                let e = c.query_drop("COMMIT").await.unwrap_err();
                assert_eq!(error_code(&e), Some(1927), "{e}");
            }
            _ => c.query_drop("ROLLBACK").await.unwrap(),
        }
        // The transaction is over; the session works again, and nothing was committed.
        assert_eq!(count(&mut c, "SELECT COUNT(*) FROM t").await, 0);
        assert_eq!(count(&mut d, "SELECT COUNT(*) FROM t").await, 0);
    }

    // autocommit = 0 survives the loss: the next write is in a transaction again.
    c.query_drop("SET autocommit = 0").await.unwrap();
    c.query_drop("INSERT INTO t VALUES (1)").await.unwrap();

    let thread = transaction_thread(db).await;
    d.query_drop(format!("KILL {thread}")).await.unwrap();
    assert!(c.query_drop("INSERT INTO t VALUES (2)").await.is_err());
    c.query_drop("ROLLBACK").await.unwrap();
    c.query_drop("INSERT INTO t VALUES (4)").await.unwrap();
    c.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(count(&mut d, "SELECT COUNT(*) FROM t").await, 0);
}

#[tokio::test]
async fn waiting_clients_get_connections_in_turn() {
    // Two connections per backend for eight busy clients: each returned connection
    // must go to the client that has waited longest, so none waits past the timeout.
    let db = "ss_fair";
    let p = sharded(db, "[pool]\nmax_size = 2\nacquire_timeout_ms = 3000\n").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let opts = p.opts(USER, PASSWORD, Some(db));
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::new(opts).await.unwrap();
            let mut failures = Vec::new();
            for _ in 0..12 {
                if let Err(e) = c.query_drop("SELECT SLEEP(0.05)").await {
                    failures.push(e.to_string());
                }
                if let Err(e) = c
                    .query_drop("/* shardgate:primary */ SELECT SLEEP(0.05)")
                    .await
                {
                    failures.push(e.to_string());
                }
            }
            failures
        }));
    }
    for t in tasks {
        let failures = t.await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
    }
}

#[tokio::test]
async fn pools_take_their_share_of_the_backend_and_max_connections_is_shardgates() {
    // The sandbox's servers accept 500 connections; 0.6% of that is 3 per pool.
    let db = "ss_sizing";
    let p = sharded(
        db,
        "[pool]\nbackend_share = 0.006\nacquire_timeout_ms = 300\n[server]\nmax_connections = 77\n",
    )
    .await;
    let mut setup = p.conn(Some(db)).await;
    setup
        .query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let mut holders = Vec::new();
    for i in 0..3 {
        let mut c = p.conn(Some(db)).await;
        c.query_drop("BEGIN").await.unwrap();
        c.query_drop(format!("INSERT INTO t VALUES ({i})"))
            .await
            .unwrap();
        holders.push(c);
    }
    // The pool learns its size at the backend's first contact: a fourth
    // transaction then waits, and fails after acquire_timeout_ms.
    let mut refused = None;
    for _ in 0..50 {
        let mut c = p.conn(Some(db)).await;
        c.query_drop("BEGIN").await.unwrap();
        match c.query_drop("INSERT INTO t VALUES (9)").await {
            Ok(()) => {
                c.query_drop("ROLLBACK").await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let e = refused.expect("a fourth transaction got a connection of a pool of 3");
    assert_eq!(error_code(&e), Some(1429), "{e}");
    assert!(e.to_string().contains("all 3 connections are busy"), "{e}");
    drop(holders);

    let mut c = p.conn(Some(db)).await;
    let max: u64 = c
        .query_first("SELECT @@max_connections")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(max, 77);
    let row: mysql_async::Row = c
        .query_first("SELECT @@global.max_connections AS m")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.columns()[0].name_str(), "m");
    assert_eq!(row.get::<u64, _>(0), Some(77));
}

#[tokio::test]
async fn a_transaction_whose_connection_an_error_dropped_is_reported_lost() {
    let db = "ss_dropped";
    let p = sharded(db, "").await;
    let mut c = p.conn(Some(db)).await;
    c.query_drop("CREATE TABLE orders (id INT PRIMARY KEY, user_id INT NOT NULL)")
        .await
        .unwrap();
    // Shards 0 and 2 live on dn1; give one of them a column the other lacks.
    let mut d1 = direct(&sandbox().groups[0].primary, Some(db)).await;
    d1.query_drop("ALTER TABLE orders_0000 ADD COLUMN extra INT")
        .await
        .unwrap();

    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("INSERT INTO orders (id, user_id) VALUES (1, 2)")
        .await
        .unwrap();
    // Shards that disagree on their columns: the merged read fails, and its error
    // path closes the transaction's connection.
    assert!(c
        .query_drop("SELECT * FROM orders WHERE user_id IN (0, 2) ORDER BY id")
        .await
        .is_err());
    // From then on the session says the transaction is gone; COMMIT never says OK.
    let e = c.query_drop("SELECT 1").await.unwrap_err();
    assert_eq!(error_code(&e), Some(1927), "{e}");
    let e = c.query_drop("COMMIT").await.unwrap_err();
    assert_eq!(error_code(&e), Some(1927), "{e}");
    let rows: Vec<i32> = d1.query("SELECT id FROM orders_0002").await.unwrap();
    assert!(rows.is_empty(), "{rows:?}");
    // The session works again.
    c.query_drop("SELECT 1").await.unwrap();

    // An error handler's ROLLBACK, the first statement after such a loss, ends the
    // lost transaction at once.
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("INSERT INTO orders (id, user_id) VALUES (2, 2)")
        .await
        .unwrap();
    assert!(c
        .query_drop("SELECT * FROM orders WHERE user_id IN (0, 2) ORDER BY id")
        .await
        .is_err());
    c.query_drop("ROLLBACK").await.unwrap();
    c.query_drop("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn metadata_commands_do_not_choose_the_transactions_node() {
    let db = "ss_metadata";
    let p = sharded(db, "").await;
    let mut c = p.conn(Some(db)).await;
    c.query_drop("CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(20))")
        .await
        .unwrap();
    // SHOW, information_schema and PREPARE ask about metadata on the default node
    // (dn1); the transaction still opens where its first statement on data runs (dn2).
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("SHOW TABLES").await.unwrap();
    c.query_drop(format!(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = '{db}'"
    ))
    .await
    .unwrap();
    let stmt = c.prep("SELECT what FROM audit WHERE id = ?").await.unwrap();
    c.query_drop("INSERT INTO audit (what) VALUES ('x')")
        .await
        .unwrap();
    let id = c.last_insert_id().unwrap();
    let what: Option<String> = c.exec_first(&stmt, (id,)).await.unwrap();
    assert_eq!(what.as_deref(), Some("x"));
    c.query_drop("ROLLBACK").await.unwrap();
    let mut d2 = direct(&sandbox().groups[1].primary, Some(db)).await;
    assert_eq!(count(&mut d2, "SELECT COUNT(*) FROM audit").await, 0);
}

/// A HANDLER lives on its backend connection until closed: the session keeps that
/// connection, and no later client finds the handler open.
#[tokio::test]
async fn a_table_handler_stays_with_its_session_and_reaches_no_one() {
    let db = "se_handler";
    let p = sharded(db, "[pool]\nmax_size = 1\n").await;
    let mut c = p.conn(Some(db)).await;
    c.query_drop("CREATE TABLE notes (id INT PRIMARY KEY)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO notes VALUES (1), (2)")
        .await
        .unwrap();
    c.query_drop("HANDLER notes OPEN AS h").await.unwrap();
    // Statements in between may run anywhere; the handler's reads find it.
    c.query_drop("SELECT 1").await.unwrap();
    let first: Option<i32> = c.query_first("HANDLER h READ FIRST").await.unwrap();
    assert_eq!(first, Some(1));
    let next: Option<i32> = c.query_first("HANDLER h READ NEXT").await.unwrap();
    assert_eq!(next, Some(2));
    drop(c);
    // One pooled connection per node: the next clients get the one it used.
    for _ in 0..3 {
        let mut other = p.conn(Some(db)).await;
        let e = other
            .query_drop("/* shardgate:primary */ HANDLER h READ FIRST")
            .await
            .unwrap_err();
        assert_eq!(error_code(&e), Some(1109), "{e}");
    }
}

/// Drivers choose their string escaping from the NO_BACKSLASH_ESCAPES status flag:
/// the OK of the `SET sql_mode` itself (which shardgate answers after running it),
/// the OKs shardgate writes on its own (a deferred BEGIN), and relayed answers all
/// carry it while the mode is set, and none after.
#[tokio::test]
async fn no_backslash_escapes_shows_in_the_status_flags() {
    const NO_BACKSLASH: u16 = 0x0200;
    let p = sharded("se_nbe", "").await;
    let addr = p.addr();
    let flags = tokio::task::spawn_blocking(move || {
        let (mut raw, _) = RawClient::connect(&addr, USER, PASSWORD).unwrap();
        let mut s = |sql: &str| {
            let status = raw.status_after(sql).unwrap();
            (sql.to_string(), status.map(|f| f & NO_BACKSLASH != 0))
        };
        vec![
            s("SELECT 1"),
            s("SET sql_mode = 'NO_BACKSLASH_ESCAPES'"),
            s("SELECT 'a\\'"),
            s("BEGIN"),
            s("ROLLBACK"),
            s("SET sql_mode = ''"),
            s("SELECT 1"),
        ]
    })
    .await
    .unwrap();
    let want = [false, true, true, true, true, false, false];
    let got: Vec<Option<bool>> = flags.iter().map(|(_, f)| *f).collect();
    assert_eq!(got, want.map(Some), "{flags:?}");
}

/// The status flags a client sees follow the transaction as MySQL's do: IN_TRANS from
/// BEGIN on, also on answers that ran while the transaction was not yet opened on a
/// node (`SELECT 1`, SHOW), and cleared by DDL, which commits it (on one node or on
/// every shard).
#[tokio::test]
async fn status_flags_follow_the_transaction_through_begin_and_ddl() {
    let db = "se_flags";
    let p = sharded(db, "").await;
    let mut c = p.conn(Some(db)).await;
    c.query_drop("CREATE TABLE orders (user_id INT PRIMARY KEY)")
        .await
        .unwrap();
    c.query_drop("CREATE TABLE audit (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let addr = p.addr();
    let db_owned = db.to_string();
    let flags = tokio::task::spawn_blocking(move || {
        let (mut raw, _) = RawClient::connect(&addr, USER, PASSWORD).unwrap();
        let mut s = |sql: &str| {
            let status = raw.status_after(sql).unwrap();
            (sql.to_string(), status.map(|f| f & IN_TRANS != 0))
        };
        vec![
            s(&format!("USE {db_owned}")),
            s("BEGIN"),
            s("SELECT 1"),
            s("SHOW TABLES"),
            s("INSERT INTO orders (user_id) VALUES (1)"),
            s("CREATE TABLE plain (a INT)"),
            s("ROLLBACK"),
            s("BEGIN"),
            s("INSERT INTO orders (user_id) VALUES (2)"),
            s("ALTER TABLE orders ADD COLUMN note INT"),
            s("ROLLBACK"),
        ]
    })
    .await
    .unwrap();
    let want = [
        Some(false),
        Some(true),
        Some(true),
        Some(true),
        Some(true),
        Some(false),
        Some(false),
        Some(true),
        Some(true),
        Some(false),
        Some(false),
    ];
    for ((sql, got), want) in flags.iter().zip(want) {
        assert_eq!(*got, want, "IN_TRANS after {sql}: {flags:?}");
    }
    // The DDL committed both rows: ROLLBACK had nothing left to undo.
    let rows: Vec<i32> = c
        .query("SELECT user_id FROM orders ORDER BY user_id")
        .await
        .unwrap();
    assert_eq!(rows, [1, 2]);
}

/// A SET inside a multi-statement batch stays with its session (which keeps the
/// connection it ran on) and never reaches another client through the pool.
#[tokio::test]
async fn a_set_inside_a_batch_stays_with_its_session() {
    let db = "se_batch_set";
    let p = sharded(db, "[pool]\nmax_size = 1\n").await;
    let mut a = p.conn(Some(db)).await;
    a.query_drop("SET time_zone = '+05:00', sql_mode = 'NO_BACKSLASH_ESCAPES'; SELECT 1")
        .await
        .unwrap();
    let tz: Option<String> = a.query_first("SELECT @@time_zone").await.unwrap();
    assert_eq!(tz.as_deref(), Some("+05:00"));
    a.query_drop("SELECT 1; SET time_zone = '+07:00'")
        .await
        .unwrap();
    let tz: Option<String> = a.query_first("SELECT @@time_zone").await.unwrap();
    assert_eq!(tz.as_deref(), Some("+07:00"));
    drop(a);
    for _ in 0..3 {
        let mut b = p.conn(Some(db)).await;
        let (tz, mode): (String, String) = b
            .query_first("/* shardgate:primary */ SELECT @@time_zone, @@sql_mode")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tz, "SYSTEM");
        assert!(!mode.contains("NO_BACKSLASH_ESCAPES"), "{mode}");
    }
}

/// `SET autocommit` is the session's, kept by shardgate: turning it on (as drivers do
/// at connect) pins nothing, so reads over several nodes still run; turning it off
/// makes the next statements one transaction, which ROLLBACK undoes and turning it
/// back on commits.
#[tokio::test]
async fn autocommit_is_kept_by_the_session_without_pinning_it() {
    let db = "se_autocommit";
    let p = sharded(db, "").await;
    let mut c = p.conn(Some(db)).await;
    c.query_drop("CREATE TABLE orders (user_id INT PRIMARY KEY)")
        .await
        .unwrap();
    c.query_drop("SET autocommit = 1").await.unwrap();
    c.query_drop("SET SESSION autocommit = ON").await.unwrap();
    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM orders").await, 0);
    c.query_drop("SET autocommit = 0").await.unwrap();
    c.query_drop("INSERT INTO orders (user_id) VALUES (1)")
        .await
        .unwrap();
    c.query_drop("ROLLBACK").await.unwrap();
    c.query_drop("INSERT INTO orders (user_id) VALUES (2)")
        .await
        .unwrap();
    c.query_drop("SET autocommit = 1").await.unwrap();
    // Committed by turning autocommit back on; the session is free again.
    let mut other = p.conn(Some(db)).await;
    let rows: Vec<i32> = other
        .query("/* shardgate:primary */ SELECT user_id FROM orders ORDER BY user_id")
        .await
        .unwrap();
    assert_eq!(rows, [2]);
    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM orders").await, 1);
}

/// A scatter read whose node holds more shards than its pool has connections still
/// runs: parts start ahead only when their pool lends at once, so a session never
/// waits for a connection it holds itself.
#[tokio::test]
async fn a_scatter_read_runs_with_one_connection_per_node() {
    let db = "se_small_pool";
    let p = sharded(db, "[pool]\nmax_size = 1\nacquire_timeout_ms = 2000\n").await;
    let mut c = p.conn(Some(db)).await;
    c.query_drop("CREATE TABLE orders (user_id INT PRIMARY KEY)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO orders (user_id) VALUES (0), (1), (2), (3)")
        .await
        .unwrap();
    let mut ids: Vec<i32> = c
        .query("/* shardgate:primary */ SELECT user_id FROM orders")
        .await
        .unwrap();
    ids.sort();
    assert_eq!(ids, [0, 1, 2, 3]);
    // The same read on the replicas, whose pools are as small: every part is read
    // there, none waits for its own pool and falls back to a primary.
    sandbox().sync().unwrap();
    let mut rows: Vec<(i32, u32)> = c
        .query("SELECT user_id, @@server_id FROM orders")
        .await
        .unwrap();
    rows.sort();
    let replicas: Vec<u32> = sandbox()
        .groups
        .iter()
        .map(|g| g.replicas[0].server_id)
        .collect();
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert!(rows.iter().all(|r| replicas.contains(&r.1)), "{rows:?}");
}

/// DDL the server does not even parse commits nothing, as on MariaDB: on the
/// transaction's own node the DDL goes to the server inside it.
#[tokio::test]
async fn ddl_that_does_not_parse_leaves_the_transaction_open() {
    let db = "se_ddl_parse";
    let p = sharded(db, "").await;
    let mut c = p.conn(Some(db)).await;
    c.query_drop("CREATE TABLE orders (user_id INT PRIMARY KEY)")
        .await
        .unwrap();
    c.query_drop("BEGIN").await.unwrap();
    // user 0: shard 0, on dn1, the schema's own node, where CREATE TABLE runs.
    c.query_drop("INSERT INTO orders (user_id) VALUES (0)")
        .await
        .unwrap();
    let e = c.query_drop("CREATE TABLE broken (").await.unwrap_err();
    assert_eq!(error_code(&e), Some(1064), "{e}");
    c.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(
        count(
            &mut c,
            "/* shardgate:primary */ SELECT COUNT(*) FROM orders"
        )
        .await,
        0
    );
}

/// START TRANSACTION WITH CONSISTENT SNAPSHOT takes its snapshot when it runs: rows
/// another client commits afterwards stay out of its reads.
#[tokio::test]
async fn a_consistent_snapshot_is_taken_at_start() {
    let db = "se_snapshot";
    let p = sharded(db, "").await;
    let mut a = p.conn(Some(db)).await;
    a.query_drop("CREATE TABLE orders (user_id INT PRIMARY KEY)")
        .await
        .unwrap();
    a.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await
        .unwrap();
    let mut b = p.conn(Some(db)).await;
    // user 0: shard 0, on dn1, the schema's node, where the snapshot was taken.
    b.query_drop("INSERT INTO orders (user_id) VALUES (0)")
        .await
        .unwrap();
    assert_eq!(
        count(&mut a, "SELECT COUNT(*) FROM orders WHERE user_id = 0").await,
        0
    );
    a.query_drop("COMMIT").await.unwrap();
    assert_eq!(
        count(
            &mut a,
            "/* shardgate:primary */ SELECT COUNT(*) FROM orders WHERE user_id = 0"
        )
        .await,
        1
    );
}

/// What a procedure leaves in the session (user variables, settings, temporary
/// tables) is there for the client's next statements, as on MariaDB.
#[tokio::test]
async fn a_procedure_leaves_its_session_state_to_its_caller() {
    let db = "se_call";
    let p = sharded(db, "").await;
    let mut c = p.conn(Some(db)).await;
    c.query_drop(
        "CREATE PROCEDURE p_state() BEGIN SET @left = 42; SET time_zone = '+03:00'; \
         CREATE TEMPORARY TABLE tmp_left (a INT); END",
    )
    .await
    .unwrap();
    c.query_drop("CALL p_state()").await.unwrap();
    let (v, tz): (Option<i64>, String) = c
        .query_first("SELECT @left, @@time_zone")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((v, tz.as_str()), (Some(42), "+03:00"));
    c.query_drop("SELECT * FROM tmp_left").await.unwrap();
}
