//! Table-driven routing tests: SQL in, targets (node, physical SQL) out.

use router::{plan, Merge, RouteError};
mod common;

use common::runtime;

/// (node name, physical SQL) of each target, the merge, and whether it writes.
type Routed = (Vec<(String, String)>, Merge, bool);

fn route(sql: &str) -> Result<Option<Routed>, RouteError> {
    let rt = runtime();
    let schema = &rt.schemas["shop"];
    Ok(plan(
        sql.as_bytes(),
        schema,
        &rt,
        router::reading::Reading::DEFAULT,
    )?
    .map(|p| {
        (
            p.targets
                .iter()
                .map(|t| (rt.nodes[t.node].name.clone(), t.sql.clone()))
                .collect(),
            p.merge,
            p.write,
        )
    }))
}

fn one(sql: &str) -> (String, String) {
    let (targets, merge, _) = route(sql)
        .unwrap()
        .unwrap_or_else(|| panic!("not planned: {sql}"));
    assert_eq!(targets.len(), 1, "{sql}: {targets:?}");
    assert_eq!(merge, Merge::Single);
    targets.into_iter().next().unwrap()
}

fn t(node: &str, sql: &str) -> (String, String) {
    (node.to_string(), sql.to_string())
}

#[test]
fn point_queries_go_to_one_shard() {
    // mod 4 over [dn1, dn2] round robin: shard 0 dn1, 1 dn2, 2 dn1, 3 dn2.
    let cases = [
        (
            "SELECT * FROM orders WHERE user_id = 5",
            t("dn2", "SELECT * FROM `orders_0001` WHERE user_id = 5"),
        ),
        (
            "select * from orders where user_id=6",
            t("dn1", "select * from `orders_0002` where user_id=6"),
        ),
        (
            "SELECT * FROM `orders` WHERE `user_id` = '7'",
            t("dn2", "SELECT * FROM `orders_0003` WHERE `user_id` = '7'"),
        ),
        (
            "SELECT o.id FROM orders o WHERE o.user_id = 4",
            t(
                "dn1",
                "SELECT o.id FROM `orders_0000` o WHERE o.user_id = 4",
            ),
        ),
        (
            "SELECT orders.id FROM orders WHERE orders.user_id = 4",
            t(
                "dn1",
                "SELECT `orders_0000`.id FROM `orders_0000` WHERE `orders_0000`.user_id = 4",
            ),
        ),
        (
            "SELECT * FROM shop.orders WHERE user_id = 1",
            t(
                "dn2",
                "SELECT * FROM `shop_b`.`orders_0001` WHERE user_id = 1",
            ),
        ),
        (
            "SELECT * FROM orders WHERE 5 = user_id",
            t("dn2", "SELECT * FROM `orders_0001` WHERE 5 = user_id"),
        ),
        (
            "SELECT * FROM orders WHERE user_id = -3",
            t("dn2", "SELECT * FROM `orders_0001` WHERE user_id = -3"),
        ),
        (
            "SELECT * FROM orders WHERE user_id = 5 AND status = 'paid'",
            t(
                "dn2",
                "SELECT * FROM `orders_0001` WHERE user_id = 5 AND status = 'paid'",
            ),
        ),
        (
            "SELECT * FROM orders WHERE (user_id = 5 OR user_id = 9) AND id > 3",
            t(
                "dn2",
                "SELECT * FROM `orders_0001` WHERE (user_id = 5 OR user_id = 9) AND id > 3",
            ),
        ),
        (
            "SELECT * FROM orders WHERE user_id IN (1, 5, 9)",
            t(
                "dn2",
                "SELECT * FROM `orders_0001` WHERE user_id IN (1, 5, 9)",
            ),
        ),
        (
            "/* keep me */ SELECT * FROM orders WHERE user_id = 2 FOR UPDATE",
            t(
                "dn1",
                "/* keep me */ SELECT * FROM `orders_0002` WHERE user_id = 2 FOR UPDATE",
            ),
        ),
        (
            "SELECT * FROM orders WHERE user_id BETWEEN 8 AND 8",
            t(
                "dn1",
                "SELECT * FROM `orders_0000` WHERE user_id BETWEEN 8 AND 8",
            ),
        ),
        (
            "SELECT * FROM orders\nWHERE\n  user_id = 3",
            t("dn2", "SELECT * FROM `orders_0003`\nWHERE\n  user_id = 3"),
        ),
        (
            "SELECT * FROM events WHERE created_at = '2024-03-05 10:00:00'",
            t(
                "dn1",
                "SELECT * FROM `events_202403` WHERE created_at = '2024-03-05 10:00:00'",
            ),
        ),
        (
            "SELECT * FROM accounts WHERE id = 1500",
            t("dn2", "SELECT * FROM `accounts` WHERE id = 1500"),
        ),
    ];
    for (sql, expected) in cases {
        assert_eq!(one(sql), expected, "{sql}");
    }
}

#[test]
fn key_sets_union_and_scatter() {
    let (targets, merge, write) = route("SELECT * FROM orders WHERE user_id IN (1, 2)")
        .unwrap()
        .unwrap();
    assert_eq!(
        targets,
        [
            t("dn2", "SELECT * FROM `orders_0001` WHERE user_id IN (1, 2)"),
            t("dn1", "SELECT * FROM `orders_0002` WHERE user_id IN (1, 2)"),
        ]
    );
    assert_eq!((merge, write), (Merge::Concat, false));

    let (targets, _, _) = route("SELECT * FROM orders WHERE status = 'new'")
        .unwrap()
        .unwrap();
    assert_eq!(targets.len(), 4, "no key: every shard");
    let (targets, _, _) = route("SELECT * FROM orders WHERE user_id = 1 OR status = 'x'")
        .unwrap()
        .unwrap();
    assert_eq!(
        targets.len(),
        4,
        "OR with a non-key condition cannot narrow"
    );
    let (targets, _, _) =
        route("SELECT * FROM events WHERE created_at BETWEEN '2024-01-20' AND '2024-02-10'")
            .unwrap()
            .unwrap();
    let tables: Vec<&str> = targets
        .iter()
        .map(|(_, s)| s.split('`').nth(1).unwrap())
        .collect();
    assert_eq!(tables, ["events_202401", "events_202402"]);
    let (targets, _, _) = route("SELECT * FROM accounts WHERE id >= 1000")
        .unwrap()
        .unwrap();
    assert_eq!(
        targets,
        vec![t("dn2", "SELECT * FROM `accounts` WHERE id >= 1000")]
    );
}

#[test]
fn writes_are_routed_and_split() {
    let (targets, merge, write) = route(
        "INSERT INTO orders (id, user_id, amount) VALUES (1, 5, 9.5), (2, 6, 1), (3, 9, 2) ON DUPLICATE KEY UPDATE amount = VALUES(amount)",
    )
    .unwrap()
    .unwrap();
    assert_eq!((merge, write), (Merge::SumAffected, true));
    assert_eq!(
        targets,
        [
            t("dn2", "INSERT INTO `orders_0001` (id, user_id, amount) VALUES (1, 5, 9.5), (3, 9, 2) ON DUPLICATE KEY UPDATE amount = VALUES(amount)"),
            t("dn1", "INSERT INTO `orders_0002` (id, user_id, amount) VALUES (2, 6, 1) ON DUPLICATE KEY UPDATE amount = VALUES(amount)"),
        ]
    );
    assert_eq!(
        one("INSERT INTO orders SET id = 1, user_id = 3, amount = 2"),
        t(
            "dn2",
            "INSERT INTO `orders_0003` SET id = 1, user_id = 3, amount = 2"
        )
    );
    assert_eq!(
        one("INSERT INTO shop.orders (user_id, id) VALUES ('12', 1)"),
        t(
            "dn1",
            "INSERT INTO `shop`.`orders_0000` (user_id, id) VALUES ('12', 1)"
        )
    );
    assert_eq!(
        one("UPDATE orders SET amount = amount + 1 WHERE user_id = 2 AND id = 7"),
        t(
            "dn1",
            "UPDATE `orders_0002` SET amount = amount + 1 WHERE user_id = 2 AND id = 7"
        )
    );
    assert_eq!(
        one("DELETE FROM orders WHERE user_id = 1"),
        t("dn2", "DELETE FROM `orders_0001` WHERE user_id = 1")
    );
    let (targets, merge, _) = route("DELETE FROM orders WHERE status = 'old'")
        .unwrap()
        .unwrap();
    assert_eq!((targets.len(), merge), (4, Merge::SumAffected));
}

#[test]
fn ddl_fans_out_to_every_physical_table() {
    let (targets, _, write) = route("ALTER TABLE orders ADD COLUMN note TEXT")
        .unwrap()
        .unwrap();
    assert!(write);
    assert_eq!(
        targets,
        [
            t("dn1", "ALTER TABLE `orders_0000` ADD COLUMN note TEXT"),
            t("dn2", "ALTER TABLE `orders_0001` ADD COLUMN note TEXT"),
            t("dn1", "ALTER TABLE `orders_0002` ADD COLUMN note TEXT"),
            t("dn2", "ALTER TABLE `orders_0003` ADD COLUMN note TEXT"),
        ]
    );
    let (targets, _, _) = route("CREATE TABLE events (id INT, created_at DATETIME)")
        .unwrap()
        .unwrap();
    let names: Vec<&str> = targets
        .iter()
        .map(|(_, s)| s.split('`').nth(1).unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "events_202401",
            "events_202402",
            "events_202403",
            "events_202404"
        ]
    );
    let (targets, _, _) = route("CREATE INDEX k_1 ON orders(amount)")
        .unwrap()
        .unwrap();
    assert_eq!(
        targets[3],
        t("dn2", "CREATE INDEX k_1 ON `orders_0003`(amount)")
    );
    let (targets, _, _) = route("DROP TABLE IF EXISTS orders").unwrap().unwrap();
    assert_eq!(targets[0], t("dn1", "DROP TABLE IF EXISTS `orders_0000`"));
    let (targets, _, _) = route("TRUNCATE TABLE orders").unwrap().unwrap();
    assert_eq!(targets.len(), 4);
    let (targets, _, _) = route("CREATE TABLE countries (code CHAR(2) PRIMARY KEY)")
        .unwrap()
        .unwrap();
    assert_eq!(targets.len(), 2, "broadcast DDL on every node");
}

#[test]
fn broadcast_single_and_binding_tables() {
    let (targets, merge, _) = route("SELECT * FROM countries").unwrap().unwrap();
    assert_eq!(
        (targets, merge),
        (vec![t("dn1", "SELECT * FROM countries")], Merge::Any)
    );
    let (targets, merge, write) = route("INSERT INTO countries VALUES ('FR', 'France')")
        .unwrap()
        .unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!((merge, write), (Merge::Copies, true));
    assert_eq!(
        one("SELECT * FROM audit WHERE id = 1"),
        t("dn2", "SELECT * FROM audit WHERE id = 1")
    );
    assert_eq!(
        one("SELECT * FROM shop.audit"),
        t("dn2", "SELECT * FROM `shop_b`.audit")
    );
    // A sharded table joined with a broadcast table or its binding partner stays in one shard.
    assert_eq!(
        one("SELECT o.id, c.name FROM orders o JOIN countries c ON c.code = o.country WHERE o.user_id = 6"),
        t("dn1", "SELECT o.id, c.name FROM `orders_0002` o JOIN countries c ON c.code = o.country WHERE o.user_id = 6")
    );
    assert_eq!(
        one("SELECT * FROM orders o JOIN order_items i ON i.order_id = o.id AND i.user_id = o.user_id WHERE o.user_id = 3"),
        t("dn2", "SELECT * FROM `orders_0003` o JOIN `order_items_0003` i ON i.order_id = o.id AND i.user_id = o.user_id WHERE o.user_id = 3")
    );
    // Statements naming no configured table are not planned: they run as they are.
    assert_eq!(route("SELECT * FROM customers WHERE id = 1").unwrap(), None);
    assert_eq!(route("SELECT 1").unwrap(), None);
}

/// The gather a read gets when no direct strategy answers it.
fn gathered(sql: &str) -> router::plan::Gather {
    let rt = runtime();
    let p = plan(
        sql.as_bytes(),
        &rt.schemas["shop"],
        &rt,
        router::reading::Reading::DEFAULT,
    )
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
    .unwrap_or_else(|| panic!("not planned: {sql}"));
    assert!(p.targets.is_empty(), "{sql}: {:?}", p.targets);
    *p.gather.unwrap_or_else(|| panic!("not gathered: {sql}"))
}

/// Reads no direct strategy answers exactly are gathered and evaluated on one node;
/// the reason the direct strategies gave is kept for EXPLAIN SHARDING.
#[test]
fn reads_the_direct_strategies_cannot_answer_are_gathered() {
    for (sql, why) in [
        (
            "SELECT status, GROUP_CONCAT(id) FROM orders GROUP BY status",
            "GROUP_CONCAT",
        ),
        (
            "SELECT COUNT(DISTINCT status), COUNT(DISTINCT id) FROM orders",
            "DISTINCT",
        ),
        ("SELECT SUM(amount) + 1 FROM orders", ""),
        ("SELECT *, COUNT(*) FROM orders", ""),
        (
            "SELECT id, ROW_NUMBER() OVER (ORDER BY id) FROM orders",
            "window",
        ),
        (
            "SELECT status FROM orders GROUP BY status WITH ROLLUP",
            "ROLLUP",
        ),
        ("SELECT DISTINCT status FROM orders ORDER BY id", "DISTINCT"),
        ("SELECT * FROM orders ORDER BY 2", ""),
        (
            "SELECT * FROM orders o JOIN events e ON e.id = o.id WHERE o.user_id = 1",
            "binding group",
        ),
        (
            "SELECT * FROM orders WHERE user_id IN (SELECT user_id FROM orders WHERE id = 1)",
            "subqueries",
        ),
        (
            "SELECT * FROM audit JOIN countries ON 1 = 1 JOIN customers ON 1 = 1",
            "different nodes",
        ),
        (
            "SELECT * FROM orders o JOIN audit a ON a.id = o.id",
            "lives only on dn2",
        ),
    ] {
        let g = gathered(sql);
        assert!(g.reason.contains(why), "{sql}: {}", g.reason);
        // Evaluated on the schema's node, in its database, with the client's text.
        assert_eq!(
            (g.node, g.database.as_str(), g.sql.as_str()),
            (0, "shop", sql)
        );
    }
}

#[test]
fn what_cannot_be_answered_right_is_refused() {
    let unsupported = [
        "SELECT * FROM orders WHERE user_id = 1; SELECT 2",
        "INSERT INTO orders (id, user_id) SELECT id, 3 FROM orders WHERE user_id = 1",
        "DELETE FROM orders WHERE status = 'x' LIMIT 10",
        "SELECT * FROM orders o JOIN events e ON e.id = o.id FOR UPDATE",
        "SELECT COUNT(*) INTO @n FROM orders o JOIN events e ON e.id = o.id",
        "SELECT * FROM orders o JOIN events e ON e.id = o.id WHERE o.id = @last",
        "SELECT * FROM orders o JOIN events e ON e.id = o.id WHERE o.id = LAST_INSERT_ID()",
    ];
    for sql in unsupported {
        match route(sql) {
            Err(RouteError::Unsupported(_)) => {}
            other => panic!("{sql}: {other:?}"),
        }
    }
    let invalid = [
        (
            "UPDATE orders SET user_id = 3 WHERE user_id = 2",
            "shard column `user_id`",
        ),
        (
            "INSERT INTO order_items (id, amount) VALUES (1, 2)",
            "must give its shard column `user_id`",
        ),
        (
            "INSERT INTO orders (id, user_id) VALUES (1, 2) ON DUPLICATE KEY UPDATE user_id = 4",
            "ON DUPLICATE KEY UPDATE",
        ),
    ];
    for (sql, text) in invalid {
        match route(sql) {
            Err(RouteError::Invalid(m)) => assert!(m.contains(text), "{sql}: {m}"),
            other => panic!("{sql}: {other:?}"),
        }
    }
    // Without a column list the executor reads the table's columns and puts the
    // list right after the table's name.
    for (sql, at) in [
        ("INSERT INTO orders VALUES (1, 2, 3)", 18),
        ("INSERT `order_items` VALUE (1, 2)", 20),
        (
            "INSERT INTO shop.orders SELECT * FROM orders WHERE user_id = 1",
            23,
        ),
    ] {
        match route(sql) {
            Err(RouteError::NeedsColumns { table, at: got }) => {
                assert_eq!(got, at, "{sql}");
                assert!(table == "orders" || table == "order_items", "{sql}");
            }
            other => panic!("{sql}: {other:?}"),
        }
    }
    assert!(matches!(
        route("INSERT INTO accounts (id) VALUES (5000)"),
        Err(RouteError::Rule(_))
    ));
    assert!(matches!(
        route("SELEC * FROM orders"),
        Err(RouteError::Parse(_))
    ));
    let rt = runtime();
    assert!(matches!(
        plan(
            b"SELECT * FROM orders WHERE c = '\xff\xfe'",
            &rt.schemas["shop"],
            &rt,
            router::reading::Reading::DEFAULT,
        ),
        Err(RouteError::NotUtf8(_))
    ));
    assert!(matches!(
        plan(
            b"SELECT * FROM orders WHERE c = '\xff'\xff",
            &rt.schemas["shop"],
            &rt,
            router::reading::Reading::DEFAULT,
        ),
        Err(RouteError::NotUtf8(_))
    ));
}

#[test]
fn inserts_without_the_global_id_column_ask_for_it() {
    let rt = runtime();
    let schema = &rt.schemas["shop"];
    let sql = "INSERT /* keep */ INTO orders (user_id, `amount`) VALUES (1, 2), (6, (3))";
    let p = plan(
        sql.as_bytes(),
        schema,
        &rt,
        router::reading::Reading::DEFAULT,
    )
    .unwrap()
    .unwrap();
    assert!(p.targets.is_empty(), "planned again once the ids are in");
    let fill = p.fill_global_id.unwrap();
    assert_eq!((fill.column.as_str(), fill.rows()), ("id", 2));
    let filled = fill.apply(sql, &[101, 102]).unwrap();
    assert_eq!(
        filled,
        "INSERT /* keep */ INTO orders (user_id, `amount`, `id`) VALUES (1, 2, 101), (6, (3), 102)"
    );
    let (targets, merge, _) = route(&filled).unwrap().unwrap();
    assert_eq!(merge, Merge::SumAffected);
    assert_eq!(
        targets,
        [
            t("dn2", "INSERT /* keep */ INTO `orders_0001` (user_id, `amount`, `id`) VALUES (1, 2, 101)"),
            t("dn1", "INSERT /* keep */ INTO `orders_0002` (user_id, `amount`, `id`) VALUES (6, (3), 102)"),
        ]
    );
    assert!(matches!(
        plan(
            b"INSERT INTO orders SET user_id = 1",
            schema,
            &rt,
            router::reading::Reading::DEFAULT
        ),
        Err(RouteError::Unsupported(_))
    ));
    let p = plan(
        b"INSERT INTO orders (id, user_id) VALUES (7, 1)",
        schema,
        &rt,
        router::reading::Reading::DEFAULT,
    )
    .unwrap()
    .unwrap();
    assert_eq!(p.fill_global_id, None);
}

type Routed1 = Vec<(String, String)>;

#[test]
fn prepared_statements_route_per_execution() {
    use router::plan::prepare;
    use rules::Value;
    let rt = runtime();
    let schema = &rt.schemas["shop"];
    let nodes = |p: &router::plan::Prepared, params: &[Value]| -> Vec<(String, String)> {
        p.targets(params)
            .unwrap()
            .iter()
            .map(|t| (rt.nodes[t.node].name.clone(), t.sql.clone()))
            .collect()
    };
    // (statement, parameters, expected targets)
    let cases: Vec<(&str, Vec<Value>, Routed1)> = vec![
        (
            "SELECT * FROM orders WHERE user_id = ?",
            vec![Value::Int(5)],
            vec![t("dn2", "SELECT * FROM `orders_0001` WHERE user_id = ?")],
        ),
        (
            "SELECT id FROM orders WHERE note = ? AND user_id = ? ORDER BY id LIMIT ?",
            vec![Value::text("x"), Value::Int(6), Value::Int(10)],
            vec![t(
                "dn1",
                "SELECT id FROM `orders_0002` WHERE note = ? AND user_id = ? ORDER BY id LIMIT ?",
            )],
        ),
        (
            "SELECT * FROM orders WHERE user_id IN (?, ?)",
            vec![Value::Int(1), Value::Int(5)],
            vec![t(
                "dn2",
                "SELECT * FROM `orders_0001` WHERE user_id IN (?, ?)",
            )],
        ),
        (
            "SELECT * FROM orders WHERE user_id = 3",
            vec![],
            vec![t("dn2", "SELECT * FROM `orders_0003` WHERE user_id = 3")],
        ),
        (
            "UPDATE orders SET note = ? WHERE user_id = ?",
            vec![Value::text("a"), Value::text("8")],
            vec![t(
                "dn1",
                "UPDATE `orders_0000` SET note = ? WHERE user_id = ?",
            )],
        ),
        (
            "DELETE FROM orders WHERE user_id = ?",
            vec![Value::Int(7)],
            vec![t("dn2", "DELETE FROM `orders_0003` WHERE user_id = ?")],
        ),
        (
            "INSERT INTO orders (id, user_id, note) VALUES (?, ?, ?)",
            vec![Value::Int(1), Value::Int(2), Value::text("n")],
            vec![t(
                "dn1",
                "INSERT INTO `orders_0002` (id, user_id, note) VALUES (?, ?, ?)",
            )],
        ),
        (
            "INSERT INTO orders SET id = ?, user_id = ?",
            vec![Value::Int(1), Value::Int(3)],
            vec![t(
                "dn2",
                "INSERT INTO `orders_0003` SET id = ?, user_id = ?",
            )],
        ),
        (
            "SELECT * FROM countries WHERE code = ?",
            vec![Value::text("DE")],
            vec![t("dn1", "SELECT * FROM countries WHERE code = ?")],
        ),
    ];
    for (sql, params, want) in cases {
        let p = prepare(
            sql.as_bytes(),
            schema,
            &rt,
            router::reading::Reading::DEFAULT,
        )
        .unwrap()
        .unwrap_or_else(|| panic!("not planned: {sql}"));
        assert_eq!(nodes(&p, &params), want, "{sql}");
    }
    // Rows of one execution on different shards, and unbound parameters.
    let p = prepare(
        b"INSERT INTO orders (id, user_id) VALUES (?, ?), (?, ?)",
        schema,
        &rt,
        router::reading::Reading::DEFAULT,
    )
    .unwrap()
    .unwrap();
    assert_eq!(p.params, 4);
    let same = [Value::Int(1), Value::Int(1), Value::Int(2), Value::Int(5)];
    assert_eq!(p.targets(&same).unwrap().len(), 1, "1 and 5 share shard 1");
    let split = [Value::Int(1), Value::Int(1), Value::Int(2), Value::Int(2)];
    assert!(matches!(p.targets(&split), Err(RouteError::Unsupported(_))));
    assert!(p.targets(&[Value::Int(1)]).is_err());
    // No key parameter: every shard.
    let p = prepare(
        b"SELECT * FROM orders WHERE note = ?",
        schema,
        &rt,
        router::reading::Reading::DEFAULT,
    )
    .unwrap()
    .unwrap();
    assert_eq!(p.targets(&[Value::text("x")]).unwrap().len(), 4);
    // A range over a range rule.
    let p = prepare(
        b"SELECT * FROM accounts WHERE id BETWEEN ? AND ?",
        schema,
        &rt,
        router::reading::Reading::DEFAULT,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        p.targets(&[Value::Int(10), Value::Int(20)]).unwrap().len(),
        1
    );
    assert_eq!(
        p.targets(&[Value::Int(10), Value::Int(1500)])
            .unwrap()
            .len(),
        2
    );
}

/// The session's sql_mode decides what the same bytes say: the plan follows it, and
/// the plan cache keeps one entry per reading.
#[test]
fn plans_read_strings_and_quotes_as_the_session_does() {
    use router::reading::Reading;
    let rt = std::sync::Arc::new(runtime());
    let schema = &rt.schemas["shop"];
    let ansi = Reading {
        backslash_escapes: true,
        ansi_quotes: true,
        pipes_as_concat: false,
    };
    let no_escapes = Reading {
        backslash_escapes: false,
        ansi_quotes: false,
        pipes_as_concat: false,
    };
    let targets = |sql: &str, reading: Reading| {
        plan(sql.as_bytes(), schema, &rt, reading)
            .unwrap()
            .map(|p| {
                p.targets
                    .iter()
                    .map(|t| (rt.nodes[t.node].name.clone(), t.sql.clone()))
                    .collect::<Vec<_>>()
            })
    };
    // ANSI_QUOTES: "orders" and "user_id" are identifiers, so this is a point query.
    let sql = "SELECT * FROM \"orders\" WHERE \"user_id\" = 5";
    assert_eq!(
        targets(sql, ansi),
        Some(vec![t(
            "dn2",
            "SELECT * FROM `orders_0001` WHERE \"user_id\" = 5"
        )])
    );
    // By default they are strings: no table named at all.
    assert_eq!(targets(sql, Reading::DEFAULT), None);
    // NO_BACKSLASH_ESCAPES: 'a\' ends at its second quote, so `user_id = 6` is a
    // condition; read with escapes, the string would run on to the end.
    let sql = "SELECT * FROM orders WHERE note = 'a\\' AND user_id = 6";
    assert_eq!(targets(sql, no_escapes).map(|t| t.len()), Some(1));
    assert!(plan(sql.as_bytes(), schema, &rt, Reading::DEFAULT).is_err());
    // One cache, the same bytes, two readings: two different plans.
    let cache = router::PlanCache::new(8);
    let sql = b"SELECT * FROM \"orders\" WHERE \"user_id\" = 5";
    assert!(cache
        .plan(sql, schema, &rt, Reading::DEFAULT)
        .unwrap()
        .is_none());
    assert!(cache.plan(sql, schema, &rt, ansi).unwrap().is_some());
    assert!(cache
        .plan(sql, schema, &rt, Reading::DEFAULT)
        .unwrap()
        .is_none());
}

#[test]
fn handler_and_lock_on_spread_tables_are_refused_by_name() {
    for sql in ["HANDLER orders OPEN", "LOCK TABLES orders WRITE"] {
        match route(sql) {
            Err(RouteError::Unsupported(why)) => {
                assert!(why.contains("sharded or broadcast"), "{why}")
            }
            other => panic!("{sql}: {other:?}"),
        }
    }
}

/// `||` is OR unless sql_mode has PIPES_AS_CONCAT: a shard set built from it must
/// hold both sides.
#[test]
fn double_pipes_are_or_as_mysql_reads_them() {
    use router::reading::Reading;
    let rt = runtime();
    let schema = &rt.schemas["shop"];
    let shards = |sql: &str, reading: Reading| {
        plan(sql.as_bytes(), schema, &rt, reading)
            .unwrap()
            .map(|p| p.targets.len())
    };
    let sql = "SELECT * FROM orders WHERE user_id = 1 || user_id = 2";
    assert_eq!(shards(sql, Reading::DEFAULT), Some(2));
    let sql = "DELETE FROM orders WHERE user_id = 1 AND note = 'x' || user_id = 2";
    assert_eq!(shards(sql, Reading::DEFAULT), Some(2));
    let pipes = Reading {
        pipes_as_concat: true,
        ..Reading::DEFAULT
    };
    // A string then: `user_id = (1 || user_id) = 2` names no single key, and the
    // DELETE's condition is `user_id = 1 AND note = ('x' || user_id) = 2`: one shard.
    let sql = "SELECT * FROM orders WHERE user_id = 1 || user_id = 2";
    assert_eq!(shards(sql, pipes), Some(4));
    let sql = "DELETE FROM orders WHERE user_id = 1 AND note = 'x' || user_id = 2";
    assert_eq!(shards(sql, pipes), Some(1));
}

/// Sharded tables join inside each shard only on equal shard keys; any other join
/// could pair rows of different shards and is refused, never run.
#[test]
fn joins_of_sharded_tables_must_be_on_their_shard_keys() {
    for sql in [
        "SELECT COUNT(*) FROM orders a JOIN orders b ON a.id = b.id",
        "SELECT * FROM orders a, orders b WHERE a.user_id = 5 AND b.user_id = 6",
        "SELECT * FROM orders a LEFT JOIN orders b ON a.user_id = b.user_id + 1",
        "SELECT * FROM orders o JOIN order_items i ON o.id = i.id",
        "SELECT * FROM orders o JOIN order_items i ON o.user_id = i.user_id OR o.id = i.id",
        "SELECT a.id FROM orders a JOIN orders b ON a.id = b.id WHERE a.user_id = 1 \
         UNION ALL SELECT id FROM orders WHERE user_id = 1",
    ] {
        // Reads are gathered and joined by the server itself.
        assert!(gathered(sql).reason.contains("shard keys"), "{sql}");
    }
    // An outer join that keeps a broadcast table's rows would have every shard
    // answer them; one that keeps the sharded table's rows runs shard by shard.
    assert!(
        gathered("SELECT * FROM countries c LEFT JOIN orders o ON o.id = c.id")
            .reason
            .contains("outer join")
    );
    assert!(
        gathered("SELECT * FROM orders o RIGHT JOIN countries c ON o.id = c.id")
            .reason
            .contains("outer join")
    );
    assert!(
        route("SELECT * FROM orders o LEFT JOIN countries c ON o.id = c.id")
            .unwrap()
            .is_some_and(|(targets, _, _)| targets.len() == 4)
    );
    assert!(route(
        "SELECT * FROM countries c LEFT JOIN orders o ON o.id = c.id WHERE o.user_id = 5"
    )
    .unwrap()
    .is_some_and(|(targets, _, _)| targets.len() == 1));
    for sql in [
        "UPDATE orders a JOIN orders b ON a.id = b.id SET a.id = b.id WHERE b.user_id = 6",
        "INSERT INTO order_items (user_id, id) SELECT a.user_id, b.id FROM orders a JOIN orders b ON a.id = b.id",
    ] {
        match route(sql) {
            Err(RouteError::Unsupported(why)) => assert!(why.contains("shard keys"), "{sql}: {why}"),
            other => panic!("{sql}: {other:?}"),
        }
    }
    for sql in [
        "SELECT * FROM orders a JOIN orders b ON a.user_id = b.user_id AND a.id < b.id",
        "SELECT * FROM orders o JOIN order_items i ON i.user_id = o.user_id WHERE o.user_id = 5",
        "SELECT * FROM orders o, order_items i WHERE o.user_id = i.user_id AND o.id = 1",
        "SELECT id FROM orders WHERE user_id = 1 UNION ALL SELECT id FROM orders WHERE user_id = 1",
    ] {
        assert!(route(sql).is_ok(), "{sql}: {:?}", route(sql));
    }
}

/// `ORDER BY NULL` after GROUP BY (MySQL's "no order") is no order to merge by.
#[test]
fn order_by_null_orders_nothing() {
    let sql = "SELECT note, COUNT(*) FROM orders GROUP BY note ORDER BY NULL";
    let (targets, _, _) = route(sql).unwrap().unwrap();
    // Each shard still sends its groups in order, for the merge to combine them.
    for (_, physical) in &targets {
        assert!(physical.contains("ORDER BY 1"), "{physical}");
        assert!(!physical.contains("NULL"), "{physical}");
    }
}

/// A subquery over a sharded table is gathered as a subquery, not as a join.
#[test]
fn subqueries_are_gathered_by_name() {
    let sql = "SELECT * FROM orders WHERE id IN (SELECT id FROM orders WHERE note = 'x')";
    assert!(gathered(sql).reason.contains("subqueries"));
}

/// Conditions that concern one table alone thin its copy (and pick its shards);
/// anything whose pushing could change the answer stays with the statement only.
#[test]
fn gathers_copy_only_rows_that_can_reach_the_answer() {
    let g = gathered(
        "SELECT * FROM orders o JOIN events e ON e.id = o.id \
         WHERE o.user_id = 5 AND e.kind = 'x' AND o.id + e.id > 3 AND RAND() < 2 \
         AND o.amount > (SELECT 1) AND e.score < RAND()",
    );
    let orders = &g.tables[0];
    assert_eq!(
        (orders.name.as_str(), orders.alias.as_str()),
        ("orders", "o")
    );
    assert_eq!(orders.filter.as_deref(), Some("(o.user_id = 5)"));
    // user_id 5 is shard 1 of 4 (on dn2, as `orders_0001`).
    let shards: Vec<(Option<u32>, &str)> = orders
        .sources
        .iter()
        .map(|s| (s.shard, s.table.as_str()))
        .collect();
    assert_eq!(shards, [(Some(1), "orders_0001")]);
    assert_eq!(orders.sources[0].database, "shop_b");
    assert_eq!(g.tables[1].filter.as_deref(), Some("(e.kind = 'x')"));
    assert_eq!(g.tables[1].sources.len(), 4);
    // The NULL-filled side of an outer join keeps every row; the other side not.
    let g = gathered(
        "SELECT * FROM orders o LEFT JOIN events e ON e.id = o.id \
         WHERE e.kind IS NULL AND o.status = 'new'",
    );
    assert_eq!(g.tables[0].filter.as_deref(), Some("(o.status = 'new')"));
    assert_eq!(g.tables[1].filter, None);
    // A table named twice is copied whole; unqualified columns belong to a lone table.
    let g = gathered("SELECT * FROM orders WHERE id IN (SELECT id FROM orders) AND status = 'x'");
    assert_eq!(g.tables.len(), 1);
    assert_eq!(g.tables[0].filter, None);
    let g = gathered("SELECT status, GROUP_CONCAT(id) FROM orders WHERE status = 'x' AND user_id IN (1, 2) GROUP BY status");
    assert_eq!(
        g.tables[0].filter.as_deref(),
        Some("(status = 'x') AND (user_id IN (1, 2))")
    );
    assert_eq!(g.tables[0].sources.len(), 2);
    // Broadcast and single tables: one copy; in place on the evaluating node.
    let g = gathered("SELECT * FROM audit JOIN countries ON 1 = 1 JOIN customers ON 1 = 1");
    let placed: Vec<(&str, bool, usize)> = g
        .tables
        .iter()
        .map(|t| (t.name.as_str(), t.in_place, t.sources[0].node))
        .collect();
    assert_eq!(
        placed,
        [
            ("audit", false, 1),
            ("countries", true, 0),
            ("customers", true, 0)
        ]
    );
}

/// A number with an exponent is a DOUBLE to SQL: its rounding decides the shards.
#[test]
fn approximate_literals_prune_as_sql_compares_them() {
    let (targets, _, _) =
        route("SELECT * FROM orders WHERE user_id BETWEEN 5 AND 5.99999999999999999999e0")
            .unwrap()
            .unwrap();
    // 5 and 6: shards 1 and 2 (mod 4).
    assert_eq!(targets.len(), 2, "{targets:?}");
    let (one, _) = one("SELECT * FROM orders WHERE user_id = 6.00000000000000000001e0");
    assert_eq!(one, "dn1");
}

/// A multi-table DELETE names its targets by table or alias: a table name is a
/// mention of the table (its shard's name there), an alias is left alone. It runs
/// shard by shard when it joins on shard keys, and may change sharded tables only.
#[test]
fn multi_table_writes_run_where_their_rows_live() {
    let (t, _, _) = route(
        "DELETE orders FROM orders JOIN order_items ON order_items.user_id = orders.user_id \
         WHERE orders.user_id = 5",
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        t,
        [(
            "dn2".to_string(),
            "DELETE `orders_0001` FROM `orders_0001` JOIN `order_items_0001` ON \
             `order_items_0001`.user_id = `orders_0001`.user_id WHERE `orders_0001`.user_id = 5"
                .to_string()
        )]
    );
    let (t, _, _) = route(
        "DELETE o, i FROM orders o JOIN order_items i ON i.user_id = o.user_id JOIN countries c \
         ON c.code = o.country WHERE c.name = 'x'",
    )
    .unwrap()
    .unwrap();
    assert_eq!(t.len(), 4);
    assert!(
        t[0].1.starts_with("DELETE o, i FROM `orders_0000` o"),
        "{t:?}"
    );
    for sql in [
        "DELETE c FROM countries c JOIN orders o ON o.country = c.code",
        "UPDATE orders o JOIN countries c ON c.code = o.country SET c.name = o.note",
        "UPDATE orders o JOIN countries c ON c.code = o.country SET name = 'x'",
    ] {
        match route(sql) {
            Err(RouteError::Unsupported(why)) => {
                assert!(why.contains("changes `countries`"), "{sql}: {why}")
            }
            other => panic!("{sql}: {other:?}"),
        }
    }
    // Changing only the sharded table, reading the broadcast one: shard by shard.
    let (t, _, _) = route(
        "UPDATE orders o JOIN countries c ON c.code = o.country SET o.note = c.name WHERE o.user_id = 2",
    )
    .unwrap()
    .unwrap();
    assert_eq!(t.len(), 1);
    // A table-qualified SET target names the table too (renamed with it).
    let (t, _, _) = route("UPDATE orders SET orders.note = orders.note WHERE user_id = 5")
        .unwrap()
        .unwrap();
    assert_eq!(
        t[0].1,
        "UPDATE `orders_0001` SET `orders_0001`.note = `orders_0001`.note WHERE user_id = 5"
    );
    let (t, _, _) = route(
        "INSERT INTO orders (id, user_id, note) VALUES (1, 5, 'a') \
         ON DUPLICATE KEY UPDATE orders.note = 'b'",
    )
    .unwrap()
    .unwrap();
    assert!(t[0].1.ends_with("UPDATE `orders_0001`.note = 'b'"), "{t:?}");
    // MySQL's comma form joins in the WHERE: the same rules.
    let (t, _, _) = route(
        "UPDATE orders o, order_items i SET o.note = i.sku WHERE i.user_id = o.user_id \
         AND o.user_id = 5",
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        t,
        [(
            "dn2".to_string(),
            "UPDATE `orders_0001` o, `order_items_0001` i SET o.note = i.sku WHERE \
             i.user_id = o.user_id AND o.user_id = 5"
                .to_string()
        )]
    );
    let (t, _, _) = route(
        "UPDATE orders, order_items SET orders.note = 'x' WHERE order_items.user_id = orders.user_id",
    )
    .unwrap()
    .unwrap();
    assert_eq!(t.len(), 4);
    match route("UPDATE orders o, countries c SET c.name = o.note WHERE c.code = o.country") {
        Err(RouteError::Unsupported(why)) => assert!(why.contains("changes `countries`"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Its modifiers are not tables.
    let (t, _, _) = route(
        "UPDATE LOW_PRIORITY IGNORE orders o, order_items i SET o.note = 'x' \
         WHERE i.user_id = o.user_id AND o.user_id = 5",
    )
    .unwrap()
    .unwrap();
    assert_eq!(t.len(), 1);
    assert!(
        t[0].1
            .contains("IGNORE `orders_0001` o, `order_items_0001` i"),
        "{t:?}"
    );
    // Joined on something else than the shard key: refused, as with JOIN.
    assert!(matches!(
        route("UPDATE orders o, order_items i SET o.note = 'x' WHERE i.id = o.id"),
        Err(RouteError::Unsupported(_))
    ));
}

/// Conditions go to the mention of a table in whose scope they are written, never
/// to a table of another scope that happens to have the same name or alias.
#[test]
fn pushed_conditions_stay_in_their_scope() {
    // `c` is countries outside and orders inside: orders is copied whole.
    let g = gathered(
        "SELECT c.code FROM countries c WHERE c.code > 'm' AND c.code IN \
         (SELECT c.country FROM orders c)",
    );
    let orders = g.tables.iter().find(|t| t.name == "orders").unwrap();
    assert_eq!(orders.filter, None);
    assert_eq!(orders.sources.len(), 4);
    // The same without aliases: `orders` names countries in the outer scope.
    let g = gathered(
        "SELECT orders.code FROM countries orders WHERE orders.code > 'm' AND orders.code IN \
         (SELECT country FROM orders)",
    );
    let orders = g.tables.iter().find(|t| t.name == "orders").unwrap();
    assert_eq!(orders.filter, None);
    // A CTE read under a table's name.
    let g = gathered(
        "WITH big AS (SELECT user_id, SUM(amount) AS amount FROM orders GROUP BY user_id) \
         SELECT * FROM big AS orders WHERE orders.amount > 100",
    );
    assert_eq!(g.tables[0].filter, None);
    // Each part of a set operation thins its own table.
    let g = gathered(
        "SELECT id FROM orders WHERE user_id = 3 UNION SELECT id FROM order_items WHERE qty > 1",
    );
    assert_eq!(g.tables[0].filter.as_deref(), Some("(user_id = 3)"));
    assert_eq!(g.tables[0].sources.len(), 1);
    assert_eq!(g.tables[1].filter.as_deref(), Some("(qty > 1)"));
    // Two spellings of one table are one table, copied whole.
    let g =
        gathered("SELECT * FROM orders o WHERE o.note = 'x' AND o.id IN (SELECT id FROM Orders)");
    assert_eq!(g.tables.len(), 1);
    assert_eq!(g.tables[0].filter, None);
    // Conditions no row meets: one (empty) copy, not none.
    let g = gathered(
        "SELECT * FROM orders o JOIN events e ON e.id = o.id WHERE o.user_id = 1 AND o.user_id = 2",
    );
    assert_eq!(g.tables[0].sources.len(), 1);
}

/// An outer join keeping a broadcast table's rows stays shard by shard only when
/// the WHERE drops the NULL-filled rows; `<=> NULL` keeps them, on every shard.
#[test]
fn outer_joins_keep_null_rows_only_when_gathered() {
    assert!(gathered(
        "SELECT * FROM countries c LEFT JOIN orders o ON o.country = c.code WHERE o.user_id <=> NULL"
    )
    .reason
    .contains("outer join"));
    assert!(route(
        "SELECT * FROM countries c LEFT JOIN orders o ON o.country = c.code WHERE o.user_id IN (1, 2)"
    )
    .unwrap()
    .is_some_and(|(targets, _, _)| targets.len() == 2));
    // A write into a table that is not sharded, from a sharded one: refused.
    match route("INSERT INTO countries (code) SELECT note FROM orders") {
        Err(RouteError::Unsupported(why)) => assert!(why.contains("not sharded"), "{why}"),
        other => panic!("{other:?}"),
    }
}

/// LOAD DATA runs unchanged where its table lives whole (an unconfigured table: the
/// schema's node); a file for several shards or copies is refused by name.
#[test]
fn load_data_runs_where_its_table_lives_whole() {
    assert_eq!(
        route("LOAD DATA LOCAL INFILE 'x.csv' INTO TABLE customers FIELDS TERMINATED BY ','")
            .unwrap(),
        None
    );
    // Split over the shards: each runs it on its own table, without the lines
    // shardgate skips; the format and the key's field are the splitter's.
    let sql = "LOAD DATA LOCAL INFILE 'x' INTO TABLE shop.order_items FIELDS TERMINATED BY ',' \
               OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\r\\n' IGNORE 2 LINES \
               (id, @skip, user_id, note) SET note = UPPER(note)";
    let rt = runtime();
    let p = plan(
        sql.as_bytes(),
        &rt.schemas["shop"],
        &rt,
        router::reading::Reading::DEFAULT,
    )
    .unwrap()
    .unwrap();
    assert_eq!(p.targets.len(), 4);
    assert_eq!(
        p.targets[1].sql,
        "LOAD DATA LOCAL INFILE 'x' INTO TABLE `order_items_0001` FIELDS TERMINATED BY ',' \
         OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\r\\n'  \
         (id, @skip, user_id, note) SET note = UPPER(note)"
    );
    let load = p.load.unwrap();
    assert_eq!(
        (
            load.key_field,
            load.ignore_lines,
            load.format.line_end.as_slice()
        ),
        (Some(2), 2, &b"\r\n"[..])
    );
    assert_eq!(load.format.enclosed, Some(b'"'));
    // A broadcast table: every copy, every line.
    let (t, _, write) = route("LOAD DATA LOCAL INFILE 'x' REPLACE INTO TABLE countries")
        .unwrap()
        .unwrap();
    assert!(write);
    assert!(t.len() > 1, "{t:?}");
    assert!(t
        .iter()
        .all(|(_, sql)| sql == "LOAD DATA LOCAL INFILE 'x' REPLACE INTO TABLE `countries`"));
    // No column list: the table's columns go in before SET (or at the end).
    assert_eq!(
        route("LOAD DATA LOCAL INFILE 'x' INTO TABLE order_items SET note = 'a';"),
        Err(RouteError::NeedsColumns {
            table: "order_items".into(),
            at: 50
        })
    );
    for (sql, why) in [
        (
            "LOAD DATA LOCAL INFILE 'x' INTO TABLE audit",
            "shardgate:node=dn2",
        ),
        (
            "load data infile 'x' into table `order_items`",
            "use LOAD DATA LOCAL",
        ),
        (
            "LOAD XML LOCAL INFILE 'x' INTO TABLE shop.order_items",
            "LOAD XML",
        ),
        (
            "LOAD DATA LOCAL INFILE 'x' INTO TABLE order_items LINES STARTING BY 'x' (id, user_id)",
            "STARTING BY",
        ),
        (
            "LOAD DATA LOCAL INFILE 'x' INTO TABLE orders (id, user_id, note)",
            "global id column `id`",
        ),
        (
            "LOAD DATA LOCAL INFILE 'x' INTO TABLE order_items FIELDS TERMINATED BY X'2C' (id, user_id)",
            "cannot read",
        ),
        (
            "LOAD DATA LOCAL INFILE 'x' INTO TABLE order_items (id, user_id, @n) SET note = CONCAT(@n, @other)",
            "user variable @other",
        ),
        (
            "LOAD DATA LOCAL INFILE 'x' INTO TABLE countries LINES TERMINATED BY '\\t'",
            "same field and line terminator",
        ),
    ] {
        match route(sql) {
            Err(RouteError::Unsupported(m)) => assert!(m.contains(why), "{sql}: {m}"),
            other => panic!("{sql}: {other:?}"),
        }
    }
    for (sql, why) in [
        (
            "LOAD DATA LOCAL INFILE 'x' INTO TABLE order_items (id, @u) SET user_id = @u",
            "may not SET the shard column",
        ),
        (
            "LOAD DATA LOCAL INFILE 'x' INTO TABLE order_items (id, @u) SET user_id := @u",
            "may not SET the shard column",
        ),
        (
            "LOAD DATA LOCAL INFILE 'x' INTO TABLE order_items (id, note)",
            "name it in the column list",
        ),
        (
            "LOAD DATA LOCAL INFILE 'x' INTO TABLE order_items (id, user_id, user_id)",
            "twice",
        ),
    ] {
        match route(sql) {
            Err(RouteError::Invalid(m)) => assert!(m.contains(why), "{sql}: {m}"),
            other => panic!("{sql}: {other:?}"),
        }
    }
}

/// A window partitioned by the shard key sees each of its partitions whole on one
/// shard: the shards compute it, and only their rows are merged. Other windows need
/// every row at once and are gathered.
#[test]
fn windows_partitioned_by_the_shard_key_run_shard_by_shard() {
    let (t, merge, _) = route(
        "SELECT id, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY id) AS n FROM orders ORDER BY id",
    )
    .unwrap()
    .unwrap();
    assert_eq!(t.len(), 4);
    assert!(matches!(merge, Merge::Combine(_)), "{merge:?}");
    let (t, _, _) = route("SELECT id, SUM(amount) OVER (PARTITION BY o.user_id) FROM orders o")
        .unwrap()
        .unwrap();
    assert_eq!(t.len(), 4);
    for sql in [
        "SELECT id, ROW_NUMBER() OVER (PARTITION BY note ORDER BY id) FROM orders",
        "SELECT id, RANK() OVER (ORDER BY id) FROM orders",
        "SELECT id FROM orders ORDER BY ROW_NUMBER() OVER (ORDER BY amount)",
        "SELECT user_id, COUNT(*), ROW_NUMBER() OVER (PARTITION BY user_id) FROM orders GROUP BY user_id",
        "SELECT id, ROW_NUMBER() OVER w FROM orders WINDOW w AS (PARTITION BY user_id)",
    ] {
        assert!(gathered(sql).reason.contains("window"), "{sql}");
    }
}
