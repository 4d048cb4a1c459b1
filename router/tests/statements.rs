//! Hundreds of statements through the planner, each with the targets and physical SQL
//! it must produce (or the error it must get). Expectations are computed from the
//! rules' definitions here, independently of the router's code.

use router::{plan, Merge, RouteError};
mod common;

use common::runtime;
use rules::Runtime;

/// Shard `s` of a 4-shard table spread round robin over dn1, dn2.
fn node_of(s: u32) -> &'static str {
    if s.is_multiple_of(2) {
        "dn1"
    } else {
        "dn2"
    }
}

/// The physical database of the logical schema `shop` on shard `s`'s node.
fn db_of(s: u32) -> &'static str {
    if s.is_multiple_of(2) {
        "shop"
    } else {
        "shop_b"
    }
}

fn orders(s: u32) -> String {
    format!("`orders_{s:04}`")
}

fn items(s: u32) -> String {
    format!("`order_items_{s:04}`")
}

/// MySQL's MOD for the `mod` rule: sign of the dividend, shard is its absolute value.
fn user_shard(user: i64) -> u32 {
    (user.rem_euclid(4)) as u32
}

/// (node, physical SQL) of each target, and the merge.
type Planned = (Vec<(String, String)>, Merge);

struct Checker {
    rt: Runtime,
    checked: usize,
}

impl Checker {
    fn targets(&self, sql: &str) -> Result<Option<Planned>, RouteError> {
        let schema = &self.rt.schemas["shop"];
        Ok(plan(
            sql.as_bytes(),
            schema,
            &self.rt,
            router::reading::Reading::DEFAULT,
        )?
        .map(|p| {
            (
                p.targets
                    .iter()
                    .map(|t| (self.rt.nodes[t.node].name.clone(), t.sql.clone()))
                    .collect(),
                p.merge,
            )
        }))
    }

    fn expect(&mut self, sql: &str, want: &[(&str, String)]) {
        let got = self
            .targets(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .unwrap_or_else(|| panic!("{sql}: not planned"))
            .0;
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect();
        assert_eq!(got, want, "{sql}");
        self.checked += 1;
    }

    fn unplanned(&mut self, sql: &str) {
        assert_eq!(self.targets(sql).unwrap(), None, "{sql}");
        self.checked += 1;
    }

    fn refused(&mut self, sql: &str, unsupported: bool) {
        match self.targets(sql) {
            Err(RouteError::Unsupported(_)) if unsupported => {}
            Err(RouteError::Invalid(_) | RouteError::Rule(_) | RouteError::Parse(_))
                if !unsupported => {}
            other => panic!("{sql}: {other:?}"),
        }
        self.checked += 1;
    }

    /// Planned as a gather: no target runs the statement itself.
    fn gathered(&mut self, sql: &str) {
        let schema = &self.rt.schemas["shop"];
        let p = plan(
            sql.as_bytes(),
            schema,
            &self.rt,
            router::reading::Reading::DEFAULT,
        )
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or_else(|| panic!("{sql}: not planned"));
        assert!(p.gather.is_some() && p.targets.is_empty(), "{sql}: {p:?}");
        self.checked += 1;
    }

    fn merged(&mut self, sql: &str, shards: usize, describe: &str) {
        let (targets, merge) = self.targets(sql).unwrap().unwrap();
        assert_eq!(targets.len(), shards, "{sql}");
        match merge {
            Merge::Combine(spec) => assert_eq!(spec.describe(), describe, "{sql}"),
            other => panic!("{sql}: {other:?}"),
        }
        self.checked += 1;
    }
}

fn checker() -> Checker {
    Checker {
        rt: runtime(),
        checked: 0,
    }
}

#[test]
fn point_reads_for_every_key_form() {
    let mut c = checker();
    for user in -9i64..=40 {
        let s = user_shard(user);
        let forms = [
            (
                format!("SELECT * FROM orders WHERE user_id = {user}"),
                format!("SELECT * FROM {} WHERE user_id = {user}", orders(s)),
            ),
            (
                format!("select id from `orders` where `user_id`='{user}'"),
                format!("select id from {} where `user_id`='{user}'", orders(s)),
            ),
            (
                format!("SELECT o.id FROM orders AS o WHERE o.user_id = {user} AND o.id > 3"),
                format!("SELECT o.id FROM {} AS o WHERE o.user_id = {user} AND o.id > 3", orders(s)),
            ),
            (
                format!("SELECT orders.id FROM shop.orders WHERE {user} = orders.user_id LIMIT 5, 10"),
                format!("SELECT {}.id FROM `{}`.{} WHERE {user} = {}.user_id LIMIT 5, 10", orders(s), db_of(s), orders(s), orders(s)),
            ),
            (
                format!("SELECT /*+ MAX_EXECUTION_TIME(100) */ id FROM orders FORCE INDEX (ix) WHERE user_id IN ({user}) FOR UPDATE"),
                format!("SELECT /*+ MAX_EXECUTION_TIME(100) */ id FROM {} FORCE INDEX (ix) WHERE user_id IN ({user}) FOR UPDATE", orders(s)),
            ),
        ];
        for (sql, physical) in forms {
            c.expect(&sql, &[(node_of(s), physical)]);
        }
    }
    assert_eq!(c.checked, 250);
}

#[test]
fn key_sets_narrow_to_the_right_shards() {
    let mut c = checker();
    let all = |sql: &str| -> Vec<(&'static str, String)> {
        (0..4)
            .map(|s| (node_of(s), sql.replace("{t}", &orders(s))))
            .collect()
    };
    for (a, b) in [(1i64, 5i64), (2, 3), (4, 8), (7, 11), (0, 13)] {
        let mut shards: Vec<u32> = vec![user_shard(a), user_shard(b)];
        shards.sort();
        shards.dedup();
        let sql = format!("SELECT id FROM orders WHERE user_id IN ({a}, {b})");
        let want: Vec<(&str, String)> = shards
            .iter()
            .map(|s| {
                (
                    node_of(*s),
                    format!("SELECT id FROM {} WHERE user_id IN ({a}, {b})", orders(*s)),
                )
            })
            .collect();
        c.expect(&sql, &want);
        let sql = format!("SELECT id FROM orders WHERE user_id = {a} OR user_id = {b}");
        let want: Vec<(&str, String)> = shards
            .iter()
            .map(|s| {
                (
                    node_of(*s),
                    format!(
                        "SELECT id FROM {} WHERE user_id = {a} OR user_id = {b}",
                        orders(*s)
                    ),
                )
            })
            .collect();
        c.expect(&sql, &want);
        // AND with a disjoint second key: no row can match; one shard answers (empty).
        let sql = format!(
            "SELECT id FROM orders WHERE user_id = {a} AND user_id = {}",
            a + 1
        );
        let (targets, _) = c.targets(&sql).unwrap().unwrap();
        assert_eq!(targets.len(), 1, "{sql}");
        c.checked += 1;
    }
    // Conditions that do not narrow: every shard.
    for cond in [
        "note = 'x'",
        "user_id > 3",
        "user_id + 0 = 3",
        "user_id <> 3",
        "user_id NOT IN (1, 2)",
        "user_id = 3 OR note = 'x'",
        "user_id = @uid",
        "user_id IS NULL",
        "user_id LIKE '3%'",
    ] {
        let sql = format!("SELECT id FROM orders WHERE {cond}");
        c.expect(&sql, &all(&format!("SELECT id FROM {{t}} WHERE {cond}")));
    }
    // A small range of a mod rule names its shards.
    c.expect(
        "SELECT id FROM orders WHERE user_id BETWEEN 1 AND 2",
        &[
            (
                "dn2",
                format!("SELECT id FROM {} WHERE user_id BETWEEN 1 AND 2", orders(1)),
            ),
            (
                "dn1",
                format!("SELECT id FROM {} WHERE user_id BETWEEN 1 AND 2", orders(2)),
            ),
        ],
    );
    // AND narrows even when one side does not.
    for user in 0..8i64 {
        let sql = format!("SELECT id FROM orders WHERE note = 'x' AND (user_id = {user})");
        let s = user_shard(user);
        c.expect(
            &sql,
            &[(
                node_of(s),
                format!(
                    "SELECT id FROM {} WHERE note = 'x' AND (user_id = {user})",
                    orders(s)
                ),
            )],
        );
    }
    assert!(c.checked >= 33);
}

#[test]
fn range_and_date_rules() {
    let mut c = checker();
    // accounts: [0, 1000) on dn1, [1000, 2000) on dn2, one table per node keeps its name.
    let acc = |_s: u32| "`accounts`".to_string();
    for id in [0i64, 1, 500, 999, 1000, 1001, 1999] {
        let s = if id < 1000 { 0 } else { 1 };
        c.expect(
            &format!("SELECT * FROM accounts WHERE id = {id}"),
            &[(
                node_of(s),
                format!("SELECT * FROM {} WHERE id = {id}", acc(s)),
            )],
        );
        c.expect(
            &format!("UPDATE accounts SET v = 1 WHERE id = {id}"),
            &[(
                node_of(s),
                format!("UPDATE {} SET v = 1 WHERE id = {id}", acc(s)),
            )],
        );
    }
    for (cond, shards) in [
        ("id < 1000", vec![0]),
        ("id <= 999", vec![0]),
        ("id >= 1000", vec![1]),
        ("id > 999", vec![1]),
        ("id BETWEEN 10 AND 20", vec![0]),
        ("id BETWEEN 900 AND 1100", vec![0, 1]),
        ("id > 5 AND id < 10", vec![0]),
        ("id >= 1500 AND id < 1600", vec![1]),
        ("1200 < id", vec![1]),
        ("id < 0", vec![0]),
    ] {
        let sql = format!("SELECT * FROM accounts WHERE {cond}");
        let want: Vec<(&str, String)> = shards
            .iter()
            .map(|s| {
                (
                    node_of(*s),
                    format!("SELECT * FROM {} WHERE {cond}", acc(*s)),
                )
            })
            .collect();
        c.expect(&sql, &want);
    }
    // Values outside every range: an INSERT is refused, a read finds nothing (one shard).
    for id in [-1i64, 2000, 5000] {
        c.refused(&format!("INSERT INTO accounts (id) VALUES ({id})"), false);
    }
    // events by month: four shards for 2024-01 .. 2024-04, named by their month.
    for month in 0..4u32 {
        let m = month + 1;
        let sql = format!("SELECT * FROM events WHERE created_at = '2024-{m:02}-15 10:00:00'");
        c.expect(
            &sql,
            &[(
                node_of(month),
                sql.replace("events", &format!("`events_2024{m:02}`")),
            )],
        );
        let sql = format!("INSERT INTO events (id, created_at) VALUES (1, '2024-{m:02}-01')");
        c.expect(
            &sql,
            &[(
                node_of(month),
                sql.replace("events", &format!("`events_2024{m:02}`")),
            )],
        );
    }
    // Later months belong to no shard: writes are refused, reads find nothing on one.
    for month in 4..24u32 {
        let (y, m) = (2024 + month / 12, month % 12 + 1);
        c.refused(
            &format!("INSERT INTO events (id, created_at) VALUES (1, '{y}-{m:02}-15')"),
            false,
        );
        let sql = format!("SELECT * FROM events WHERE created_at = '{y}-{m:02}-15'");
        let (targets, _) = c.targets(&sql).unwrap().unwrap();
        assert_eq!(targets.len(), 1, "{sql}");
        c.checked += 1;
    }
    // A month's range stays on its shard; a quarter spans three.
    let (q, _) = c
        .targets(
            "SELECT * FROM events WHERE created_at >= '2024-02-01' AND created_at < '2024-05-01'",
        )
        .unwrap()
        .unwrap();
    assert_eq!(q.len(), 3);
    let (one, _) = c
        .targets("SELECT * FROM events WHERE created_at BETWEEN '2024-03-02' AND '2024-03-30'")
        .unwrap()
        .unwrap();
    assert_eq!(one.len(), 1);
    c.checked += 2;
    assert!(c.checked >= 60);
}

#[test]
fn writes_split_and_route() {
    let mut c = checker();
    for user in 0..16i64 {
        let s = user_shard(user);
        c.expect(
            &format!("INSERT INTO orders (id, user_id, note) VALUES ({user}, {user}, 'a')"),
            &[(
                node_of(s),
                format!(
                    "INSERT INTO {} (id, user_id, note) VALUES ({user}, {user}, 'a')",
                    orders(s)
                ),
            )],
        );
        c.expect(
            &format!("REPLACE INTO orders (user_id, id) VALUES ({user}, 1)"),
            &[(
                node_of(s),
                format!(
                    "REPLACE INTO {} (user_id, id) VALUES ({user}, 1)",
                    orders(s)
                ),
            )],
        );
        c.expect(
            &format!("INSERT INTO orders SET user_id = {user}, id = 2"),
            &[(
                node_of(s),
                format!("INSERT INTO {} SET user_id = {user}, id = 2", orders(s)),
            )],
        );
        c.expect(
            &format!("INSERT INTO orders (id, user_id) VALUES (1, {user}) ON DUPLICATE KEY UPDATE note = VALUES(note)"),
            &[(node_of(s), format!("INSERT INTO {} (id, user_id) VALUES (1, {user}) ON DUPLICATE KEY UPDATE note = VALUES(note)", orders(s)))],
        );
        c.expect(
            &format!("UPDATE orders SET note = 'x' WHERE user_id = {user} AND id = 1"),
            &[(
                node_of(s),
                format!(
                    "UPDATE {} SET note = 'x' WHERE user_id = {user} AND id = 1",
                    orders(s)
                ),
            )],
        );
        c.expect(
            &format!("DELETE FROM orders WHERE user_id = {user} LIMIT 1"),
            &[(
                node_of(s),
                format!("DELETE FROM {} WHERE user_id = {user} LIMIT 1", orders(s)),
            )],
        );
        c.expect(
            &format!("UPDATE orders o SET o.note = @v WHERE o.user_id = {user}"),
            &[(
                node_of(s),
                format!(
                    "UPDATE {} o SET o.note = @v WHERE o.user_id = {user}",
                    orders(s)
                ),
            )],
        );
    }
    // MySQL 8's row alias, and locking reads.
    c.expect(
        "INSERT INTO orders (id, user_id, note) VALUES (1, 5, 'n') AS new ON DUPLICATE KEY UPDATE note = new.note",
        &[("dn2", format!("INSERT INTO {} (id, user_id, note) VALUES (1, 5, 'n') AS new ON DUPLICATE KEY UPDATE note = new.note", orders(1)))],
    );
    c.expect(
        "SELECT * FROM orders WHERE user_id = 6 LOCK IN SHARE MODE",
        &[(
            "dn1",
            format!(
                "SELECT * FROM {} WHERE user_id = 6 LOCK IN SHARE MODE",
                orders(2)
            ),
        )],
    );
    c.expect(
        "SELECT * FROM orders WHERE user_id = 6 FOR SHARE SKIP LOCKED",
        &[(
            "dn1",
            format!(
                "SELECT * FROM {} WHERE user_id = 6 FOR SHARE SKIP LOCKED",
                orders(2)
            ),
        )],
    );
    // Multi-row INSERT: one statement per shard, with only its rows, in order.
    c.expect(
        "INSERT INTO orders (id, user_id) VALUES (1, 1), (2, 2), (3, 5), (4, 6), (5, 3)",
        &[
            (
                "dn2",
                format!(
                    "INSERT INTO {} (id, user_id) VALUES (1, 1), (3, 5)",
                    orders(1)
                ),
            ),
            (
                "dn1",
                format!(
                    "INSERT INTO {} (id, user_id) VALUES (2, 2), (4, 6)",
                    orders(2)
                ),
            ),
            (
                "dn2",
                format!("INSERT INTO {} (id, user_id) VALUES (5, 3)", orders(3)),
            ),
        ],
    );
    // Scattered writes: every shard.
    for sql in [
        "UPDATE orders SET note = 'x' WHERE note = 'y'",
        "DELETE FROM orders WHERE id = 7",
        "UPDATE orders SET note = NULL",
    ] {
        let want: Vec<(&str, String)> = (0..4)
            .map(|s| (node_of(s), sql.replace("orders", &orders(s))))
            .collect();
        c.expect(sql, &want);
    }
    // INSERT ... SELECT within a binding group, shard column copied: shard by shard.
    c.expect(
        "INSERT INTO order_items (user_id, id) SELECT user_id, id FROM orders WHERE user_id = 6",
        &[(
            "dn1",
            format!(
                "INSERT INTO {} (user_id, id) SELECT user_id, id FROM {} WHERE user_id = 6",
                items(2),
                orders(2)
            ),
        )],
    );
    let (t, m) = c
        .targets("INSERT INTO order_items (user_id, id) SELECT o.user_id, o.id FROM orders o WHERE o.note = 'x'")
        .unwrap()
        .unwrap();
    assert_eq!((t.len(), m), (4, Merge::SumAffected));
    c.checked += 1;
    assert!(c.checked >= 117);
}

#[test]
fn ddl_broadcast_single_and_joins() {
    let mut c = checker();
    for sql in [
        "CREATE TABLE orders (id INT, user_id INT)",
        "ALTER TABLE orders ADD COLUMN x INT",
        "DROP TABLE orders",
        "TRUNCATE TABLE orders",
        "CREATE INDEX ix ON orders (note)",
    ] {
        let want: Vec<(&str, String)> = (0..4)
            .map(|s| (node_of(s), sql.replace("orders", &orders(s))))
            .collect();
        c.expect(sql, &want);
    }
    // Broadcast: writes everywhere (each node's database), reads on the schema's node.
    c.expect(
        "INSERT INTO countries VALUES ('DE', 'Germany')",
        &[
            (
                "dn1",
                "INSERT INTO countries VALUES ('DE', 'Germany')".into(),
            ),
            (
                "dn2",
                "INSERT INTO countries VALUES ('DE', 'Germany')".into(),
            ),
        ],
    );
    c.expect(
        "SELECT * FROM countries",
        &[("dn1", "SELECT * FROM countries".into())],
    );
    c.expect(
        "SELECT * FROM audit WHERE id = 1",
        &[("dn2", "SELECT * FROM audit WHERE id = 1".into())],
    );
    c.expect(
        "SELECT * FROM shop.audit",
        &[("dn2", "SELECT * FROM `shop_b`.audit".into())],
    );
    // Binding and broadcast joins are pushed down per shard.
    for user in 0..8i64 {
        let s = user_shard(user);
        c.expect(
            &format!("SELECT * FROM orders o JOIN order_items i ON i.user_id = o.user_id JOIN countries c ON c.code = o.cc WHERE o.user_id = {user}"),
            &[(node_of(s), format!("SELECT * FROM {} o JOIN {} i ON i.user_id = o.user_id JOIN countries c ON c.code = o.cc WHERE o.user_id = {user}", orders(s), items(s)))],
        );
    }
    // UNION: parts on one shard run together; UNION ALL over shards is concatenated.
    c.expect(
        "SELECT id FROM orders WHERE user_id = 1 UNION SELECT id FROM order_items WHERE user_id = 5",
        &[("dn2", format!("SELECT id FROM {} WHERE user_id = 1 UNION SELECT id FROM {} WHERE user_id = 5", orders(1), items(1)))],
    );
    c.expect(
        "SELECT id FROM orders WHERE user_id = 1 UNION ALL SELECT id FROM orders WHERE user_id = 2",
        &[
            (
                "dn2",
                format!("SELECT id FROM {} WHERE user_id = 1", orders(1)),
            ),
            (
                "dn1",
                format!("SELECT id FROM {} WHERE user_id = 2", orders(2)),
            ),
        ],
    );
    // Parts of different shapes: the server unifies their column types (an INT
    // next to a CHAR is a string), so the whole is gathered, not concatenated.
    c.gathered("(SELECT id FROM orders WHERE user_id = 3) UNION ALL (SELECT code FROM countries)");
    // Not configured here: passed through unplanned.
    for sql in [
        "SELECT 1",
        "SELECT * FROM customers",
        "SELECT @@version",
        "SET @x = (SELECT 1)",
        "SELECT * FROM other.orders",
        "SHOW TABLES",
        // sqlparser cannot parse these, and need not: they name no configured table.
        "HANDLER customers OPEN",
        "SELECT * FROM customers PROCEDURE ANALYSE()",
    ] {
        c.unplanned(sql);
    }
    assert_eq!(c.checked, 28);
}

#[test]
fn merges_are_planned() {
    let mut c = checker();
    for (sql, describe) in [
        ("SELECT * FROM orders ORDER BY id", "merge sorted on 1 key(s); drop 2 helper column(s)"),
        ("SELECT id FROM orders ORDER BY id DESC LIMIT 10", "merge sorted on 1 key(s); limit 10; drop 1 helper column(s)"),
        ("SELECT id FROM orders LIMIT 5, 5", "concatenate rows; skip 5; limit 5"),
        ("SELECT COUNT(*) FROM orders", "concatenate rows; combine into one row; aggregate COUNT"),
        ("SELECT SUM(amount), AVG(amount) FROM orders", "concatenate rows; combine into one row; aggregate SUM, AVG; drop 2 helper column(s)"),
        ("SELECT MIN(note), MAX(id) FROM orders", "concatenate rows; combine into one row; aggregate MIN, MAX; drop 2 helper column(s)"),
        ("SELECT note, COUNT(*) FROM orders GROUP BY note", "merge sorted on 1 key(s); combine groups of 1 key(s); aggregate COUNT; drop 1 helper column(s)"),
        ("SELECT note, COUNT(*) c FROM orders GROUP BY note HAVING c > 2", "merge sorted on 1 key(s); combine groups of 1 key(s); aggregate COUNT; filter HAVING; drop 1 helper column(s)"),
        ("SELECT note, COUNT(*) c FROM orders GROUP BY note ORDER BY c DESC LIMIT 3", "merge sorted on 1 key(s); combine groups of 1 key(s); aggregate COUNT; sort on 1 key(s); limit 3; drop 1 helper column(s)"),
        ("SELECT DISTINCT note FROM orders", "merge sorted on 1 key(s); combine groups of 1 key(s); drop 1 helper column(s)"),
        ("SELECT COUNT(DISTINCT user_id) FROM orders", "concatenate rows; combine into one row; aggregate COUNT"),
        ("SELECT COUNT(DISTINCT note) FROM orders", "merge sorted on 1 key(s); combine into one row; aggregate COUNT(DISTINCT); drop 2 helper column(s)"),
        ("SELECT id FROM orders WHERE user_id IN (1, 2) ORDER BY id", "merge sorted on 1 key(s); drop 1 helper column(s)"),
    ] {
        let shards = if sql.contains("IN (1, 2)") { 2 } else { 4 };
        c.merged(sql, shards, describe);
    }
    // One shard: no merge at all, the client's statement as is.
    c.expect(
        "SELECT note, COUNT(*) FROM orders WHERE user_id = 3 GROUP BY note ORDER BY 2 DESC LIMIT 1",
        &[("dn2", format!("SELECT note, COUNT(*) FROM {} WHERE user_id = 3 GROUP BY note ORDER BY 2 DESC LIMIT 1", orders(3)))],
    );
    assert!(c.checked >= 13);
}

#[test]
fn what_cannot_be_answered_right_is_refused() {
    let mut c = checker();
    for sql in [
        "SELECT * FROM orders WHERE user_id = 1; SELECT 2",
        "INSERT INTO orders (id, user_id) SELECT id, 7 FROM orders WHERE user_id = 1",
        "INSERT INTO order_items (user_id, id) SELECT user_id, id FROM orders LIMIT 10",
        "INSERT INTO order_items (user_id, n) SELECT user_id, COUNT(*) FROM orders GROUP BY user_id",
        "DELETE FROM orders WHERE note = 'x' LIMIT 10",
        "UPDATE orders SET note = 'a' ORDER BY id LIMIT 1",
    ] {
        c.refused(sql, true);
    }
    // Reads no direct strategy answers are gathered instead.
    for sql in [
        "SELECT * FROM orders o JOIN events e ON e.id = o.id WHERE o.user_id = 1",
        "SELECT * FROM orders WHERE user_id IN (SELECT user_id FROM order_items)",
        "SELECT * FROM audit JOIN countries ON 1 = 1 JOIN customers ON 1 = 1",
        "SELECT note, GROUP_CONCAT(id) FROM orders GROUP BY note",
        "SELECT COUNT(DISTINCT note), COUNT(DISTINCT id) FROM orders",
        "SELECT SUM(amount) + 1 FROM orders",
        "SELECT *, COUNT(*) FROM orders",
        "SELECT id, ROW_NUMBER() OVER (ORDER BY id) FROM orders",
        "SELECT note FROM orders GROUP BY note WITH ROLLUP",
        "SELECT DISTINCT note FROM orders ORDER BY id",
        "SELECT * FROM orders ORDER BY 2",
        "SELECT id FROM orders WHERE user_id = 1 UNION SELECT id FROM orders WHERE user_id = 2",
        "SELECT id FROM orders WHERE user_id = 1 UNION ALL SELECT id FROM orders WHERE user_id = 2 ORDER BY id",
        "SELECT id FROM orders INTERSECT SELECT id FROM order_items",
        "SELECT note FROM orders GROUP BY note HAVING note LIKE 'a%'",
        "SELECT AVG(DISTINCT amount) FROM orders",
    ] {
        c.gathered(sql);
    }
    for sql in [
        "UPDATE orders SET user_id = 3 WHERE user_id = 2",
        "INSERT INTO order_items (id, amount) VALUES (1, 2)",
        "INSERT INTO orders (id, user_id) VALUES (1, 2) ON DUPLICATE KEY UPDATE user_id = 4",
        "INSERT INTO accounts (id) VALUES (5000)",
        "SELEC * FROM orders",
        "SELECT * FROM orders WHERE",
    ] {
        c.refused(sql, false);
    }
    c.refused("LOAD DATA INFILE 'x' INTO TABLE orders", true);
    assert_eq!(c.checked, 29);
}

/// The plan cache lifts literals out and reuses one template per statement shape:
/// whatever it answers must be exactly what planning the statement in full gives.
#[test]
fn templated_plans_equal_full_plans() {
    let rt = std::sync::Arc::new(runtime());
    let schema = &rt.schemas["shop"];
    let cache = router::PlanCache::new(10_000);
    let mut sqls: Vec<String> = Vec::new();
    for user in -3i64..=20 {
        sqls.push(format!("SELECT * FROM orders WHERE user_id = {user}"));
        sqls.push(format!(
            "select id from `orders` where `user_id`='{user}' and note = 'it''s'"
        ));
        sqls.push(format!(
            "SELECT o.id, 1 FROM orders AS o WHERE o.user_id = {user} AND o.id > 3 LIMIT 5, 10"
        ));
        sqls.push(format!("SELECT /*+ MAX_EXECUTION_TIME(100) */ id FROM orders FORCE INDEX (ix) WHERE user_id IN ({user}, {}) FOR UPDATE", user + 4));
        sqls.push(format!(
            "INSERT INTO orders (id, user_id, note) VALUES ({user}, {user}, 'a\\'b')"
        ));
        sqls.push(format!(
            "UPDATE orders SET note = 'x' WHERE user_id = {user}"
        ));
        sqls.push(format!(
            "DELETE FROM orders WHERE user_id = {user} AND note = ''"
        ));
        sqls.push(format!(
            "SELECT * FROM orders WHERE user_id BETWEEN {user} AND {}",
            user + 1
        ));
        sqls.push(format!("SELECT * FROM accounts WHERE id = {}", user * 90));
        sqls.push(format!(
            "SELECT * FROM events WHERE created_at = '2024-0{}-15'",
            user.rem_euclid(4) + 1
        ));
        sqls.push(format!(
            "SELECT COUNT(*) FROM orders WHERE user_id IN ({user}, {})",
            user + 1
        ));
        sqls.push(format!("SELECT * FROM countries WHERE code = 'C{user}'"));
    }
    for sql in &sqls {
        let full = plan(
            sql.as_bytes(),
            schema,
            &rt,
            router::reading::Reading::DEFAULT,
        )
        .ok()
        .flatten();
        let cached = cache
            .plan(
                sql.as_bytes(),
                schema,
                &rt,
                router::reading::Reading::DEFAULT,
            )
            .ok();
        let cached = cached.as_ref().and_then(|c| c.as_ref().as_ref());
        assert_eq!(cached, full.as_ref(), "{sql}");
    }
    // Most of them came from templates, not from planning each text.
    assert!(
        cache.len() < sqls.len() / 2,
        "{} of {}",
        cache.len(),
        sqls.len()
    );
}
