//! The random differential tests, seeded. Random SELECTs over every table kind
//! (sharded by an integer rule and by a string hash, broadcast, single): one table
//! at a time (predicates, aggregates, GROUP BY / HAVING / DISTINCT / ORDER BY /
//! LIMIT) and over several or whole tables (joins, subqueries, set operations,
//! window functions, the harder aggregates; see `differential/shapes.rs`), run
//! through shardgate and against the same rows in one plain MariaDB database,
//! compared value for value (`tests::compare`). A refusal is a failure: every
//! SELECT is to be answered. A second test partitions random predicates (TLP).
//!
//! `scripts/test` runs 300 queries and 150 partitions; `scripts/differential
//! [QUERIES] [SEED]` runs more.

use std::sync::OnceLock;

#[path = "differential/gen.rs"]
mod gen;

use gen::{predicate, query, Column, Table, Ty};
use mysql_async::prelude::*;
use mysql_async::Conn;
use tests::compare::{answer, compare_all, run_size, same};
use tests::rng::Rng;
use tests::{direct, Proxy, Sandbox, PASSWORD, USER};

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[0, 0]).expect("start the MariaDB sandbox"))
}

/// A table of the test: its shape for the generator, its DDL and its rows.
struct Loaded {
    name: &'static str,
    pk: &'static str,
    columns: Vec<Column>,
    ddl: &'static str,
    rows: Vec<String>,
}

const NOTES: [&str; 10] = [
    "'a'", "'A'", "'a '", "'b'", "'é'", "'E'", "NULL", "'zz'", "'Zz'", "'m'",
];

fn tables() -> Vec<Loaded> {
    let c = |name, ty| Column { name, ty };
    let orders = (1..=200i64)
        .map(|i| {
            let amount = if i % 11 == 0 {
                "NULL".into()
            } else {
                format!("{}.{:02}", (i * 7919) % 500 - 100, (i * 31) % 100)
            };
            let qty = if i % 13 == 0 {
                "NULL".into()
            } else {
                ((i * 17) % 23 - 8).to_string()
            };
            format!(
                "({i}, {}, {amount}, {qty}, {}, {}, '2024-{:02}-{:02}')",
                i % 37 + 1,
                ((i * 13) % 40) as f64 * 0.25,
                NOTES[(i as usize * 7) % NOTES.len()],
                i % 12 + 1,
                i % 28 + 1
            )
        })
        .collect();
    let events = (1..=90i64)
        .map(|i| {
            format!(
                "({i}, 'k{}', {}, {})",
                i % 17,
                (i * 29) % 50 - 10,
                NOTES[(i as usize * 3) % NOTES.len()]
            )
        })
        .collect();
    let products = (1..=12i64)
        .map(|i| format!("({i}, 'p{}', {}.{:02})", i % 5, i * 3, i * 7 % 100))
        .collect();
    let notes = (1..=25i64)
        .map(|i| format!("({i}, {}, {})", i % 4, NOTES[i as usize % NOTES.len()]))
        .collect();
    vec![
        Loaded {
            name: "orders",
            pk: "id",
            columns: vec![
                c("id", Ty::Int),
                c("user_id", Ty::Int),
                c("amount", Ty::Dec),
                c("qty", Ty::Int),
                c("price", Ty::Float),
                c("note", Ty::Str),
                c("day", Ty::Date),
            ],
            ddl: "(id INT PRIMARY KEY, user_id INT NOT NULL, amount DECIMAL(10,2), qty INT, \
                  price DOUBLE, note VARCHAR(20), day DATE)",
            rows: orders,
        },
        Loaded {
            name: "events",
            pk: "eid",
            columns: vec![
                c("eid", Ty::Int),
                c("k", Ty::Str),
                c("score", Ty::Int),
                c("tag", Ty::Str),
            ],
            ddl: "(eid INT PRIMARY KEY, k VARCHAR(10) NOT NULL, score INT, tag VARCHAR(10))",
            rows: events,
        },
        Loaded {
            name: "products",
            pk: "pid",
            columns: vec![c("pid", Ty::Int), c("name", Ty::Str), c("cost", Ty::Dec)],
            ddl: "(pid INT PRIMARY KEY, name VARCHAR(20), cost DECIMAL(8,2))",
            rows: products,
        },
        Loaded {
            name: "notes",
            pk: "nid",
            columns: vec![c("nid", Ty::Int), c("grp", Ty::Int), c("body", Ty::Str)],
            ddl: "(nid INT PRIMARY KEY, grp INT, body VARCHAR(20))",
            rows: notes,
        },
    ]
}

/// Statements this test once found answered wrong (or refused), with whether
/// their order is total.
const FOUND: &[(&str, bool)] = &[
    // Outer joins keeping a broadcast table's rows: each shard answered them.
    ("SELECT a.cost, COUNT(*), SUM(b.id) FROM products a LEFT JOIN orders b ON a.cost = b.amount GROUP BY a.cost", false),
    ("SELECT a.score, COUNT(*), SUM(b.cost) FROM events a RIGHT JOIN products b ON a.tag <=> b.name GROUP BY a.score", false),
    ("SELECT a.pid, b.id FROM products a LEFT JOIN orders b ON a.cost = b.amount ORDER BY a.pid, b.id", true),
    // UNION ALL of parts of other shapes: the server unifies their types.
    ("SELECT name FROM products UNION ALL SELECT note FROM orders", false),
    ("SELECT grp FROM notes WHERE grp IN (16, 35) UNION ALL SELECT score FROM events", false),
    // Shards describing an outer join's column differently.
    ("SELECT a.id, b.pid FROM orders a LEFT JOIN products b ON a.note = b.name WHERE (a.user_id IS NOT NULL AND a.id IN (15)) ORDER BY a.id, b.pid", true),
];

/// The tables behind a shardgate in `db` and, with the same rows, in the plain
/// database `{db}_oracle` on dn1.
async fn load(db: &str) -> (Proxy, Conn, Conn, Vec<Table>) {
    let oracle_db = format!("{db}_oracle");
    let oracle_db = oracle_db.as_str();
    let s = sandbox();
    for name in [db, oracle_db] {
        tests::recreate_db_ci(s, name).await;
    }
    let (g1, g2) = (&s.groups[0], &s.groups[1]);
    let proxy = Proxy::with_config(&format!(
        "[[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [nodes.dn1]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [nodes.dn2]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [rules.by_user]\nalgorithm = \"mod\"\nshards = 4\n\
         [rules.by_key]\nalgorithm = \"hash_mod\"\nshards = 2\n\
         [schemas.{db}]\nnode = \"dn1\"\n\
         [schemas.{db}.tables.orders]\nkind = \"sharded\"\ncolumn = \"user_id\"\nrule = \"by_user\"\nnodes = [\"dn1\", \"dn2\"]\ntables_per_node = 2\n\
         [schemas.{db}.tables.events]\nkind = \"sharded\"\ncolumn = \"k\"\nrule = \"by_key\"\nnodes = [\"dn1\", \"dn2\"]\n\
         [schemas.{db}.tables.products]\nkind = \"broadcast\"\n\
         [schemas.{db}.tables.notes]\nkind = \"single\"\nnode = \"dn2\"\n",
        g1.primary.address(),
        g2.primary.address(),
    ));
    let mut sharded = proxy.conn(Some(db)).await;
    let mut oracle = direct(&g1.primary, Some(oracle_db)).await;
    let mut tables = Vec::new();
    for t in self::tables() {
        for c in [&mut sharded, &mut oracle] {
            c.query_drop(format!("CREATE TABLE {} {}", t.name, t.ddl))
                .await
                .unwrap();
            let names: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
            c.query_drop(format!(
                "INSERT INTO {} ({}) VALUES {}",
                t.name,
                names.join(", "),
                t.rows.join(", ")
            ))
            .await
            .unwrap();
        }
        tables.push(Table {
            name: t.name,
            pk: t.pk,
            columns: t.columns,
        });
    }
    (proxy, sharded, oracle, tables)
}

#[tokio::test]
async fn random_selects_match_one_mariadb() {
    let (queries, seed) = run_size(300, 0xD1FF_5EED);
    let (_proxy, mut sharded, mut oracle, tables) = load("diff").await;
    let mut rng = Rng(seed);
    // Every difference the generator ever found, first, as it found them.
    let found = FOUND
        .iter()
        .map(|(sql, ordered)| (sql.to_string(), *ordered));
    let random = (0..queries).map(|_| {
        // Half on one table, half over several or needing a table whole.
        if rng.chance(50) {
            let t = &tables[rng.below(tables.len())];
            query(&mut rng, t)
        } else {
            gen::cross_query(&mut rng, &tables)
        }
    });
    let all: Vec<(String, bool)> = found.chain(random).collect();
    let planned = all.len();
    compare_all(&mut sharded, &mut oracle, all)
        .await
        .assert_none("differential", planned, seed);
}

/// Ternary logic partitioning (SQLancer's TLP): for any predicate p, the rows where
/// p is true, false and NULL are together exactly the rows without a condition.
/// Checked through shardgate alone, on one table and on joins, so a wrong answer
/// shows even where both sides of a direct comparison could share a mistake.
#[tokio::test]
async fn partitioned_by_a_predicate_rows_add_up_to_the_whole() {
    let (queries, seed) = run_size(150, 0xD1FF_5EED);
    let (_proxy, mut sharded, _oracle, tables) = load("tlp").await;
    let mut rng = Rng(seed ^ 0x7197);
    let mut failures = Vec::new();
    for _ in 0..queries {
        let a = rng.pick(&tables);
        let b = rng.pick(&tables);
        let (from, keys, p) = if rng.chance(50) {
            (
                a.name.to_string(),
                a.pk.to_string(),
                predicate(&mut rng, a, "", 0),
            )
        } else {
            let p = if rng.chance(50) {
                predicate(&mut rng, a, "a.", 0)
            } else {
                predicate(&mut rng, b, "b.", 0)
            };
            let kind = *rng.pick(&["JOIN", "LEFT JOIN"]);
            let x = rng.pick(&a.columns);
            let on = match b.columns.iter().find(|c| c.ty == x.ty) {
                Some(y) => format!("a.{} = b.{}", x.name, y.name),
                None => "a.{} IS NOT NULL".replace("{}", x.name),
            };
            (
                format!("{} a {kind} {} b ON {on}", a.name, b.name),
                format!("a.{}, b.{}", a.pk, b.pk),
                p,
            )
        };
        let whole = format!("SELECT {keys} FROM {from}");
        let mut parts = Vec::new();
        for cond in [p.clone(), format!("NOT ({p})"), format!("({p}) IS NULL")] {
            match answer(&mut sharded, &format!("{whole} WHERE {cond}")).await {
                Ok(rows) => parts.extend(rows),
                Err(e) => failures.push(format!("{whole} WHERE {cond}\n  shardgate failed: {e}")),
            }
        }
        match answer(&mut sharded, &whole).await {
            Ok(all) if same(parts.clone(), all.clone(), false) => {}
            Ok(all) => failures.push(format!(
                "{whole} split by {p}: {} rows in the parts, {} in the whole",
                parts.len(),
                all.len()
            )),
            Err(e) => failures.push(format!("{whole}\n  shardgate failed: {e}")),
        }
    }
    eprintln!(
        "ternary partitions (seed {seed}): {queries} checked, {} wrong",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {queries} partitions differ (seed {seed}):\n{}",
        failures.len(),
        failures
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
