//! Every SELECT answered, and answered exactly: a shop schema with every table kind
//! (a hash-sharded binding pair, a table sharded by another key, a month-sharded
//! table, a broadcast, a single and an unconfigured table; NULLs, negative and 64-bit
//! keys, unicode and case-insensitive strings, month edges), and the query shapes
//! that need rows of several shards together (subqueries, joins across shard keys,
//! set operations, window functions, the harder aggregates), each compared with one
//! plain MariaDB holding the same rows. A refusal is a failure here.

use std::sync::OnceLock;

#[path = "differential/gen.rs"]
mod gen;
#[path = "cross_shard/load.rs"]
mod load;
#[path = "cross_shard/shop.rs"]
mod shop_data;

use mysql_async::prelude::*;
use mysql_async::Conn;
use shop_data::{rows, shop_tables, DDL, QUERIES};
use tests::compare::{answer, same};
use tests::{direct, Proxy, Sandbox, PASSWORD, USER};

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[0, 0]).expect("start the MariaDB sandbox"))
}

/// The shop schema `db` behind a shardgate (with `server` settings), loaded with the
/// same rows as the plain database `{db}_oracle` on dn1.
struct Shop {
    proxy: Proxy,
    sharded: Conn,
    oracle: Conn,
}

async fn shop(db: &str, node_user: (&str, &str), server: &str) -> Shop {
    let oracle_db = format!("{db}_oracle");
    let s = sandbox();
    for name in [db, oracle_db.as_str()] {
        tests::recreate_db_ci(s, name).await;
    }
    let (g1, g2) = (&s.groups[0], &s.groups[1]);
    let (node_user, node_password) = node_user;
    let proxy = Proxy::with_config(&format!(
        "[server]\n{server}\n\
         [[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [nodes.dn1]\nprimary = \"{}\"\nuser = \"{node_user}\"\npassword = \"{node_password}\"\n\
         [nodes.dn2]\nprimary = \"{}\"\nuser = \"{node_user}\"\npassword = \"{node_password}\"\n\
         [rules.by_user]\nalgorithm = \"hash_mod\"\nshards = 4\n\
         [rules.by_order]\nalgorithm = \"mod\"\nshards = 2\n\
         [rules.by_month]\nalgorithm = \"date\"\nunit = \"month\"\nstart = \"2024-01-01\"\n\
         time_zone = \"UTC\"\nshards = 12\nsuffix_pattern = \"yyyyMM\"\n\
         [schemas.{db}]\nnode = \"dn1\"\nbinding = [[\"users\", \"orders\"]]\n\
         [schemas.{db}.tables.users]\nkind = \"sharded\"\ncolumn = \"id\"\nrule = \"by_user\"\nnodes = [\"dn1\", \"dn2\"]\ntables_per_node = 2\n\
         [schemas.{db}.tables.orders]\nkind = \"sharded\"\ncolumn = \"user_id\"\nrule = \"by_user\"\nnodes = [\"dn1\", \"dn2\"]\ntables_per_node = 2\n\
         [schemas.{db}.tables.items]\nkind = \"sharded\"\ncolumn = \"order_id\"\nrule = \"by_order\"\nnodes = [\"dn2\", \"dn1\"]\n\
         [schemas.{db}.tables.events]\nkind = \"sharded\"\ncolumn = \"created\"\nrule = \"by_month\"\nnodes = [\"dn1\", \"dn2\"]\ntables_per_node = 6\n\
         [schemas.{db}.tables.products]\nkind = \"broadcast\"\n\
         [schemas.{db}.tables.notes]\nkind = \"single\"\nnode = \"dn2\"\n",
        g1.primary.address(),
        g2.primary.address(),
    ));
    let mut sharded = proxy.conn(Some(db)).await;
    let mut oracle = direct(&g1.primary, Some(&oracle_db)).await;
    for ((name, ddl), (_, values)) in DDL.iter().zip(rows()) {
        for c in [&mut sharded, &mut oracle] {
            c.query_drop(format!("CREATE TABLE {name} {ddl}"))
                .await
                .unwrap();
            // No column list: shardgate reads the sharded tables' own.
            c.query_drop(format!("INSERT INTO {name} VALUES {}", values.join(", ")))
                .await
                .unwrap_or_else(|e| panic!("loading {name}: {e}"));
        }
    }
    Shop {
        proxy,
        sharded,
        oracle,
    }
}

#[tokio::test]
async fn cross_shard_selects_match_one_mariadb() {
    let Shop {
        proxy: _proxy,
        mut sharded,
        mut oracle,
    } = shop("xs", (USER, PASSWORD), "").await;
    let mut failures = Vec::new();
    for (sql, ordered) in QUERIES {
        let before = failures.len();
        let want = answer(&mut oracle, sql)
            .await
            .unwrap_or_else(|e| panic!("the oracle refuses {sql}: {e}"));
        match answer(&mut sharded, sql).await {
            Ok(got) if same(got.clone(), want.clone(), *ordered) => {}
            Ok(got) => failures.push(format!(
                "{sql}\n  shardgate: {got:?}\n  mariadb:   {want:?}"
            )),
            Err(e) => failures.push(format!("{sql}\n  shardgate failed: {e}")),
        }
        if failures.len() > before {
            // The plan, to see which strategy went wrong.
            let plan = answer(&mut sharded, &format!("EXPLAIN SHARDING {sql}")).await;
            failures.push(format!("  plan: {plan:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries differ:\n{}",
        failures.len(),
        QUERIES.len(),
        failures.join("\n")
    );
}

/// Inside a transaction the gathered rows are read through the transaction, so the
/// statement sees the session's own writes; the temporary tables never outlive it
/// (a later statement reading a table of the same name on a reused connection sees
/// the real one).
#[tokio::test]
async fn a_gather_in_a_transaction_sees_its_writes_and_leaves_no_copy_behind() {
    let Shop {
        proxy: _proxy,
        mut sharded,
        ..
    } = shop("xs_tx", (USER, PASSWORD), "").await;
    let c = &mut sharded;
    let count =
        "SELECT COUNT(*) FROM users WHERE id IN (SELECT user_id FROM orders WHERE qty = 77)";
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("INSERT INTO orders (id, user_id, qty) VALUES (9001, 3, 77), (9002, 4, 77)")
        .await
        .unwrap();
    let n: Option<i64> = c.query_first(count).await.unwrap();
    assert_eq!(n, Some(2), "the transaction's own rows");
    c.query_drop("ROLLBACK").await.unwrap();
    let n: Option<i64> = c.query_first(count).await.unwrap();
    assert_eq!(n, Some(0), "rolled back");
    // In a transaction products is copied, not read in place: a copy thinned to
    // one row by the statement's condition on it.
    c.query_drop("BEGIN").await.unwrap();
    let thin: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM products p WHERE p.id = 3 AND EXISTS (SELECT 1 FROM orders o WHERE o.product_id = p.id)")
        .await
        .unwrap();
    assert_eq!(thin, Some(1));
    c.query_drop("COMMIT").await.unwrap();
    // The copy of products held one row; every connection of the pool answers with
    // the real table's ten.
    for _ in 0..20 {
        let n: Option<i64> = c
            .query_first("/* shardgate:primary */ SELECT COUNT(*) FROM products")
            .await
            .unwrap();
        assert_eq!(n, Some(10));
    }
}

/// Past the budget a gather stops with a clear error naming it, and the session
/// goes on; a statement within the budget is answered.
#[tokio::test]
async fn the_gather_budget_stops_with_a_clear_error() {
    let Shop {
        proxy: _proxy,
        mut sharded,
        mut oracle,
    } = shop("xs_budget", (USER, PASSWORD), "gather_max_rows = 100").await;
    let big = "SELECT COUNT(*) FROM orders o JOIN items i ON i.order_id = o.id";
    let e = sharded.query_drop(big).await.unwrap_err();
    assert_eq!(tests::error_code(&e), Some(1104), "{e}");
    assert!(e.to_string().contains("server.gather_max_rows"), "{e}");
    // Thinned by its own conditions, the same join fits.
    let small = "SELECT COUNT(*) FROM orders o JOIN items i ON i.order_id = o.id WHERE o.id < 30 AND i.order_id < 30";
    let got: Option<i64> = sharded.query_first(small).await.unwrap();
    let want: Option<i64> = oracle.query_first(small).await.unwrap();
    assert_eq!(got, want);
    assert!(got.unwrap_or_default() > 0);
}

/// EXPLAIN SHARDING shows the strategy and its steps: where each table is read,
/// with the conditions pushed to it, and the statement on the evaluating node.
#[tokio::test]
async fn explain_sharding_shows_the_gather_steps() {
    let Shop {
        proxy: _proxy,
        mut sharded,
        ..
    } = shop("xs_explain", (USER, PASSWORD), "").await;
    let rows: Vec<(String, Option<String>, String, String, String)> = sharded
        .query("EXPLAIN SHARDING SELECT o.id FROM orders o JOIN items i ON i.order_id = o.id WHERE o.user_id = 3 AND i.qty > 1")
        .await
        .unwrap();
    let kinds: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "copy into temporary `orders`",
            "copy into temporary `items`",
            "copy into temporary `items`",
            "evaluate"
        ],
        "{rows:?}"
    );
    assert!(
        rows[0]
            .3
            .starts_with("gather (a statement over sharded tables"),
        "{rows:?}"
    );
    assert!(
        rows[0].4.ends_with("AS `o` WHERE (o.user_id = 3)"),
        "{rows:?}"
    );
    assert!(rows[1].4.ends_with("AS `i` WHERE (i.qty > 1)"), "{rows:?}");
    assert_eq!(rows[3].0, "dn1");
}

/// The temporary tables stay out of the binary log, even where the log would
/// replicate them (MIXED); an account that may not keep them out gets a clear
/// error instead of replicas receiving them.
#[tokio::test]
async fn temporary_tables_stay_out_of_the_binary_log() {
    let s = sandbox();
    let mut root = direct(&s.groups[0].primary, None).await;
    root.query_drop("CREATE USER IF NOT EXISTS 'narrow'@'%' IDENTIFIED BY 'narrow'")
        .await
        .unwrap();
    root.query_drop("GRANT ALL ON `xs_bin`.* TO 'narrow'@'%'")
        .await
        .unwrap();
    root.query_drop("GRANT ALL ON `xs_bin_oracle`.* TO 'narrow'@'%'")
        .await
        .unwrap();
    let mut root2 = direct(&s.groups[1].primary, None).await;
    root2
        .query_drop("CREATE USER IF NOT EXISTS 'narrow'@'%' IDENTIFIED BY 'narrow'")
        .await
        .unwrap();
    root2
        .query_drop("GRANT ALL ON `xs_bin`.* TO 'narrow'@'%'")
        .await
        .unwrap();
    root.query_drop("SET GLOBAL binlog_format = 'MIXED'")
        .await
        .unwrap();
    let sql = "SELECT COUNT(*) FROM users WHERE id IN (SELECT user_id FROM orders)";
    {
        let Shop {
            proxy: _proxy,
            mut sharded,
            mut oracle,
        } = shop("xs_bin", ("narrow", "narrow"), "").await;
        let e = sharded.query_drop(sql).await.unwrap_err();
        assert_eq!(tests::error_code(&e), Some(1227), "{e}");
        assert!(e.to_string().contains("BINLOG ADMIN"), "{e}");
        // The account's own statements still run.
        let n: Option<i64> = sharded
            .query_first("SELECT COUNT(*) FROM users")
            .await
            .unwrap();
        let want: Option<i64> = oracle
            .query_first("SELECT COUNT(*) FROM users")
            .await
            .unwrap();
        assert_eq!(n, want);
    }
    let (file, _): (String, u64) = root
        .query_first("SHOW MASTER STATUS")
        .await
        .unwrap()
        .map(|r: mysql_async::Row| (r.get(0).unwrap(), r.get(1).unwrap()))
        .unwrap();
    {
        let Shop {
            proxy: _proxy,
            mut sharded,
            mut oracle,
        } = shop("xs_bin", (USER, PASSWORD), "").await;
        let got: Option<i64> = sharded.query_first(sql).await.unwrap();
        let want: Option<i64> = oracle.query_first(sql).await.unwrap();
        assert_eq!(got, want);
    }
    root.query_drop("SET GLOBAL binlog_format = 'ROW'")
        .await
        .unwrap();
    let events: Vec<mysql_async::Row> = root
        .query(format!("SHOW BINLOG EVENTS IN '{file}'"))
        .await
        .unwrap();
    let temporary: Vec<String> = events
        .iter()
        .filter_map(|r| r.get::<String, _>(5))
        .filter(|info| info.contains("TEMPORARY"))
        .collect();
    assert!(temporary.is_empty(), "{temporary:?}");
}

/// An INSERT without a column list takes the table's columns in their order, as the
/// server would (invisible ones left out), read anew after an ALTER.
#[tokio::test]
async fn an_insert_without_a_column_list_takes_the_tables_columns() {
    let Shop {
        proxy: _proxy,
        mut sharded,
        ..
    } = shop("xs_cols", (USER, PASSWORD), "").await;
    let c = &mut sharded;
    c.query_drop("INSERT INTO orders VALUES (5001, 3, NULL, 1, 2.50, 'new', 0.5, '2024-05-05 10:00:00'), (5002, 4, 2, 2, NULL, NULL, NULL, NULL)")
        .await
        .unwrap();
    let rows: Vec<(i64, i64, Option<String>)> = c
        .query("SELECT id, user_id, status FROM orders WHERE id > 5000 ORDER BY id")
        .await
        .unwrap();
    assert_eq!(rows, [(5001, 3, Some("new".to_string())), (5002, 4, None)]);
    // Each row on its own shard: reading by the shard key finds it.
    let found: Option<i64> = c
        .query_first("SELECT id FROM orders WHERE user_id = 4 AND id = 5002")
        .await
        .unwrap();
    assert_eq!(found, Some(5002));
    c.query_drop(
        "ALTER TABLE orders ADD COLUMN hidden INT INVISIBLE DEFAULT 9, ADD COLUMN note VARCHAR(5)",
    )
    .await
    .unwrap();
    c.query_drop("INSERT INTO orders VALUES (5003, 5, NULL, NULL, NULL, NULL, NULL, NULL, 'x')")
        .await
        .unwrap();
    let row: Option<(i64, String)> = c
        .query_first("SELECT hidden, note FROM orders WHERE user_id = 5 AND id = 5003")
        .await
        .unwrap();
    assert_eq!(row, Some((9, "x".to_string())));
    // Prepared: the list is taken when it is prepared, each execution placed by its
    // bound key.
    let stmt = c
        .prep("INSERT INTO orders VALUES (?, ?, NULL, 7, NULL, 'sent', NULL, NULL, ?)")
        .await
        .unwrap();
    for (id, user) in [(5010, 1), (5011, 2), (5012, 3)] {
        c.exec_drop(&stmt, (id, user, "p")).await.unwrap();
    }
    for (id, user) in [(5010, 1), (5011, 2), (5012, 3)] {
        let row: Option<(i64, String, i64)> = c
            .query_first(format!(
                "SELECT qty, status, hidden FROM orders WHERE user_id = {user} AND id = {id}"
            ))
            .await
            .unwrap();
        assert_eq!(row, Some((7, "sent".to_string(), 9)), "{id}");
    }
    // After an ALTER the list is the table's new one: with a column more, the
    // values no longer match, as on the server.
    c.query_drop("ALTER TABLE orders ADD COLUMN extra INT")
        .await
        .unwrap();
    let e = c.exec_drop(&stmt, (5013, 4, "p")).await.unwrap_err();
    assert_eq!(tests::error_code(&e), Some(1136), "{e}");
    // Too few values: the server's own error, for the statement it would have had.
    let e = c
        .query_drop("INSERT INTO orders VALUES (5004, 6)")
        .await
        .unwrap_err();
    assert_eq!(tests::error_code(&e), Some(1136), "{e}");
}

/// A prepared read whose bound values need several shards is answered (merged or
/// gathered) in the binary protocol, value for value what one MariaDB answers.
#[tokio::test]
async fn prepared_reads_over_several_shards_are_answered() {
    let Shop {
        proxy: _proxy,
        mut sharded,
        mut oracle,
    } = shop("xs_prep", (USER, PASSWORD), "").await;
    type Row = (
        i64,
        i64,
        Option<String>,
        Option<f64>,
        Option<String>,
        Option<mysql_async::Value>,
    );
    let sql = "SELECT id, user_id, CAST(amount AS CHAR), ratio, status, created FROM orders \
               WHERE (qty = ? OR status = ?) AND created >= ? ORDER BY id";
    let args = (3, "paid", mysql_async::Value::Date(2024, 3, 1, 0, 0, 0, 0));
    let got: Vec<Row> = sharded.exec(sql, args.clone()).await.unwrap();
    let want: Vec<Row> = oracle.exec(sql, args).await.unwrap();
    assert!(!want.is_empty());
    assert_eq!(got, want);
    // Aggregates merged across shards, and NULL and string parameters.
    let sql = "SELECT status, COUNT(*), SUM(qty), MIN(created) FROM orders WHERE user_id <> ? \
               AND status IS NOT NULL GROUP BY status ORDER BY status";
    type Agg = (String, i64, Option<String>, Option<mysql_async::Value>);
    let got: Vec<Agg> = sharded.exec(sql, (7,)).await.unwrap();
    let want: Vec<Agg> = oracle.exec(sql, (7,)).await.unwrap();
    assert_eq!(got, want);
    let none: Vec<(i64,)> = sharded
        .exec(
            "SELECT id FROM orders WHERE amount = ? ORDER BY id",
            (mysql_async::Value::NULL,),
        )
        .await
        .unwrap();
    assert!(none.is_empty());
}

/// A prepared read that needs a gather (a subquery, a join across shard keys) is
/// prepared with the server's own metadata and answered in the binary protocol.
#[tokio::test]
async fn prepared_reads_that_need_a_gather_are_answered() {
    let Shop {
        proxy: _proxy,
        mut sharded,
        mut oracle,
    } = shop("xs_prep_gather", (USER, PASSWORD), "").await;
    let sql = "SELECT u.id, u.name, (SELECT COUNT(*) FROM orders o WHERE o.user_id = u.id AND o.qty > ?) AS n \
               FROM users u WHERE u.id IN (SELECT user_id FROM events WHERE created < ?) ORDER BY u.id";
    let stmt = sharded.prep(sql).await.unwrap();
    assert_eq!(stmt.num_params(), 2);
    let names: Vec<String> = stmt
        .columns()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    assert_eq!(names, ["id", "name", "n"]);
    type Row = (i64, Option<String>, i64);
    for args in [(1, "2024-04-01"), (3, "2024-12-31 23:59:59")] {
        let got: Vec<Row> = sharded.exec(&stmt, args).await.unwrap();
        let want: Vec<Row> = oracle.exec(sql, args).await.unwrap();
        assert!(!want.is_empty());
        assert_eq!(got, want, "{args:?}");
    }
}

/// A cursor (EXECUTE with CURSOR_TYPE_READ_ONLY, then COM_STMT_FETCH in batches) on
/// a prepared read over several shards, one that needs a gather, and one on a single
/// shard: the rows fetched are byte for byte the ones one MariaDB's cursor gives,
/// the column definitions name the logical schema and table, and closing a cursor
/// midway leaves the session usable.
#[tokio::test]
async fn cursors_over_shards_fetch_what_one_mariadb_fetches() {
    let Shop { proxy, .. } = shop("xs_cursor", (USER, PASSWORD), "").await;
    let (addr, oracle) = (proxy.addr(), sandbox().groups[0].primary.port);
    tokio::task::spawn_blocking(move || {
        use tests::raw::{column_tables, Fetched, RawClient};
        let session = |f: &Fetched| f.statuses.iter().map(|s| s & 0x00C3).collect::<Vec<_>>();
        let (mut c, _) = RawClient::connect(&addr, USER, PASSWORD).unwrap();
        let (mut o, _) = RawClient::connect(&format!("127.0.0.1:{oracle}"), USER, PASSWORD).unwrap();
        assert_eq!(c.command(b"\x02xs_cursor").unwrap().0[0], 0);
        assert_eq!(o.command(b"\x02xs_cursor_oracle").unwrap().0[0], 0);
        for (sql, param, table) in [
            // Merged over every shard.
            ("SELECT id, user_id, amount, ratio, status, created FROM orders WHERE qty > ? ORDER BY id", 1, "orders"),
            // Gathered: a join across shard keys.
            ("SELECT u.id, u.name, COUNT(o.id) AS n, SUM(o.amount) FROM users u LEFT JOIN orders o \
              ON o.user_id = u.id WHERE u.id > ? GROUP BY u.id, u.name ORDER BY u.id", -5, "users"),
            // One shard.
            ("SELECT id, status, amount FROM orders WHERE user_id = ? ORDER BY id", 999, "orders"),
        ] {
            let got = c.cursor(sql, param, 2).unwrap_or_else(|e| panic!("{sql}: {e}"));
            let want = o.cursor(sql, param, 2).unwrap();
            assert!(want.rows.len() > 2, "{sql}: fetched in several batches");
            assert_eq!(got.rows, want.rows, "{sql}");
            assert_eq!(got.fetches, want.fetches, "{sql}");
            // The transaction, autocommit and cursor flags (which indexes a
            // server used is its own).
            assert_eq!(session(&got), session(&want), "{sql}");
            let (schema, _, org_table) = column_tables(&got.columns[0]);
            assert_eq!((schema.as_str(), org_table.as_str()), ("xs_cursor", table), "{sql}");
        }
        // Inside a transaction: every status says so, as the server's would, though
        // a gathered cursor lives on a connection of its own.
        for conn in [&mut c, &mut o] {
            assert_eq!(conn.command(b"\x03BEGIN").unwrap().0[0], 0);
        }
        let sql = "SELECT u.id FROM users u WHERE u.id IN (SELECT user_id FROM orders) AND u.id > ? ORDER BY u.id";
        let got = c.cursor(sql, 0, 5).unwrap();
        let want = o.cursor(sql, 0, 5).unwrap();
        assert_eq!(got.rows, want.rows);
        assert_eq!(session(&got), session(&want));
        assert!(got.statuses.iter().all(|s| s & 0x0001 != 0), "{:?}", got.statuses);
        for conn in [&mut c, &mut o] {
            assert_eq!(conn.command(b"\x03COMMIT").unwrap().0[0], 0);
            assert_eq!(conn.command(b"\x03SET autocommit = 0").unwrap().0[0], 0);
        }
        // With autocommit off, no status may say it is on.
        let got = c.cursor(sql, 0, 5).unwrap();
        let want = o.cursor(sql, 0, 5).unwrap();
        assert_eq!(session(&got), session(&want));
        assert!(got.statuses.iter().all(|s| s & 0x0002 == 0), "{:?}", got.statuses);
        for conn in [&mut c, &mut o] {
            assert_eq!(conn.command(b"\x03COMMIT").unwrap().0[0], 0);
            assert_eq!(conn.command(b"\x03SET autocommit = 1").unwrap().0[0], 0);
        }
        // Closed after the first batch (its connection goes back), executed again,
        // and the session goes on.
        let sql = "SELECT id FROM orders WHERE qty > ? ORDER BY id";
        let (id, _, _) = c.open_cursor(sql, 0).unwrap();
        let (rows, status) = c.fetch(id, 2).unwrap();
        assert_eq!((rows.len(), status & 0x0080), (2, 0));
        let mut close = vec![0x19];
        close.extend_from_slice(&id);
        c.write_packet(0, &close).unwrap();
        let closed = c.fetch(id, 2).unwrap_err();
        assert!(closed.contains("Unknown prepared statement handler") || closed.contains("no open cursor"), "{closed}");
        let whole = c.cursor(sql, 0, 1000).unwrap();
        assert_eq!(whole.fetches, 1);
        let (first, rows) = c.command(b"\x03SELECT COUNT(*) FROM orders WHERE qty > 0").unwrap();
        assert_ne!(first[0], 0xFF, "{}", String::from_utf8_lossy(&first));
        assert_eq!(rows.len(), 1);
        let n: usize = String::from_utf8_lossy(&rows[0][1..]).parse().unwrap();
        assert_eq!(n, whole.rows.len());
    })
    .await
    .unwrap();
}

/// A gather leaves the session as it was: with autocommit off and settings replayed,
/// its transaction goes on (the evaluating connection's own state never becomes the
/// session's), sees its own rows, and commits them.
#[tokio::test]
async fn a_gather_keeps_the_sessions_transaction_and_autocommit() {
    let Shop {
        proxy: _proxy,
        mut sharded,
        ..
    } = shop("xs_auto", (USER, PASSWORD), "").await;
    let c = &mut sharded;
    c.query_drop("SET autocommit = 0").await.unwrap();
    c.query_drop("SET time_zone = '+00:00'").await.unwrap();
    c.query_drop("INSERT INTO orders (id, user_id, qty) VALUES (9001, 3, 77)")
        .await
        .unwrap();
    let n: Option<i64> = c
        .query_first(
            "SELECT COUNT(*) FROM users WHERE id IN (SELECT user_id FROM orders WHERE qty = 77)",
        )
        .await
        .unwrap();
    assert_eq!(n, Some(1), "the transaction's own row");
    let auto: Option<i64> = c.query_first("SELECT @@autocommit").await.unwrap();
    assert_eq!(auto, Some(0));
    c.query_drop("COMMIT").await.unwrap();
    let mut other = _proxy.conn(Some("xs_auto")).await;
    let n: Option<i64> = other
        .query_first("/* shardgate:primary */ SELECT COUNT(*) FROM orders WHERE id = 9001")
        .await
        .unwrap();
    assert_eq!(n, Some(1), "committed");
}

/// A multi-table DELETE or UPDATE runs where its joined rows live (a binding group
/// on its shard keys, broadcast tables read), and is refused when it would change a
/// broadcast table shard by shard.
#[tokio::test]
async fn multi_table_writes_run_where_their_rows_live() {
    let Shop {
        proxy: _proxy,
        mut sharded,
        mut oracle,
    } = shop("xs_multi", (USER, PASSWORD), "").await;
    for sql in [
        "DELETE o FROM orders o JOIN users u ON u.id = o.user_id WHERE u.country = 'jp'",
        "UPDATE orders o JOIN products p ON p.id = o.product_id SET o.qty = o.qty + 100 WHERE p.category = 'food'",
        "DELETE orders FROM orders JOIN users ON users.id = orders.user_id WHERE users.score > 80",
        // MySQL's comma form.
        "UPDATE orders o, users u SET o.qty = o.qty * 2 WHERE u.id = o.user_id AND u.name LIKE 'a%'",
        // Table names as qualifiers, of the SET targets too.
        "UPDATE orders, users SET orders.qty = orders.qty + 1 WHERE users.id = orders.user_id AND users.name LIKE 'b%'",
        "UPDATE orders SET orders.qty = orders.qty - 1 WHERE orders.user_id = 3",
        "UPDATE orders o, users u SET o.qty = 0 WHERE u.id = o.user_id AND o.user_id = 5 ORDER BY o.id LIMIT 1",
    ] {
        sharded.query_drop(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        oracle.query_drop(sql).await.unwrap();
    }
    let check = "SELECT id, user_id, qty FROM orders ORDER BY id";
    let got: Vec<(i64, i64, Option<i64>)> = sharded.query(check).await.unwrap();
    let want: Vec<(i64, i64, Option<i64>)> = oracle.query(check).await.unwrap();
    assert_eq!(got, want);
    assert!(got.len() < 240, "something was deleted");
    let e = sharded
        .query_drop("DELETE p FROM products p JOIN orders o ON o.product_id = p.id WHERE o.qty > 5")
        .await
        .unwrap_err();
    assert_eq!(tests::error_code(&e), Some(1235), "{e}");
    assert!(e.to_string().contains("changes `products`"), "{e}");
}

/// Seeded random SELECTs (the differential test's generator) over the shop, whose
/// tables are of every kind (hash binding pair, another key, month-sharded,
/// broadcast, single) with NULLs, 64-bit and negative keys, unicode and
/// case-insensitive strings and month edges: each compared with one MariaDB. A
/// refusal is a failure. `SHARDGATE_DIFF_QUERIES` and `SHARDGATE_DIFF_SEED` as for
/// `scripts/differential`.
#[tokio::test]
async fn random_selects_over_every_table_kind_match_one_mariadb() {
    let (queries, seed) = tests::compare::run_size(450, 0x5_40B);
    let Shop {
        proxy: _proxy,
        mut sharded,
        mut oracle,
    } = shop("xs_random", (USER, PASSWORD), "").await;
    let tables = shop_tables();
    let mut rng = tests::rng::Rng(seed);
    let statements: Vec<(String, bool)> = (0..queries)
        .map(|_| {
            if rng.chance(40) {
                let t = &tables[rng.below(tables.len())];
                gen::query(&mut rng, t)
            } else {
                gen::cross_query(&mut rng, &tables)
            }
        })
        .collect();
    tests::compare::compare_all(&mut sharded, &mut oracle, statements)
        .await
        .assert_none("shop differential", queries, seed);
}

/// A read over sharded tables that sets user variables would set them on a shard's
/// connection: refused (1235), never answered with the variable left unset.
#[tokio::test]
async fn reads_that_set_variables_on_sharded_tables_are_refused() {
    let Shop {
        proxy: _proxy,
        mut sharded,
        ..
    } = shop("xs_vars", (USER, PASSWORD), "").await;
    let c = &mut sharded;
    for sql in [
        "SELECT COUNT(*), @a := 5 FROM orders",
        "SELECT COUNT(*) INTO @n FROM orders",
        "SELECT o.id FROM orders o JOIN items i ON i.order_id = o.id LOCK IN SHARE MODE",
    ] {
        let e = c.query_drop(sql).await.unwrap_err();
        assert_eq!(tests::error_code(&e), Some(1235), "{sql}: {e}");
    }
    let e = c
        .query_drop(
            "SELECT o.id FROM orders o JOIN items i ON i.order_id = o.id LOCK IN SHARE MODE",
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("locking read"), "{e}");
    let e = c
        .query_drop("SELECT @b := id FROM orders WHERE user_id = 8 ORDER BY id")
        .await
        .unwrap_err();
    assert_eq!(tests::error_code(&e), Some(1235), "{e}");
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}
