//! Rights per table and the SQL firewall: a user's rights narrowed or widened on single
//! tables, statements denied by digest or pattern, and the guard against UPDATE and
//! DELETE without WHERE on sharded tables; set in the config and changed live on the
//! admin port. One sandbox for the binary, each test in its own schema.

use std::sync::OnceLock;

use mysql_async::prelude::*;
use mysql_async::Conn;
use tests::{direct, error_code, recreate_db, Proxy, Sandbox, PASSWORD, USER};

const DBA: &str = "dba";

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[0]).expect("start the MariaDB sandbox"))
}

/// Schema `db` on the sandbox's node: `orders` sharded in two tables, `salaries`,
/// `audit` and `notes` unconfigured; `users` are the config's extra accounts.
async fn proxy(db: &str, users: &str) -> (Proxy, Conn) {
    recreate_db(sandbox(), db).await;
    let p = Proxy::with_config(&format!(
        "[[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\n{users}\n\
         [admin]\nlisten = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\n\
         users = [{{ name = \"{DBA}\", password = \"{PASSWORD}\" }}]\n\
         [nodes.dn1]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [rules.two]\nalgorithm = \"mod\"\nshards = 2\n\
         [schemas.{db}]\nnode = \"dn1\"\n\
         [schemas.{db}.tables.orders]\nkind = \"sharded\"\ncolumn = \"id\"\nrule = \"two\"\n\
         nodes = [\"dn1\"]\ntables_per_node = 2\n\
         [schemas.{db}.tables.regions]\nkind = \"broadcast\"\n",
        sandbox().groups[0].primary.address()
    ));
    let mut owner = p.conn(Some(db)).await;
    for sql in [
        "CREATE TABLE orders (id INT PRIMARY KEY, v INT)",
        "CREATE TABLE salaries (id INT PRIMARY KEY, pay INT)",
        "CREATE TABLE audit (id INT PRIMARY KEY, note VARCHAR(20))",
        "CREATE TABLE notes (id INT PRIMARY KEY, body VARCHAR(20))",
        "CREATE TABLE regions (id INT PRIMARY KEY)",
        "INSERT INTO regions VALUES (1), (2)",
        "INSERT INTO orders VALUES (1, 10), (2, 20), (3, 30), (4, 40)",
        "INSERT INTO salaries VALUES (1, 1000)",
        "INSERT INTO notes VALUES (1, 'a'), (2, 'b')",
    ] {
        owner.query_drop(sql).await.unwrap();
    }
    (p, owner)
}

async fn login(p: &Proxy, user: &str, db: &str) -> Conn {
    Conn::new(p.opts(user, "pw", Some(db)))
        .await
        .unwrap_or_else(|e| panic!("{user}: {e}"))
}

async fn admin(p: &Proxy) -> Conn {
    Conn::new(p.admin_opts(DBA, PASSWORD))
        .await
        .expect("log in to the admin port")
}

/// `sql` fails with `code`; returns the message.
async fn refused(c: &mut Conn, sql: &str, code: u16) -> String {
    match c.query_drop(sql).await {
        Err(e) => {
            assert_eq!(error_code(&e), Some(code), "{sql}: {e}");
            e.to_string()
        }
        Ok(()) => panic!("{sql}: must be refused with {code}"),
    }
}

/// Runs `edit` on the admin port; LOAD CONFIG TO RUNTIME must then refuse: what it said.
async fn refused_load(admin: &mut Conn, edit: &str) -> String {
    admin.query_drop(edit).await.unwrap();
    admin
        .query_drop("LOAD CONFIG TO RUNTIME")
        .await
        .expect_err("refused")
        .to_string()
}

/// The digest SHOW STATS gives `statement`, once it is there.
async fn wait_for_digest(admin: &mut Conn, statement: &str) -> String {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stats: Vec<mysql_async::Row> = admin.query("SHOW STATS").await.unwrap();
        let found = stats
            .iter()
            .find(|r| r.get::<String, _>("statement").as_deref() == Some(statement))
            .and_then(|r| r.get("digest"));
        match found {
            Some(d) => return d,
            None if std::time::Instant::now() < until => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            None => panic!("no digest for {statement}: {stats:?}"),
        }
    }
}

async fn count(c: &mut Conn, sql: &str) -> i64 {
    c.query_first(sql).await.unwrap().unwrap()
}

#[tokio::test]
async fn rights_per_table_narrow_and_widen_a_users_rights() {
    let db = "rt_tables";
    let users = format!(
        "[[users]]\nname = \"clerk\"\npassword = \"pw\"\n\
         [users.tables]\n\"{db}.salaries\" = []\n\"{db}.orders\" = [\"read\"]\n\
         [[users]]\nname = \"auditor\"\npassword = \"pw\"\nprivileges = [\"read\"]\n\
         [users.tables]\n\"{db}.audit\" = [\"read\", \"write\"]\n\
         [[users]]\nname = \"reader\"\npassword = \"pw\"\nprivileges = []\n\
         [users.tables]\n\"{db}.notes\" = [\"read\"]\n\"{db}.level\" = []\n"
    );
    let (p, mut owner) = proxy(db, &users).await;

    // clerk: everything but orders (read only) and salaries (nothing).
    let mut clerk = login(&p, "clerk", db).await;
    assert_eq!(count(&mut clerk, "SELECT COUNT(*) FROM orders").await, 4);
    // SHOW GRANTS tells of them.
    let grants: Vec<String> = clerk.query("SHOW GRANTS").await.unwrap();
    let all = grants.join("\n");
    assert!(
        all.contains(&format!("GRANT SELECT ON `{db}`.`orders` TO `clerk`@`%`")),
        "{all}"
    );
    assert!(
        all.contains(&format!("GRANT USAGE ON `{db}`.`salaries` TO `clerk`@`%`")),
        "{all}"
    );
    let m = refused(&mut clerk, "SELECT * FROM salaries", 1142).await;
    assert!(m.contains(&format!("`{db}`.`salaries`")), "{m}");
    assert!(m.contains("SELECT command denied"), "{m}");
    for sql in [
        "INSERT INTO orders VALUES (9, 90)",
        "UPDATE orders SET v = 0 WHERE id = 1",
        "DELETE FROM orders",
        "UPDATE salaries SET pay = 0 WHERE id = 1",
        "INSERT INTO audit SELECT id, 'x' FROM salaries",
        "DROP TABLE orders",
        "ALTER TABLE salaries ADD COLUMN c INT",
        "PREPARE s FROM 'DELETE FROM orders WHERE id = 1'",
        "SELECT n.body FROM notes n JOIN salaries s ON s.id = n.id",
        "SHOW CREATE TABLE salaries",
        "DESCRIBE salaries",
        "SHOW COLUMNS FROM salaries",
        "SHOW INDEX FROM salaries",
        // A common table expression does not hide a table of that name.
        "WITH a AS (SELECT * FROM salaries), salaries AS (SELECT 1) SELECT * FROM a",
        // Targets by alias or by name, in the comma form and in nested joins.
        "UPDATE orders o SET o.v = 0 WHERE o.id = 1",
        "UPDATE notes, orders SET v = 0 WHERE notes.id = orders.id",
        "UPDATE (notes JOIN orders ON notes.id = orders.id) SET v = 0",
        // A subquery in SET, a view, a table copied by LIKE.
        "SET @x = (SELECT GROUP_CONCAT(pay) FROM salaries)",
        "CREATE VIEW v_orders AS SELECT * FROM orders",
        "CREATE TABLE salaries2 LIKE salaries",
        // Routine and trigger bodies, and dynamic SQL whose code is in a comment.
        "CREATE PROCEDURE p_pay() SELECT pay FROM salaries",
        "CREATE TRIGGER tr AFTER INSERT ON audit FOR EACH ROW UPDATE orders SET v = 0",
        "PREPARE s FROM '/*!DELETE*/ FROM orders'",
        // Aliases that differ only in case are two tables on the server.
        "UPDATE notes N JOIN orders n ON N.id = n.id SET n.v = 0 WHERE N.id = 1",
        // Tables named outside relations: locks, foreign keys, a new name.
        "LOCK TABLES salaries READ",
        "CREATE TABLE fk (a INT, FOREIGN KEY (a) REFERENCES salaries (id))",
        "ALTER TABLE notes RENAME TO salaries",
        "SET @x = EXISTS(TABLE salaries)",
    ] {
        refused(&mut clerk, sql, 1142).await;
    }
    // With no database selected, qualified names still find their rights, and a
    // body's unqualified names those of any schema.
    let mut nowhere = Conn::new(p.opts("clerk", "pw", None)).await.unwrap();
    for sql in [
        format!("UPDATE {db}.orders o SET o.v = 0 WHERE o.id = 1"),
        format!("DELETE o FROM {db}.orders o WHERE o.id = 1"),
        format!("UPDATE {db}.orders SET orders.v = 0 WHERE id = 1"),
        format!("CREATE PROCEDURE {db}.p_pay() SELECT pay FROM salaries"),
    ] {
        refused(&mut nowhere, &sql, 1142).await;
    }
    let m = refused(
        &mut clerk,
        &format!("DELETE FROM {db}.orders WHERE id = 2"),
        1142,
    )
    .await;
    assert!(m.contains("privileges for it: read"), "{m}");
    // Through the binary protocol too.
    let e = clerk
        .prep("UPDATE orders SET v = ? WHERE id = ?")
        .await
        .expect_err("prepare refused");
    assert_eq!(error_code(&e), Some(1142), "{e}");
    // What the rights allow runs.
    for sql in [
        "SHOW INDEX FROM notes",
        "SHOW WARNINGS",
        "DESCRIBE orders",
        "SHOW TABLES",
    ] {
        clerk
            .query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    clerk
        .query_drop("INSERT INTO audit SELECT id, 'copied' FROM notes")
        .await
        .unwrap();
    clerk
        .query_drop("UPDATE notes SET body = 'c' WHERE id = 1")
        .await
        .unwrap();
    // Nothing refused changed anything.
    assert_eq!(count(&mut owner, "SELECT SUM(v) FROM orders").await, 100);
    assert_eq!(
        count(&mut owner, "SELECT SUM(pay) FROM salaries").await,
        1000
    );
    assert_eq!(count(&mut owner, "SELECT COUNT(*) FROM audit").await, 2);

    // auditor: reads everything, and writes audit only.
    let mut auditor = login(&p, "auditor", db).await;
    auditor
        .query_drop("INSERT INTO audit VALUES (10, 'seen')")
        .await
        .unwrap();
    auditor
        .query_drop(
            "UPDATE audit a JOIN notes n ON n.id = a.id SET a.note = 'checked' WHERE n.body <> ''",
        )
        .await
        .unwrap();
    for sql in [
        "INSERT INTO orders VALUES (9, 90)",
        "UPDATE orders o JOIN audit a ON o.id = a.id SET o.v = 0",
        "DELETE FROM notes WHERE id = 1",
        "CREATE TABLE audit2 (id INT)",
        // A routine may act on any table: a right on single tables never covers it.
        "CALL no_such_procedure((SELECT COUNT(*) FROM audit))",
    ] {
        refused(&mut auditor, sql, 1142).await;
    }
    assert_eq!(
        count(
            &mut owner,
            "SELECT COUNT(*) FROM audit WHERE note = 'checked'"
        )
        .await,
        2
    );
    assert_eq!(count(&mut owner, "SELECT SUM(v) FROM orders").await, 100);
    assert_eq!(count(&mut owner, "SELECT COUNT(*) FROM notes").await, 2);

    // reader: reads notes only, also as ORMs look at a table.
    let mut reader = login(&p, "reader", db).await;
    for sql in [
        "SELECT * FROM notes",
        "DESCRIBE notes",
        "SHOW FULL COLUMNS FROM notes",
        "EXPLAIN SELECT * FROM notes WHERE id = 1",
        "SELECT VERSION(), DATABASE(), @@version_comment",
        "LOCK TABLES notes READ",
        "UNLOCK TABLES",
        // A table with rights of its own named like a keyword of statements that
        // read no table (as JDBC sends at login).
        "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    ] {
        reader
            .query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    for sql in [
        "SELECT * FROM audit",
        "DESCRIBE audit",
        "INSERT INTO notes VALUES (5, 'x')",
        // What may be a stored function reads with its definer's rights.
        "SELECT secret_fn/**/()",
        "SELECT other_db.version()",
    ] {
        refused(&mut reader, sql, 1142).await;
    }

    // Changed live on the admin port: clerk's open session may now write orders.
    let mut a = admin(&p).await;
    a.query_drop(format!(
        "UPDATE user_tables SET privileges = 'read,write' \
         WHERE user_name = 'clerk' AND table_name = '{db}.orders'"
    ))
    .await
    .unwrap();
    a.query_drop("LOAD CONFIG TO RUNTIME").await.unwrap();
    clerk
        .query_drop("UPDATE orders SET v = 11 WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(
        count(&mut owner, "SELECT v FROM orders WHERE id = 1").await,
        11
    );
    // A row for a user that does not exist is refused, not ignored.
    let e = refused_load(
        &mut a,
        &format!("INSERT INTO user_tables VALUES ('clark', '{db}.salaries', '')"),
    )
    .await;
    assert!(e.contains("no user `clark` in users"), "{e}");
}

#[tokio::test]
async fn the_firewall_denies_by_digest_and_pattern_and_guards_unbounded_writes() {
    let db = "rt_firewall";
    let users = "[[users]]\nname = \"guarded\"\npassword = \"pw\"\nrequire_where = true\n\
                 deny_patterns = [\"^drop table\"]\n";
    let (p, mut owner) = proxy(db, users).await;
    let mut g = login(&p, "guarded", db).await;

    // UPDATE and DELETE without WHERE on a sharded table: refused on every shard.
    for sql in [
        "DELETE FROM orders",
        "UPDATE orders SET v = 0",
        "DELETE FROM orders LIMIT 1",
        &format!("UPDATE {db}.orders SET v = v + 1"),
    ] {
        let m = refused(&mut g, sql, 1175).await;
        assert!(m.contains("require_where"), "{m}");
    }
    assert_eq!(count(&mut owner, "SELECT SUM(v) FROM orders").await, 100);
    // With a WHERE, or on a table that is not sharded, they run.
    g.query_drop("UPDATE orders SET v = 0 WHERE id = 4")
        .await
        .unwrap();
    g.query_drop("DELETE FROM notes").await.unwrap();
    assert_eq!(count(&mut owner, "SELECT SUM(v) FROM orders").await, 60);
    assert_eq!(count(&mut owner, "SELECT COUNT(*) FROM notes").await, 0);

    // A pattern on the digest text: any spelling of the statement.
    // A broadcast table's copies are every node's.
    refused(&mut g, "DELETE FROM regions", 1175).await;
    assert_eq!(count(&mut owner, "SELECT COUNT(*) FROM regions").await, 2);
    let m = refused(&mut g, "  DROP   TABLE  notes", 1227).await;
    assert!(m.contains("deny_patterns[0]"), "{m}");
    refused(&mut g, "drop /* x */ table `notes`", 1227).await;
    refused(&mut g, "PREPARE s FROM '/*!DROP*/ TABLE notes'", 1227).await;
    // ANALYZE runs the DELETE it explains.
    refused(&mut g, "ANALYZE DELETE FROM orders", 1175).await;
    refused(&mut g, "ANALYZE FORMAT=JSON DELETE FROM orders", 1175).await;
    // ANALYZE TABLE changes no rows: not guarded.
    g.query_drop("ANALYZE TABLE notes").await.unwrap();

    // A digest from SHOW STATS, denied live: every literal value of that shape.
    let mut a = admin(&p).await;
    a.query_drop("RESET STATS").await.unwrap();
    let v: Option<i64> = g
        .query_first("SELECT v FROM orders WHERE id = 3")
        .await
        .unwrap();
    assert_eq!(v, Some(30));
    // A statement is counted after its answer is sent: wait for it.
    let digest = wait_for_digest(&mut a, "select v from orders where id = ?").await;
    a.query_drop(format!(
        "INSERT INTO firewall_rules VALUES ('guarded', 'digest', '{digest}')"
    ))
    .await
    .unwrap();
    a.query_drop("LOAD CONFIG TO RUNTIME").await.unwrap();
    let m = refused(&mut g, "SELECT v FROM orders WHERE id = 1", 1227).await;
    assert!(m.contains(&digest), "{m}");
    let id: Option<i64> = g
        .query_first("SELECT id FROM orders WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(id, Some(1));
    // Read as the session's sql_mode says: a name in double quotes.
    g.query_drop("SET sql_mode = 'ANSI_QUOTES'").await.unwrap();
    refused(&mut g, "DROP TABLE \"notes\"", 1227).await;
    // Other users are not affected.
    let v: Option<i64> = owner
        .query_first("SELECT v FROM orders WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(v, Some(10));

    // Bad rules are refused with their key.
    for (kind, value, key) in [
        ("digest", "xyz", "deny_digests[0]"),
        ("pattern", "(unclosed", "deny_patterns[0]"),
    ] {
        let e = refused_load(
            &mut a,
            &format!("INSERT INTO firewall_rules VALUES ('{USER}', '{kind}', '{value}')"),
        )
        .await;
        assert!(e.contains(key), "{e}");
        a.query_drop(format!(
            "DELETE FROM firewall_rules WHERE user_name = '{USER}'"
        ))
        .await
        .unwrap();
    }
    let mut d = direct(&sandbox().groups[0].primary, Some(db)).await;
    let tables: Vec<String> = d.query("SHOW TABLES LIKE 'notes'").await.unwrap();
    assert_eq!(tables, ["notes"]);
}
