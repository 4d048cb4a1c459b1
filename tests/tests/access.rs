//! Names and access: connections that never log in, and (to come) every table
//! resolved to the schema it names and checked against the user's rights. One sandbox
//! for the whole binary.

use std::io::Read;
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::Conn;
use tests::{direct, error_code, Proxy, Sandbox, PASSWORD, USER};

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[0, 0]).expect("start the MariaDB sandbox"))
}

fn proxy(extra: &str) -> Proxy {
    let g = &sandbox().groups[0];
    Proxy::with_config(&format!(
        "passthrough_node = \"dn1\"\n\
         [[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\nschemas = [\"*\"]\n\
         [nodes.dn1]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n{extra}",
        g.primary.address(),
    ))
}

#[tokio::test]
async fn sockets_that_never_log_in_neither_lock_out_clients_nor_stay() {
    let p = proxy("[server]\nmax_connections = 3\nconnect_timeout_ms = 800\n");
    // Ten sockets read the greeting and never answer.
    let mut silent: Vec<TcpStream> = (0..10)
        .map(|_| {
            let s = TcpStream::connect(p.addr()).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        })
        .collect();
    // Logged-in clients still get their three places.
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut c = p.conn(None).await;
        c.query_drop("SELECT 1").await.unwrap();
        clients.push(c);
    }
    // The fourth logged-in client is one too many: 1040, as MySQL answers.
    let e = mysql_async::Conn::new(p.opts(USER, PASSWORD, None))
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), Some(1040), "{e}");
    // Past connect_timeout shardgate closes the silent sockets: after the greeting,
    // they read the end of the stream.
    for s in &mut silent {
        let mut buf = vec![0u8; 4096];
        let mut total = 0;
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) => panic!("socket still open after connect_timeout: {e} ({total} bytes)"),
            }
        }
        assert!(total > 0, "no greeting");
    }
}

/// Two logical schemas: `{p}shop` (default node dn1: `orders` sharded over both nodes,
/// `products` broadcast, `notes` unconfigured) and `{p}crm` (on dn2: `customers`).
async fn two_schemas(p: &str) -> (Proxy, Conn) {
    two_schemas_with(p, "").await
}

async fn two_schemas_with(p: &str, users: &str) -> (Proxy, Conn) {
    let s = sandbox();
    for g in &s.groups {
        let mut c = direct(&g.primary, None).await;
        for db in [format!("{p}shop"), format!("{p}crm")] {
            c.query_drop(format!("DROP DATABASE IF EXISTS {db}"))
                .await
                .unwrap();
            c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
        }
    }
    let (g1, g2) = (&s.groups[0], &s.groups[1]);
    let proxy = Proxy::with_config(&format!(
        "[[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [nodes.dn1]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [nodes.dn2]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [rules.by_user]\nalgorithm = \"mod\"\nshards = 2\n\
         [schemas.{p}shop]\nnode = \"dn1\"\n\
         [schemas.{p}shop.tables.orders]\nkind = \"sharded\"\ncolumn = \"user_id\"\nrule = \"by_user\"\nnodes = [\"dn1\", \"dn2\"]\n\
         [schemas.{p}shop.tables.products]\nkind = \"broadcast\"\n\
         [schemas.{p}crm]\nnode = \"dn2\"\n{users}",
        g1.primary.address(),
        g2.primary.address(),
    ));
    let mut c = proxy.conn(Some(&format!("{p}shop"))).await;
    for sql in [
        "CREATE TABLE orders (id INT PRIMARY KEY, user_id INT NOT NULL, v INT)",
        "CREATE TABLE products (id INT PRIMARY KEY, price INT)",
        "CREATE TABLE notes (id INT PRIMARY KEY, body VARCHAR(20))",
        "INSERT INTO orders (id, user_id, v) VALUES (1, 1, 10), (2, 2, 20), (3, 3, 30), (4, 4, 40)",
        "INSERT INTO products VALUES (1, 1), (2, 1)",
        "INSERT INTO notes VALUES (1, 'n')",
    ] {
        c.query_drop(sql).await.unwrap();
    }
    c.query_drop(format!("USE {p}crm")).await.unwrap();
    c.query_drop("CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(20))")
        .await
        .unwrap();
    c.query_drop("INSERT INTO customers VALUES (1, 'c')")
        .await
        .unwrap();
    (proxy, c)
}

#[tokio::test]
async fn qualified_names_route_by_the_schema_they_name() {
    let (p, mut crm) = two_schemas("q_").await;
    // From crm, shop's tables by their qualifier: a shard, every shard, every copy.
    let one: Option<i64> = crm
        .query_first("SELECT v FROM q_shop.orders WHERE user_id = 1")
        .await
        .unwrap();
    assert_eq!(one, Some(10));
    let sum: Option<i64> = crm
        .query_first("SELECT SUM(v) FROM q_shop.orders")
        .await
        .unwrap();
    assert_eq!(sum, Some(100));
    crm.query_drop("UPDATE q_shop.products SET price = 2 WHERE id = 1")
        .await
        .unwrap();
    for g in &sandbox().groups {
        let mut d = direct(&g.primary, Some("q_shop")).await;
        let price: Option<i64> = d
            .query_first("SELECT price FROM products WHERE id = 1")
            .await
            .unwrap();
        assert_eq!(price, Some(2), "a broadcast copy was not updated");
    }
    // EXPLAIN SHARDING shows the plan the statement really gets.
    let plan: Vec<(String, Option<String>, String, String, String)> = crm
        .query("EXPLAIN SHARDING SELECT v FROM q_shop.orders WHERE user_id = 1")
        .await
        .unwrap();
    assert_eq!(plan.len(), 1, "{plan:?}");
    assert_eq!(plan[0].0, "dn2", "{plan:?}");
    assert_eq!(plan[0].1.as_deref(), Some("1"), "{plan:?}");
    let note: Option<String> = crm
        .query_first("SELECT body FROM q_shop.notes")
        .await
        .unwrap();
    assert_eq!(note.as_deref(), Some("n"));
    // With no database selected, the same.
    let mut none = p.conn(None).await;
    let sum: Option<i64> = none
        .query_first("SELECT SUM(v) FROM q_shop.orders")
        .await
        .unwrap();
    assert_eq!(sum, Some(100));
    // What shardgate cannot run across schemas is refused, never run on one node.
    for sql in [
        "SELECT * FROM q_shop.orders o JOIN customers c ON c.id = o.id",
        "SELECT * FROM q_shop.orders o JOIN q_crm.customers c ON c.id = o.id",
    ] {
        let e = crm.query_drop(sql).await.unwrap_err();
        assert_eq!(error_code(&e), Some(1235), "{sql}: {e}");
    }
}

#[tokio::test]
async fn hints_choose_a_node_for_the_sessions_own_schema() {
    let (p, _crm) = two_schemas("h_").await;
    let mut shop = p.conn(Some("h_shop")).await;
    // products is on both nodes: the hint reads dn2's copy, in h_shop.
    let n: Option<i64> = shop
        .query_first("/* shardgate:node=dn2 */ SELECT COUNT(*) FROM products")
        .await
        .unwrap();
    assert_eq!(n, Some(2));
    // crm's table on dn2 is not reachable through the hint from h_shop.
    let e = shop
        .query_drop("/* shardgate:node=dn2 */ SELECT * FROM customers")
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), Some(1146), "{e}");
}

/// An unconfigured table lives on the schema's node only: a join with a sharded
/// table whose shards are elsewhere is gathered, and answered whole (the row of
/// order 1 lives on dn2, notes on dn1).
#[tokio::test]
async fn a_join_with_an_unconfigured_table_is_answered_whole() {
    let (p, _crm) = two_schemas("j_").await;
    let mut shop = p.conn(Some("j_shop")).await;
    let rows: Vec<(i32, String)> = shop
        .query("SELECT o.id, n.body FROM orders o JOIN notes n ON n.id = o.id")
        .await
        .unwrap();
    assert_eq!(rows, [(1, "n".to_string())]);
    // A write cannot be gathered: refused by name.
    let e = shop
        .query_drop("UPDATE orders o JOIN notes n ON n.id = o.id SET o.v = 1")
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), Some(1235), "{e}");
    assert!(e.to_string().contains("`notes` is not configured"), "{e}");
    // On the shard that shares notes' node, it runs.
    let rows: Vec<(i32, String)> = shop
        .query("SELECT o.id, n.body FROM orders o JOIN notes n ON n.id = o.id WHERE o.user_id = 2")
        .await
        .unwrap();
    assert!(rows.is_empty());
}

async fn refused(c: &mut Conn, sql: &str, code: u16) {
    match c.query_drop(sql).await {
        Err(e) => assert_eq!(error_code(&e), Some(code), "{sql}: {e}"),
        Ok(()) => panic!("{sql}: must be refused with {code}"),
    }
}

#[tokio::test]
async fn a_limited_user_never_acts_with_the_backend_accounts_rights() {
    let users = "[[users]]\nname = \"limited\"\npassword = \"pw\"\nschemas = [\"a_shop\"]\n";
    let (p, _) = two_schemas_with("a_", users).await;
    let mut d = direct(&sandbox().groups[0].primary, None).await;
    d.query_drop("CREATE DATABASE IF NOT EXISTS a_other")
        .await
        .unwrap();
    d.query_drop("CREATE TABLE IF NOT EXISTS a_other.t (a INT)")
        .await
        .unwrap();

    let mut c = Conn::new(p.opts("limited", "pw", Some("a_shop")))
        .await
        .unwrap();
    c.query_drop("SELECT * FROM orders WHERE user_id = 1")
        .await
        .unwrap();
    // Other schemas, system schemas and physical databases, however they are named.
    for sql in [
        "SELECT user, host FROM mysql.user",
        "SELECT * FROM a_crm.customers",
        "SELECT * FROM a_other.t",
        "SELECT * FROM `a_other`.`t`",
        "CREATE TABLE a_other.x (a INT)",
        "INSERT INTO a_other.t SELECT id FROM orders",
        "SELECT * FROM orders WHERE id IN (SELECT 1 FROM mysql.user)",
        // Around the name check: inside a prepared literal, in ANSI quotes, a routine.
        "PREPARE s FROM 'SELECT * FROM mysql.user'",
        "SELECT * FROM \"mysql\".\"user\"",
        "CALL a_other.p()",
        "SELECT a_other.f(1)",
    ] {
        refused(&mut c, sql, 1142).await;
    }
    // Statements hidden in a variable or an expression cannot be checked.
    for sql in [
        "PREPARE s FROM @q",
        "EXECUTE IMMEDIATE CONCAT('SELECT * FROM ', 'mysql.user')",
    ] {
        refused(&mut c, sql, 1227).await;
    }
    c.query_drop("PREPARE ok FROM 'SELECT * FROM orders WHERE user_id = 1'")
        .await
        .unwrap();
    // Strings read as the server reads them: under NO_BACKSLASH_ESCAPES `'a\'` ends
    // the string, and what follows is a table name, not text.
    refused(
        &mut c,
        "SET STATEMENT sql_mode = 'NO_BACKSLASH_ESCAPES' FOR SELECT 'a\\', user FROM mysql.user -- '",
        1142,
    )
    .await;
    c.query_drop("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'")
        .await
        .unwrap();
    refused(&mut c, "SELECT 'a\\', user FROM mysql.user -- '", 1142).await;
    // A batch's USE is found where the server finds it, and checked.
    refused(&mut c, "SELECT 'a\\'; USE a_crm; SELECT * FROM t", 1044).await;
    c.query_drop("SET SESSION sql_mode = DEFAULT")
        .await
        .unwrap();
    refused(&mut c, "USE a_crm", 1044).await;
    // The server as a whole: accounts, files, administration.
    for sql in [
        "SELECT LOAD_FILE('/etc/hostname')",
        "SELECT * FROM orders INTO OUTFILE '/tmp/a_out'",
        "CREATE USER intruder IDENTIFIED BY 'x'",
        "GRANT ALL ON *.* TO limited",
        "SET PASSWORD = PASSWORD('x')",
        "SET GLOBAL max_connections = 5",
        "FLUSH PRIVILEGES",
        "SHUTDOWN",
        "CREATE DATABASE a_new",
        "SELECT 1; DROP USER nobody",
    ] {
        refused(&mut c, sql, 1227).await;
    }
    refused(&mut c, "KILL USER ks", 1235).await;
    // Its grants and its name are shardgate's, never the backend account's.
    let grants: Vec<String> = c.query("SHOW GRANTS").await.unwrap();
    assert_eq!(
        grants[0], "GRANT USAGE ON *.* TO `limited`@`%`",
        "{grants:?}"
    );
    assert!(
        grants.iter().any(|g| g.contains("ON `a_shop`.*")),
        "{grants:?}"
    );
    assert!(
        !grants
            .iter()
            .any(|g| g.contains("PASSWORD") || g.contains("a_crm")),
        "{grants:?}"
    );
    let me: Option<String> = c.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(me.as_deref(), Some("limited@%"));
    // Through the binary protocol too.
    let me: Option<(String, i32)> = c
        .exec_first("SELECT CURRENT_USER(), ?", (1,))
        .await
        .unwrap();
    assert_eq!(me, Some(("limited@%".to_string(), 1)));
    let both: Option<(String, String)> = c
        .query_first("SELECT CURRENT_USER, USER() AS u")
        .await
        .unwrap();
    let (current, user) = both.unwrap();
    assert_eq!(current, "limited@%");
    assert!(user.starts_with("limited@"), "{user}");
    // Whatever the alias's length, and inside a transaction not yet opened on a node.
    let me: Option<String> = c
        .query_first("SELECT CURRENT_USER() AS an_alias_that_makes_the_statement_longer_than_64")
        .await
        .unwrap();
    assert_eq!(me.as_deref(), Some("limited@%"));
    c.query_drop("BEGIN").await.unwrap();
    let me: Option<String> = c.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(me.as_deref(), Some("limited@%"));
    let db: Option<String> = c.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(db.as_deref(), Some("a_shop"));
    c.query_drop("COMMIT").await.unwrap();
    refused(&mut c, "SELECT * FROM information_schema.PROCESSLIST", 1227).await;
    // information_schema tells it only about its own databases.
    let seen: Vec<String> = c
        .query("SELECT schema_name AS s FROM information_schema.schemata")
        .await
        .unwrap();
    assert!(seen.iter().any(|s| s == "a_shop"), "{seen:?}");
    assert!(
        seen.iter()
            .all(|s| s == "a_shop" || s == "information_schema"),
        "{seen:?}"
    );
    let tables: Vec<String> = c
        .query("SELECT DISTINCT table_schema FROM information_schema.tables")
        .await
        .unwrap();
    assert!(
        tables
            .iter()
            .all(|s| s == "a_shop" || s == "information_schema"),
        "{tables:?}"
    );
    // With no database selected, the same.
    let mut none = Conn::new(p.opts("limited", "pw", None)).await.unwrap();
    let seen: Vec<String> = none
        .query("SELECT schema_name FROM information_schema.schemata")
        .await
        .unwrap();
    assert!(
        seen.iter()
            .all(|s| s == "a_shop" || s == "information_schema"),
        "{seen:?}"
    );
    // Its process list is its own sessions, with the ids KILL takes.
    let id: Option<u64> = c.query_first("SELECT CONNECTION_ID()").await.unwrap();
    let list: Vec<(u64, String)> = c
        .query_map("SHOW PROCESSLIST", |row: mysql_async::Row| {
            (
                row.get::<u64, _>(0).unwrap(),
                row.get::<String, _>(1).unwrap(),
            )
        })
        .await
        .unwrap();
    assert!(list.iter().all(|(_, u)| u == "limited"), "{list:?}");
    assert!(list.iter().any(|(i, _)| Some(*i) == id), "{list:?}");
    // Nothing reached the server: the account was not created.
    let n: Option<i64> = d
        .query_first("SELECT COUNT(*) FROM mysql.user WHERE user = 'intruder'")
        .await
        .unwrap();
    assert_eq!(n, Some(0));
}

/// (Id, User, Host, db, Command, Time, Info) of each row of SHOW [FULL] PROCESSLIST.
type Line = (
    u64,
    String,
    String,
    Option<String>,
    String,
    u64,
    Option<String>,
);

async fn process_list(c: &mut Conn, full: bool) -> Vec<Line> {
    let sql = if full {
        "SHOW FULL PROCESSLIST"
    } else {
        "SHOW PROCESSLIST"
    };
    c.query_map(sql, |row: mysql_async::Row| -> Line {
        (
            row.get(0).unwrap(),
            row.get(1).unwrap(),
            row.get(2).unwrap(),
            row.get(3).unwrap(),
            row.get(4).unwrap(),
            row.get(5).unwrap(),
            row.get(7).unwrap(),
        )
    })
    .await
    .unwrap()
}

/// SHOW PROCESSLIST answers like MySQL's, from shardgate's sessions: where each client
/// connects from, its database, its command, for how long, and its statement.
#[tokio::test]
async fn the_process_list_shows_each_sessions_host_database_and_statement() {
    let users = "[[users]]\nname = \"limited\"\npassword = \"pw\"\nschemas = [\"pl_shop\"]\n";
    let (p, _) = two_schemas_with("pl_", users).await;
    let mut c = Conn::new(p.opts("limited", "pw", Some("pl_shop")))
        .await
        .unwrap();
    let mut busy = Conn::new(p.opts("limited", "pw", Some("pl_shop")))
        .await
        .unwrap();
    let busy_id: Option<u64> = busy.query_first("SELECT CONNECTION_ID()").await.unwrap();
    let long = format!("SELECT SLEEP(2), '{}'", "x".repeat(150));
    let sent = long.clone();
    let running = tokio::spawn(async move {
        busy.query_drop(sent).await.unwrap();
        busy
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let short = process_list(&mut c, false).await;
    let row = short
        .iter()
        .find(|l| Some(l.0) == busy_id)
        .unwrap_or_else(|| panic!("{short:?}"));
    assert_eq!(row.1, "limited");
    assert!(row.2.starts_with("127.0.0.1:"), "{row:?}");
    assert_eq!(row.3.as_deref(), Some("pl_shop"));
    assert_eq!(row.4, "Query");
    assert_eq!(row.6.as_deref(), Some(&long[..100]));
    let own = short.iter().find(|l| l.0 != row.0).unwrap();
    assert_eq!(own.6.as_deref(), Some("SHOW PROCESSLIST"));
    let whole = process_list(&mut c, true).await;
    let row = whole.iter().find(|l| Some(l.0) == busy_id).unwrap();
    assert_eq!(row.6.as_deref(), Some(long.as_str()));
    // Between statements a session sleeps, with no statement.
    let _busy = running.await.unwrap();
    let after = process_list(&mut c, false).await;
    let row = after.iter().find(|l| Some(l.0) == busy_id).unwrap();
    assert_eq!((row.4.as_str(), row.6.as_deref()), ("Sleep", None));
}

/// Whatever shape the query takes (no schema column, an expression over it, a count,
/// a node hint, a prepared statement), information_schema says nothing of databases
/// the user may not use.
#[tokio::test]
async fn information_schema_tells_a_limited_user_only_of_its_databases() {
    let users = "[[users]]\nname = \"limited\"\npassword = \"pw\"\nschemas = [\"i_shop\"]\n";
    let (p, _) = two_schemas_with("i_", users).await;
    let mut d = direct(&sandbox().groups[0].primary, None).await;
    d.query_drop("CREATE DATABASE IF NOT EXISTS i_other")
        .await
        .unwrap();
    d.query_drop("CREATE TABLE IF NOT EXISTS i_other.secret (a INT)")
        .await
        .unwrap();
    d.query_drop("CREATE OR REPLACE PROCEDURE i_other.p() SELECT 'hidden'")
        .await
        .unwrap();
    let mut c = Conn::new(p.opts("limited", "pw", Some("i_shop")))
        .await
        .unwrap();
    let zero = [
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'i_other'",
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema IN ('mysql', 'i_other')",
        "SELECT COUNT(*) FROM information_schema.tables t WHERE CONCAT(t.table_schema, '.', t.table_name) = 'i_other.secret'",
        "SELECT COUNT(*) FROM information_schema.routines WHERE routine_definition LIKE '%hidden%'",
        "SELECT COUNT(*) FROM (SELECT table_name FROM information_schema.columns WHERE table_name = 'secret') x",
        "SELECT COUNT(*) FROM i_shop.products WHERE EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = 'i_other')",
        "/* shardgate:node=dn1 */ SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'i_other'",
        "SELECT COUNT(*) /*M!100000 FROM information_schema.tables WHERE table_schema = 'i_other' */",
        "SELECT COUNT(*) /*!40101 FROM information_schema.tables WHERE table_schema = 'i_other' */",
    ];
    for sql in zero {
        let n: Option<i64> = c
            .query_first(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(n, Some(0), "{sql}");
    }
    let n: Option<i64> = c
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ?",
            ("i_other",),
        )
        .await
        .unwrap();
    assert_eq!(n, Some(0));
    // Its own databases are all there, with their logical names.
    let own: Vec<String> = c
        .query("SELECT DISTINCT table_schema FROM information_schema.tables WHERE table_name = 'orders'")
        .await
        .unwrap();
    assert_eq!(own, ["i_shop"]);
    // Tables about the server's clients and the backend account are refused by name;
    // a query in a string is refused rather than run whole.
    refused(
        &mut c,
        "SELECT * FROM information_schema.user_privileges",
        1142,
    )
    .await;
    refused(
        &mut c,
        "SELECT COUNT(*) FROM information_schema.innodb_sys_tables",
        1142,
    )
    .await;
    refused(
        &mut c,
        "PREPARE s FROM 'SELECT COUNT(*) FROM information_schema.tables'",
        1235,
    )
    .await;
    for sql in [
        "DO 1; PREPARE s FROM 'SELECT COUNT(*) FROM information_schema.tables'",
        "SET sql_mode = 'ANSI_QUOTES'; SELECT * FROM \"information_schema\".\"schemata\"",
    ] {
        refused(&mut c, sql, 1235).await;
    }
    refused(&mut c, "SELECT * FROM information_schema.files", 1142).await;
    // Tables about nothing but the server are read as they are.
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM information_schema.collations")
        .await
        .unwrap();
    assert!(n.unwrap_or(0) > 0);
}

#[tokio::test]
async fn a_read_only_user_reads_and_nothing_else() {
    let users = "[[users]]\nname = \"reader\"\npassword = \"pw\"\nprivileges = [\"read\"]\n";
    let (p, _) = two_schemas_with("r_", users).await;
    let mut r = Conn::new(p.opts("reader", "pw", Some("r_shop")))
        .await
        .unwrap();
    r.query_drop("SELECT * FROM products").await.unwrap();
    refused(&mut r, "INSERT INTO products VALUES (9, 9)", 1142).await;
    refused(&mut r, "CREATE TABLE z (a INT)", 1142).await;
}

/// What one user gets for one statement.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    Ok,
    Err(u16),
}

use Want::{Err as E, Ok as O};

/// Statements × users (full rights, limited to one schema, read-only), each with the
/// answer it must get. `{n}` is the user's index, so that rows and objects differ.
const TABLE: &[(&str, [Want; 3])] = &[
    // Reads, in and out of the session's schema.
    ("SELECT * FROM orders WHERE user_id = 1", [O, O, O]),
    ("SELECT COUNT(*) FROM orders", [O, O, O]),
    ("SELECT * FROM products", [O, O, O]),
    ("SELECT * FROM notes", [O, O, O]),
    ("SELECT * FROM t_shop.orders WHERE user_id = 2", [O, O, O]),
    ("SELECT * FROM `t_shop`.`products`", [O, O, O]),
    ("SELECT * FROM t_crm.customers", [O, E(1142), O]),
    (
        "SELECT (SELECT COUNT(*) FROM t_crm.customers)",
        [O, E(1142), O],
    ),
    ("SELECT * FROM mysql.user", [E(1142), E(1142), E(1142)]),
    ("SELECT * FROM `mysql`.`db`", [E(1142), E(1142), E(1142)]),
    (
        "SELECT * FROM performance_schema.threads",
        [E(1142), E(1142), E(1142)],
    ),
    ("SELECT * FROM sys.version", [E(1142), E(1142), E(1142)]),
    ("SELECT * FROM t_other.t", [E(1142), E(1142), E(1142)]),
    (
        "SELECT * FROM orders WHERE id IN (SELECT 1 FROM mysql.user)",
        [E(1142), E(1142), E(1142)],
    ),
    (
        "SELECT * FROM orders o JOIN t_crm.customers c ON c.id = o.id",
        [E(1235), E(1142), E(1235)],
    ),
    (
        "SELECT LOAD_FILE('/etc/hostname')",
        [E(1227), E(1227), E(1227)],
    ),
    (
        "SELECT 1 INTO OUTFILE '/tmp/t_out_{n}'",
        [E(1227), E(1227), E(1227)],
    ),
    ("SHOW TABLES", [O, O, O]),
    ("SHOW GRANTS", [O, O, O]),
    ("SHOW PROCESSLIST", [O, O, O]),
    ("SELECT CURRENT_USER()", [O, O, O]),
    (
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 't_shop'",
        [O, O, O],
    ),
    (
        "SELECT * FROM information_schema.processlist",
        [E(1227), E(1227), E(1227)],
    ),
    ("EXECUTE IMMEDIATE 'SELECT 1'", [O, O, O]),
    // Writes.
    (
        "INSERT INTO orders (id, user_id, v) VALUES (10{n}, 5, 1)",
        [O, O, E(1142)],
    ),
    ("UPDATE orders SET v = 2 WHERE user_id = 1", [O, O, E(1142)]),
    (
        "UPDATE products SET price = price WHERE id = 1",
        [O, O, E(1142)],
    ),
    ("DELETE FROM notes WHERE id = 999", [O, O, E(1142)]),
    ("REPLACE INTO notes VALUES (5{n}, 'r')", [O, O, E(1142)]),
    (
        "INSERT INTO notes SELECT id + 10{n}0, 'c' FROM notes WHERE id = 1",
        [O, O, E(1142)],
    ),
    (
        "INSERT INTO t_crm.customers VALUES (10{n}, 'x')",
        [O, E(1142), E(1142)],
    ),
    (
        "INSERT INTO t_other.t VALUES (1)",
        [E(1142), E(1142), E(1142)],
    ),
    (
        "LOAD DATA INFILE '/etc/passwd' INTO TABLE notes",
        [E(1227), E(1227), E(1227)],
    ),
    // DDL.
    ("CREATE TABLE scratch_{n} (a INT)", [O, O, E(1142)]),
    ("ALTER TABLE scratch_{n} ADD COLUMN b INT", [O, O, E(1142)]),
    ("DROP TABLE IF EXISTS scratch_{n}", [O, O, E(1142)]),
    ("CREATE TABLE t_crm.x_{n} (a INT)", [O, E(1142), E(1142)]),
    (
        "CREATE TABLE t_other.x_{n} (a INT)",
        [E(1142), E(1142), E(1142)],
    ),
    ("CREATE DATABASE t_new_{n}", [E(1227), E(1227), E(1227)]),
    ("DROP DATABASE t_shop", [E(1227), E(1227), E(1227)]),
    // Accounts, files, administration.
    (
        "CREATE USER x_{n} IDENTIFIED BY 'x'",
        [E(1227), E(1227), E(1227)],
    ),
    ("DROP USER sandbox", [E(1227), E(1227), E(1227)]),
    ("GRANT SELECT ON *.* TO x", [E(1227), E(1227), E(1227)]),
    (
        "REVOKE ALL ON *.* FROM sandbox",
        [E(1227), E(1227), E(1227)],
    ),
    ("SET PASSWORD = PASSWORD('x')", [E(1227), E(1227), E(1227)]),
    ("SET GLOBAL wait_timeout = 100", [E(1227), E(1227), E(1227)]),
    ("SET @@global.read_only = 1", [E(1227), E(1227), E(1227)]),
    ("FLUSH TABLES", [E(1227), E(1227), E(1227)]),
    ("SHUTDOWN", [E(1227), E(1227), E(1227)]),
    ("INSTALL SONAME 'ha_blackhole'", [E(1227), E(1227), E(1227)]),
    ("STOP SLAVE", [E(1227), E(1227), E(1227)]),
    ("RESET MASTER", [E(1227), E(1227), E(1227)]),
    ("KILL USER sandbox", [E(1235), E(1235), E(1235)]),
    (
        "PREPARE s FROM 'SELECT * FROM mysql.user'",
        [E(1142), E(1142), E(1142)],
    ),
    ("PREPARE s FROM @q", [E(1227), E(1227), E(1227)]),
    (
        "EXECUTE IMMEDIATE CONCAT('SELECT ', '1')",
        [E(1227), E(1227), E(1227)],
    ),
    ("CALL t_other.p()", [E(1142), E(1142), E(1142)]),
    ("SELECT t_other.f(1)", [E(1142), E(1142), E(1142)]),
    ("SELECT 1; DROP USER nobody", [E(1227), E(1227), E(1227)]),
    // Around the checks (found by review): batches, SET STATEMENT, sql_mode set by
    // number, TABLE, aliases named like databases, SHOW FROM, quoted names.
    ("SELECT 1; PREPARE s FROM 'SELECT * FROM mysql.user'", [E(1142), E(1142), E(1142)]),
    ("SET @q = 'x'; PREPARE s FROM @q", [E(1227), E(1227), E(1227)]),
    ("SET STATEMENT max_statement_time = 0 FOR GRANT ALL ON *.* TO x", [E(1227), E(1227), E(1227)]),
    ("SET STATEMENT max_statement_time = 0 FOR DELETE FROM notes WHERE id = 999", [O, O, E(1142)]),
    ("SET sql_mode = 2097152; SELECT 'a\\', user FROM mysql.user -- '", [E(1142), E(1142), E(1142)]),
    ("TABLE mysql.user", [E(1142), E(1142), E(1142)]),
    ("SELECT * FROM 1db.t", [E(1142), E(1142), E(1142)]),
    ("SELECT * FROM t_other.1t", [E(1142), E(1142), E(1142)]),
    ("WITH mysql AS (SELECT 1) TABLE mysql.user", [E(1142), E(1142), E(1142)]),
    ("SELECT sys.version_major() FROM notes AS sys", [E(1142), E(1142), E(1142)]),
    ("SHOW TABLES FROM mysql", [E(1044), E(1044), E(1044)]),
    ("SHOW COLUMNS FROM user FROM mysql", [E(1044), E(1044), E(1044)]),
    ("SHOW CREATE USER sandbox", [E(1227), E(1227), E(1227)]),
    ("SHOW ENGINE INNODB STATUS", [E(1227), E(1227), E(1227)]),
    ("SHOW BINLOG EVENTS", [E(1227), E(1227), E(1227)]),
    ("SELECT info FROM information_schema.`PROCESSLIST`", [E(1227), E(1227), E(1227)]),
    ("INSERT INTO notes SELECT 1, table_name FROM information_schema.tables", [E(1227), E(1227), E(1142)]),
    ("CREATE OR REPLACE USER x_{n}", [E(1227), E(1227), E(1227)]),
    ("SET @@persist.max_connections = 10", [E(1227), E(1227), E(1227)]),
    ("SET @@global.`max_connections` = 10", [E(1227), E(1227), E(1227)]),
    ("RESTART", [E(1227), E(1227), E(1227)]),
    ("LOCK INSTANCE FOR BACKUP", [E(1227), E(1227), E(1227)]),
    ("BACKUP STAGE START", [E(1227), E(1227), E(1227)]),
    ("LOAD DATA INFILE '/etc/passwd' INTO TABLE notes (@x) SET body = (SELECT 1 FROM (SELECT 1) AS local)", [E(1227), E(1227), E(1227)]),
    ("SELECT `load_file`('/etc/passwd')", [E(1227), E(1227), E(1227)]),
    ("ANALYZE DELETE FROM notes WHERE id = 999", [O, O, E(1142)]),
    ("CREATE PROCEDURE p_{n}() BEGIN PREPARE s FROM @q; EXECUTE s; END", [E(1227), E(1227), E(1227)]),
    ("SELECT d.x FROM (SELECT 1 AS x) AS d", [O, O, O]),
    // Routine bodies run with the backend account's rights: checked statement by statement.
    ("CREATE PROCEDURE pg_{n}() SET GLOBAL net_read_timeout = 31", [E(1227), E(1227), E(1227)]),
    ("CREATE PROCEDURE pu_{n}() BEGIN IF 1 THEN CREATE USER x_{n}; END IF; END", [E(1227), E(1227), E(1227)]),
    ("CREATE PROCEDURE pd_{n}() DROP DATABASE t_other", [E(1227), E(1227), E(1227)]),
    ("CREATE EVENT ev_{n} ON SCHEDULE EVERY 1 DAY DO GRANT ALL ON *.* TO x_{n}", [E(1227), E(1227), E(1227)]),
    ("CREATE PROCEDURE pr_{n}() UPDATE notes SET body = 'x'", [O, O, E(1142)]),
    // About every database or every client: the admin grant.
    ("SHOW OPEN TABLES", [E(1227), E(1227), E(1227)]),
    ("SHOW PROCEDURE STATUS", [E(1227), E(1227), E(1227)]),
    ("SHOW TABLE_STATISTICS", [E(1227), E(1227), E(1227)]),
    ("KILL QUERY ID 999999", [E(1235), E(1235), E(1235)]),
    ("SELECT 1; SHOW PROCESSLIST", [E(1227), E(1227), E(1227)]),
    ("SELECT 1; KILL 999999", [E(1227), E(1227), E(1227)]),
    // Names that start with a digit are names, with or without a space before the dot.
    ("SELECT * FROM 1t_other .t", [E(1142), E(1142), E(1142)]),
    ("SHOW TABLES FROM 1t_other", [E(1044), E(1044), E(1044)]),
    ("SELECT NEXTVAL(no_such_seq)", [E(4091), E(4091), E(1142)]),
    ("SELECT NEXT VALUE FOR no_such_seq", [E(4091), E(4091), E(1142)]),
    // Compound statements run their statements at once: each is checked.
    ("IF 1 THEN CREATE USER x_{n}; END IF", [E(1227), E(1227), E(1227)]),
    ("BEGIN NOT ATOMIC SET GLOBAL max_connections = 499; END", [E(1227), E(1227), E(1227)]),
    ("IF 1 THEN INSERT INTO notes VALUES (90{n}, 'x'); END IF", [O, O, E(1142)]),
    // What shardgate answers itself, asked another way, needs admin.
    ("EXECUTE IMMEDIATE 'SHOW GRANTS'", [E(1227), E(1227), E(1227)]),
    ("PREPARE g FROM 'SHOW DATABASES'", [E(1227), E(1227), E(1227)]),
    ("EXECUTE IMMEDIATE 'SELECT schema_name FROM informat\\ion_schema.schemata'", [E(1235), E(1235), E(1235)]),
    ("EXECUTE IMMEDIATE 'SELECT ?' USING LOAD_FILE('/etc/hostname')", [E(1227), E(1227), E(1227)]),
    ("ANALYZE FORMAT=JSON DELETE FROM notes WHERE id = 999", [O, O, E(1142)]),
    ("SET SESSION server_id = 2", [E(1227), E(1227), E(1227)]),
    ("XA START 'x'", [E(1227), E(1227), E(1227)]),
    ("SET NAMES gbk; SELECT 1", [E(1235), E(1235), E(1235)]),
    ("SET SESSION tx_read_only = 0", [O, O, E(1142)]),
    ("START TRANSACTION READ WRITE", [O, O, E(1142)]),
    ("ROLLBACK", [O, O, O]),
    ("ANALYZE TABLE notes", [O, O, E(1142)]),
    ("DO 1 + 1", [O, O, O]),
    ("DO (SELECT COUNT(*) FROM t_other.t)", [E(1142), E(1142), E(1142)]),
    ("HANDLER notes OPEN AS h_{n}", [O, O, O]),
    ("HANDLER t_other.t OPEN", [E(1142), E(1142), E(1142)]),
    ("CREATE TRIGGER tr_{n} BEFORE INSERT ON notes FOR EACH ROW SET NEW.body = 'x'", [O, O, E(1142)]),
    ("DROP TRIGGER IF EXISTS tr_{n}", [O, O, E(1142)]),
    // Databases.
    ("USE t_crm", [O, E(1044), O]),
    ("USE mysql", [E(1049), E(1049), E(1049)]),
    ("SET SESSION sql_mode = DEFAULT", [O, O, O]),
];

#[tokio::test]
async fn statements_by_user_get_their_answer() {
    let users = "[[users]]\nname = \"limited\"\npassword = \"pw\"\nschemas = [\"t_shop\"]\n\
                 [[users]]\nname = \"reader\"\npassword = \"pw\"\nprivileges = [\"read\"]\n";
    let (p, _) = two_schemas_with("t_", users).await;
    let mut d = direct(&sandbox().groups[0].primary, None).await;
    d.query_drop("CREATE DATABASE IF NOT EXISTS t_other")
        .await
        .unwrap();
    d.query_drop("CREATE TABLE IF NOT EXISTS t_other.t (a INT)")
        .await
        .unwrap();
    d.query_drop("CREATE DATABASE IF NOT EXISTS `1t_other`")
        .await
        .unwrap();
    d.query_drop("CREATE TABLE IF NOT EXISTS `1t_other`.t (a INT)")
        .await
        .unwrap();
    let mut wrong = Vec::new();
    for (n, (user, password)) in [(USER, PASSWORD), ("limited", "pw"), ("reader", "pw")]
        .into_iter()
        .enumerate()
    {
        let mut c = Conn::new(p.opts(user, password, Some("t_shop")))
            .await
            .unwrap();
        for (sql, wants) in TABLE {
            let sql = sql.replace("{n}", &n.to_string());
            c.query_drop("USE t_shop").await.unwrap();
            let got = match c.query_drop(&sql).await {
                Ok(()) => Want::Ok,
                Err(e) => Want::Err(error_code(&e).unwrap_or(0)),
            };
            if got != wants[n] {
                wrong.push(format!("{user}: {sql}: got {got:?}, want {:?}", wants[n]));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases:\n{}",
        wrong.len(),
        TABLE.len() * 3,
        wrong.join("\n")
    );
    // Nothing the refused statements asked for happened.
    let n: Option<i64> = d
        .query_first("SELECT COUNT(*) FROM mysql.user WHERE user LIKE 'x\\_%'")
        .await
        .unwrap();
    assert_eq!(n, Some(0));
    let dbs: Vec<String> = d.query("SHOW DATABASES LIKE 't\\_new%'").await.unwrap();
    assert!(dbs.is_empty(), "{dbs:?}");
}

/// A session with no database runs with none, never in the database another session
/// left on a pooled connection (which a hint or COM_CHANGE_USER could otherwise reach).
#[tokio::test]
async fn a_session_without_a_database_never_inherits_one() {
    let users = "[[users]]\nname = \"limited\"\npassword = \"pw\"\nschemas = [\"nd_shop\"]\n\
                 [pool]\nmax_size = 1\n";
    let (p, _) = two_schemas_with("nd_", users).await;
    // The one connection to dn2 now has nd_crm selected.
    let mut full = p.conn(Some("nd_crm")).await;
    full.query_drop("SELECT COUNT(*) FROM customers")
        .await
        .unwrap();
    drop(full);
    let mut c = Conn::new(p.opts("limited", "pw", None)).await.unwrap();
    for sql in [
        "/* shardgate:node=dn2 */ SELECT COUNT(*) FROM customers",
        "/* shardgate:node=dn2 */ UPDATE customers SET id = 2",
    ] {
        let e = c.query_drop(sql).await.unwrap_err();
        assert_eq!(error_code(&e), Some(1046), "{sql}: {e}");
    }
    let db: Option<Option<String>> = c
        .query_first("/* shardgate:node=dn2 */ SELECT DATABASE()")
        .await
        .unwrap();
    assert_eq!(db, Some(None));
}

/// A read-only user's connections refuse writes in the session itself: a stored
/// function that writes, called from a SELECT, DO or SET, fails instead of writing.
#[tokio::test]
async fn a_read_only_user_cannot_write_through_a_function() {
    let users = "[[users]]\nname = \"reader\"\npassword = \"pw\"\nprivileges = [\"read\"]\n";
    let (p, mut full) = two_schemas_with("ro_", users).await;
    full.query_drop("USE ro_shop").await.unwrap();
    full.query_drop("CREATE TABLE audit_log (x INT)")
        .await
        .unwrap();
    full.query_drop(
        "CREATE FUNCTION fw() RETURNS INT DETERMINISTIC MODIFIES SQL DATA \
         BEGIN INSERT INTO audit_log VALUES (1); RETURN 1; END",
    )
    .await
    .unwrap();
    let mut c = Conn::new(p.opts("reader", "pw", Some("ro_shop")))
        .await
        .unwrap();
    for sql in [
        "/* shardgate:primary */ SELECT fw()",
        "DO fw()",
        "SET @x = fw()",
    ] {
        let e = c.query_drop(sql).await.unwrap_err();
        assert_eq!(error_code(&e), Some(1792), "{sql}: {e}");
    }
    // Nothing was written, and the full user's session still writes.
    full.query_drop("INSERT INTO audit_log VALUES (2)")
        .await
        .unwrap();
    let n: Option<i64> = full
        .query_first("SELECT COUNT(*) FROM audit_log")
        .await
        .unwrap();
    assert_eq!(n, Some(1));
}
