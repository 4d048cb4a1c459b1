//! The shop the cross-shard tests query: its tables (DDL and rows, every table kind),
//! the hand-written statements compared with one MariaDB, and the tables as the random
//! generator sees them.

pub const DDL: [(&str, &str); 7] = [
    (
        "users",
        "(id BIGINT PRIMARY KEY, name VARCHAR(20), country CHAR(2), score INT, \
         balance DECIMAL(12,2), joined DATE)",
    ),
    (
        "orders",
        "(id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL, product_id INT, qty INT, \
         amount DECIMAL(10,2), status ENUM('new','paid','sent'), ratio DOUBLE, created DATETIME)",
    ),
    (
        "items",
        "(id INT PRIMARY KEY, order_id BIGINT NOT NULL, sku VARCHAR(10), price DECIMAL(8,2), \
         qty INT)",
    ),
    (
        "events",
        "(id INT PRIMARY KEY, user_id BIGINT, kind VARCHAR(10) COLLATE utf8mb4_bin, \
         created DATETIME NOT NULL, weight FLOAT)",
    ),
    (
        "products",
        "(id INT PRIMARY KEY, name VARCHAR(20), category VARCHAR(10), price DECIMAL(8,2))",
    ),
    (
        "notes",
        "(id INT PRIMARY KEY, user_id BIGINT, body VARCHAR(30))",
    ),
    ("tags", "(user_id BIGINT, tag VARCHAR(10))"),
];

const NAMES: [&str; 12] = [
    "'Émile'", "'émile'", "'ZOË'", "'zoë'", "'日本'", "'bob'", "'Bob'", "NULL", "'ann '", "'Ann'",
    "'ß'", "'x'",
];

/// Rows per table, as VALUES lists.
pub fn rows() -> Vec<(&'static str, Vec<String>)> {
    let mut ids: Vec<i64> = (1..=50).collect();
    ids.extend([
        -5,
        -1,
        0,
        4_294_967_296,
        9_223_372_036_854_775_807,
        -9_223_372_036_854_775_808,
    ]);
    let users = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let score = if i % 7 == 3 {
                "NULL".into()
            } else {
                ((i * 37) % 90).to_string()
            };
            let balance = if i % 9 == 4 {
                "NULL".into()
            } else {
                format!("{}.{:02}", (i as i64 * 7919) % 2000 - 500, (i * 13) % 100)
            };
            format!(
                "({id}, {}, '{}', {score}, {balance}, '2023-{:02}-{:02}')",
                NAMES[i % NAMES.len()],
                ["de", "fr", "DE", "us", "jp"][i % 5],
                i % 12 + 1,
                i % 28 + 1
            )
        })
        .collect();
    let orders = (1..=240i64)
        .map(|i| {
            let user = if i % 17 == 0 { 999 } else { ids[(i as usize * 7) % ids.len()] };
            let product = if i % 10 == 0 { "NULL".into() } else { (i % 8 + 1).to_string() };
            let qty = if i % 13 == 0 { "NULL".into() } else { ((i * 5) % 11 - 2).to_string() };
            let amount = if i % 11 == 0 {
                "NULL".into()
            } else {
                format!("{}.{:02}", (i * 7919) % 400 - 60, (i * 31) % 100)
            };
            let status = ["'new'", "'paid'", "'sent'", "NULL"][i as usize % 4];
            format!(
                "({i}, {user}, {product}, {qty}, {amount}, {status}, {}, '2024-{:02}-{:02} {:02}:00:00')",
                (i % 9) as f64 / 3.0,
                i % 12 + 1,
                i % 28 + 1,
                i % 24
            )
        })
        .collect();
    let items = (1..=400i64)
        .map(|i| {
            format!(
                "({i}, {}, 'S{}', {}.{:02}, {})",
                (i * 3) % 250 + 1,
                i % 9,
                i % 70,
                (i * 7) % 100,
                if i % 19 == 0 {
                    "NULL".into()
                } else {
                    (i % 6).to_string()
                }
            )
        })
        .collect();
    let edges = [
        "2024-01-01 00:00:00",
        "2024-01-31 23:59:59",
        "2024-02-01 00:00:00",
        "2024-02-29 12:00:00",
        "2024-03-01 00:00:00",
        "2024-06-30 23:59:59",
        "2024-07-01 00:00:00",
        "2024-12-31 23:59:59",
    ];
    let events = (1..=160i64)
        .map(|i| {
            let created = if (i as usize) <= edges.len() {
                edges[i as usize - 1].to_string()
            } else {
                format!(
                    "2024-{:02}-{:02} {:02}:{:02}:00",
                    i % 12 + 1,
                    i % 28 + 1,
                    i % 24,
                    i % 60
                )
            };
            format!(
                "({i}, {}, '{}', '{created}', {})",
                if i % 15 == 0 {
                    "NULL".into()
                } else {
                    ids[(i as usize * 11) % ids.len()].to_string()
                },
                ["click", "Click", "view", "buy"][i as usize % 4],
                if i % 6 == 0 {
                    "NULL".into()
                } else {
                    format!("{}", (i % 40) as f64 * 0.1)
                }
            )
        })
        .collect();
    let products = (1..=10i64)
        .map(|i| {
            format!(
                "({i}, 'p{i}', '{}', {}.{:02})",
                ["toys", "Toys", "food"][i as usize % 3],
                i * 3,
                i * 7 % 100
            )
        })
        .collect();
    let notes = (1..=30i64)
        .map(|i| {
            format!(
                "({i}, {}, {})",
                ids[(i as usize * 5) % ids.len()],
                NAMES[i as usize % NAMES.len()]
            )
        })
        .collect();
    let tags = (1..=40i64)
        .map(|i| {
            format!(
                "({}, '{}')",
                ids[(i as usize * 3) % ids.len()],
                ["vip", "new", "VIP", "old"][i as usize % 4]
            )
        })
        .collect();
    vec![
        ("users", users),
        ("orders", orders),
        ("items", items),
        ("events", events),
        ("products", products),
        ("notes", notes),
        ("tags", tags),
    ]
}

/// The shapes of the issue, and the ones around them. `true`: the ORDER BY is
/// total, rows compare in order.
pub const QUERIES: &[(&str, bool)] = &[
    // Subqueries.
    ("SELECT id, name FROM users WHERE id IN (SELECT user_id FROM orders WHERE qty > 3) ORDER BY id", true),
    ("SELECT id FROM users WHERE id NOT IN (SELECT user_id FROM orders WHERE amount > 100) ORDER BY id", true),
    ("SELECT id FROM users WHERE id NOT IN (SELECT user_id FROM events) ORDER BY id", true),
    ("SELECT u.id FROM users u WHERE EXISTS (SELECT 1 FROM orders o JOIN items i ON i.order_id = o.id WHERE o.user_id = u.id AND i.qty > 3) ORDER BY u.id", true),
    ("SELECT u.id FROM users u WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.user_id = u.id) ORDER BY u.id", true),
    ("SELECT id, amount FROM orders WHERE amount > (SELECT AVG(amount) FROM orders) ORDER BY id", true),
    ("SELECT u.id, (SELECT COUNT(*) FROM orders o WHERE o.user_id = u.id) AS n FROM users u ORDER BY u.id", true),
    ("SELECT u.id, (SELECT MAX(e.created) FROM events e WHERE e.user_id = u.id) AS last FROM users u ORDER BY u.id", true),
    ("SELECT t.user_id, t.total FROM (SELECT user_id, SUM(amount) AS total FROM orders GROUP BY user_id) t WHERE t.total > 100 ORDER BY t.user_id", true),
    ("SELECT COUNT(*), SUM(c) FROM (SELECT order_id, COUNT(*) AS c FROM items GROUP BY order_id HAVING COUNT(*) > 1) x", true),
    ("SELECT id FROM orders WHERE product_id IN (SELECT id FROM products WHERE category = 'toys') AND user_id IN (SELECT id FROM users WHERE country = 'de') ORDER BY id", true),
    ("SELECT id FROM items WHERE order_id = ANY (SELECT id FROM orders WHERE status = 'paid') ORDER BY id", true),
    ("SELECT id FROM orders o WHERE amount >= ALL (SELECT amount FROM orders o2 WHERE o2.user_id = o.user_id AND o2.amount IS NOT NULL) ORDER BY id", true),
    ("SELECT * FROM users WHERE id IN (SELECT user_id FROM tags WHERE tag = 'vip') ORDER BY id", true),
    ("SELECT id FROM events WHERE user_id IN (SELECT user_id FROM notes) AND created >= '2024-02-01' ORDER BY id", true),
    // Joins across shard keys, with GROUP BY, ORDER BY, LIMIT.
    ("SELECT o.user_id, COUNT(*), SUM(i.price * i.qty) FROM orders o JOIN items i ON i.order_id = o.id GROUP BY o.user_id ORDER BY o.user_id", true),
    ("SELECT o.id, i.id FROM orders o JOIN items i ON i.order_id = o.id WHERE o.user_id BETWEEN 1 AND 10 ORDER BY o.id, i.id LIMIT 20", true),
    ("SELECT o.id, i.sku FROM orders o LEFT JOIN items i ON i.order_id = o.id AND i.qty > 4 ORDER BY o.id, i.id", true),
    ("SELECT o.id FROM orders o LEFT JOIN items i ON i.order_id = o.id WHERE i.id IS NULL ORDER BY o.id", true),
    ("SELECT u.name, e.kind, e.created FROM events e JOIN users u ON u.id = e.user_id WHERE e.created < '2024-03-01' ORDER BY e.id", true),
    ("SELECT e.kind, COUNT(DISTINCT e.user_id) FROM events e JOIN orders o ON o.user_id = e.user_id GROUP BY e.kind ORDER BY e.kind", true),
    ("SELECT p.category, SUM(o.amount) FROM orders o JOIN products p ON p.id = o.product_id JOIN items i ON i.order_id = o.id GROUP BY p.category ORDER BY 2 DESC", false),
    ("SELECT n.body, u.name FROM notes n JOIN users u ON u.id = n.user_id ORDER BY n.id", true),
    ("SELECT t.tag, COUNT(*) FROM tags t JOIN orders o ON o.user_id = t.user_id GROUP BY t.tag ORDER BY t.tag", false),
    ("SELECT a.id, b.id FROM orders a JOIN orders b ON a.product_id = b.product_id AND a.id < b.id WHERE a.user_id = 3 ORDER BY a.id, b.id", true),
    ("SELECT u.id, o.id FROM users u RIGHT JOIN orders o ON o.user_id = u.id WHERE u.id IS NULL ORDER BY o.id", true),
    ("SELECT i.id, e.id FROM items i JOIN events e ON e.id = i.id WHERE i.qty = 2 ORDER BY i.id LIMIT 5", true),
    // Outer joins that keep a broadcast or single table's rows: found by the random
    // test (each shard answered the unmatched rows once).
    ("SELECT p.id, o.id FROM products p LEFT JOIN orders o ON p.price = o.amount ORDER BY p.id, o.id", true),
    ("SELECT e.kind, COUNT(*), SUM(p.price) FROM events e RIGHT JOIN products p ON e.kind = p.category GROUP BY e.kind", false),
    ("SELECT n.id, u.id FROM notes n LEFT JOIN users u ON u.id = n.id ORDER BY n.id, u.id", true),
    // COUNT(DISTINCT) on the ROLLUP row (MariaDB itself errs when grouping by a
    // primary key, so the group here is another column).
    ("SELECT status, COUNT(DISTINCT qty), COUNT(DISTINCT user_id) FROM orders GROUP BY status WITH ROLLUP", false),
    // Set operations.
    ("SELECT user_id FROM orders UNION SELECT user_id FROM events ORDER BY 1", true),
    ("SELECT user_id FROM orders UNION ALL SELECT user_id FROM events ORDER BY 1 LIMIT 30", true),
    ("SELECT id, 'o' FROM orders WHERE qty = 1 UNION ALL SELECT id, 'i' FROM items WHERE qty = 1 ORDER BY 1, 2", true),
    ("(SELECT id FROM orders ORDER BY amount DESC, id LIMIT 3) UNION ALL (SELECT id FROM items ORDER BY price, id LIMIT 2)", false),
    ("SELECT user_id FROM orders INTERSECT SELECT user_id FROM events ORDER BY 1", true),
    ("SELECT id FROM users EXCEPT SELECT user_id FROM orders ORDER BY 1", true),
    ("SELECT country FROM users UNION SELECT category FROM products ORDER BY 1", false),
    ("SELECT kind FROM events UNION SELECT kind FROM events", false),
    // Parts of other shapes: the server unifies their types (INT next to DECIMAL).
    ("SELECT qty FROM orders WHERE user_id = 3 UNION ALL SELECT price FROM items WHERE qty = 1", false),
    ("SELECT name FROM users UNION ALL SELECT sku FROM items WHERE id < 20", false),
    // Window functions.
    ("SELECT id, user_id, RANK() OVER (ORDER BY amount DESC) AS r FROM orders ORDER BY id", true),
    ("SELECT id, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY id) AS n FROM orders ORDER BY id", true),
    ("SELECT id, SUM(amount) OVER (PARTITION BY status ORDER BY id) AS running FROM orders ORDER BY id", true),
    ("SELECT id, DENSE_RANK() OVER (PARTITION BY kind ORDER BY created) FROM events ORDER BY id", true),
    ("SELECT id, LAG(amount) OVER (ORDER BY id), LEAD(qty, 2) OVER (ORDER BY id) FROM orders ORDER BY id", true),
    ("SELECT user_id, COUNT(*) OVER (PARTITION BY user_id) FROM orders WHERE user_id = 7 ORDER BY id", true),
    // Aggregates the merge step does not combine.
    ("SELECT STDDEV(amount), VARIANCE(amount), STDDEV_SAMP(amount), VAR_SAMP(amount), STD(qty) FROM orders", true),
    ("SELECT status, STDDEV_POP(ratio), VAR_POP(ratio) FROM orders GROUP BY status ORDER BY status", true),
    ("SELECT country, GROUP_CONCAT(name ORDER BY id SEPARATOR '|') FROM users GROUP BY country ORDER BY country", false),
    ("SELECT GROUP_CONCAT(DISTINCT status ORDER BY status) FROM orders", true),
    ("SELECT SUM(amount) / COUNT(*), SUM(qty) * 2 FROM orders", true),
    ("SELECT user_id, SUM(amount) / COUNT(*) AS a FROM orders GROUP BY user_id HAVING SUM(amount) / COUNT(*) > 50 ORDER BY user_id", true),
    ("SELECT status, SUM(qty) FROM orders GROUP BY status WITH ROLLUP", false),
    ("SELECT COUNT(DISTINCT user_id), COUNT(DISTINCT product_id), COUNT(DISTINCT qty) FROM orders", true),
    ("SELECT COUNT(DISTINCT user_id, product_id) FROM orders", true),
    ("SELECT SUM(DISTINCT qty), AVG(DISTINCT qty), AVG(DISTINCT amount) FROM orders", true),
    ("SELECT BIT_AND(qty), BIT_OR(qty), BIT_XOR(qty) FROM orders", true),
    ("SELECT status, COUNT(*) FROM orders GROUP BY status ORDER BY status", true),
    ("SELECT id, status FROM orders ORDER BY status, id LIMIT 15", true),
    ("SELECT MAX(weight), MIN(weight), SUM(weight) FROM events", true),
    ("SELECT kind, COUNT(*) FROM events GROUP BY kind ORDER BY kind", true),
    ("SELECT name, COUNT(*) FROM users GROUP BY name ORDER BY name", false),
    // Found by the random test: shards describe an outer join's column differently
    // where one has the row and another has none.
    ("SELECT o.id, p.id FROM orders o LEFT JOIN products p ON o.status = p.name WHERE (o.user_id IS NOT NULL AND o.id IN (15)) ORDER BY o.id, p.id", true),
    // Found by review: a condition must thin only the table of its own scope, and
    // contradictory keys answer nothing.
    ("SELECT u.id FROM users u WHERE u.id > 20 AND u.id IN (SELECT u.user_id FROM orders u) ORDER BY u.id", true),
    ("WITH big AS (SELECT user_id, SUM(amount) AS amount FROM orders GROUP BY user_id) SELECT * FROM big AS orders WHERE orders.amount > 100", false),
    ("SELECT o.id, i.id FROM orders o JOIN items i ON i.order_id = o.id WHERE o.user_id = 1 AND o.user_id = 2", false),
    // Simple shapes that stay direct, kept here so both strategies meet one oracle.
    ("SELECT * FROM orders WHERE user_id = 5 ORDER BY id", true),
    ("SELECT id, created FROM events WHERE created BETWEEN '2024-01-31 23:59:59' AND '2024-02-01 00:00:00' ORDER BY id", true),
    ("SELECT COUNT(*), SUM(amount), AVG(amount) FROM orders", true),
    ("SELECT id FROM users WHERE id IN (-9223372036854775808, 9223372036854775807, 4294967296, -5) ORDER BY id", true),
];

/// The shop's tables as the random generator sees them (tags has no key to order
/// by, so it is left to the hand-written shapes).
pub fn shop_tables() -> Vec<super::gen::Table> {
    use super::gen::{Column, Table, Ty};
    let c = |name, ty| Column { name, ty };
    vec![
        Table {
            name: "users",
            pk: "id",
            columns: vec![
                c("id", Ty::Int),
                c("name", Ty::Str),
                c("country", Ty::Str),
                c("score", Ty::Int),
                c("balance", Ty::Dec),
                c("joined", Ty::Date),
            ],
        },
        Table {
            name: "orders",
            pk: "id",
            columns: vec![
                c("id", Ty::Int),
                c("user_id", Ty::Int),
                c("product_id", Ty::Int),
                c("qty", Ty::Int),
                c("amount", Ty::Dec),
                c("status", Ty::Str),
                c("ratio", Ty::Float),
                c("created", Ty::Date),
            ],
        },
        Table {
            name: "items",
            pk: "id",
            columns: vec![
                c("id", Ty::Int),
                c("order_id", Ty::Int),
                c("sku", Ty::Str),
                c("price", Ty::Dec),
                c("qty", Ty::Int),
            ],
        },
        Table {
            name: "events",
            pk: "id",
            columns: vec![
                c("id", Ty::Int),
                c("user_id", Ty::Int),
                c("kind", Ty::Str),
                c("created", Ty::Date),
                c("weight", Ty::Float),
            ],
        },
        Table {
            name: "products",
            pk: "id",
            columns: vec![
                c("id", Ty::Int),
                c("name", Ty::Str),
                c("category", Ty::Str),
                c("price", Ty::Dec),
            ],
        },
        Table {
            name: "notes",
            pk: "id",
            columns: vec![c("id", Ty::Int), c("user_id", Ty::Int), c("body", Ty::Str)],
        },
    ]
}
