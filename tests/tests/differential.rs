//! The random differential test: seeded random SELECTs (predicates, aggregates,
//! GROUP BY / HAVING / DISTINCT / ORDER BY / LIMIT) over every table kind (sharded by
//! an integer rule and by a string hash, broadcast, single), run through shardgate and
//! against the same rows in one plain MariaDB database, compared value for value.
//!
//! Comparison rules: rows are compared in order only under a total ORDER BY (and LIMIT
//! appears only with one); floating-point results are compared to 12 significant
//! digits (shards add in another order); strings are compared as the ci collation
//! does (the server may pick any spelling of a group). A refusal (1235) is allowed: it
//! is not a wrong answer. Anything else that differs is a failure.
//!
//! `scripts/test` runs 300 queries; `scripts/differential [QUERIES] [SEED]` runs more.

use std::sync::OnceLock;

use mysql_async::prelude::*;
use mysql_async::{Conn, Value};
use tests::rng::Rng;
use tests::{direct, error_code, Proxy, Sandbox, PASSWORD, USER};

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[0, 0]).expect("start the MariaDB sandbox"))
}

#[derive(Clone, Copy, PartialEq)]
enum Ty {
    Int,
    Dec,
    Float,
    Str,
    Date,
}

struct Column {
    name: &'static str,
    ty: Ty,
}

struct Table {
    name: &'static str,
    /// Its primary key: ORDER BY it makes any order total.
    pk: &'static str,
    columns: Vec<Column>,
    ddl: &'static str,
    rows: Vec<String>,
}

const NOTES: [&str; 10] = [
    "'a'", "'A'", "'a '", "'b'", "'é'", "'E'", "NULL", "'zz'", "'Zz'", "'m'",
];

fn tables() -> Vec<Table> {
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
        Table {
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
        Table {
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
        Table {
            name: "products",
            pk: "pid",
            columns: vec![c("pid", Ty::Int), c("name", Ty::Str), c("cost", Ty::Dec)],
            ddl: "(pid INT PRIMARY KEY, name VARCHAR(20), cost DECIMAL(8,2))",
            rows: products,
        },
        Table {
            name: "notes",
            pk: "nid",
            columns: vec![c("nid", Ty::Int), c("grp", Ty::Int), c("body", Ty::Str)],
            ddl: "(nid INT PRIMARY KEY, grp INT, body VARCHAR(20))",
            rows: notes,
        },
    ]
}

fn literal(rng: &mut Rng, ty: Ty) -> String {
    match ty {
        Ty::Int => (rng.below(60) as i64 - 10).to_string(),
        Ty::Dec => format!("{}.{:02}", rng.below(500) as i64 - 100, rng.below(100)),
        Ty::Float => format!("{}", rng.below(40) as f64 * 0.25),
        Ty::Str => rng
            .pick(&["'a'", "'b'", "'zz'", "'m'", "'k3'", "'k10'", "'p1'", "'e'"])
            .to_string(),
        Ty::Date => format!("'2024-{:02}-{:02}'", rng.below(12) + 1, rng.below(28) + 1),
    }
}

fn predicate(rng: &mut Rng, t: &Table, depth: usize) -> String {
    if depth < 2 && rng.chance(30) {
        let a = predicate(rng, t, depth + 1);
        let b = predicate(rng, t, depth + 1);
        let op = if rng.chance(50) { "AND" } else { "OR" };
        let p = format!("({a} {op} {b})");
        return if rng.chance(15) {
            format!("NOT {p}")
        } else {
            p
        };
    }
    let c = rng.pick(&t.columns);
    match rng.below(5) {
        0 => format!(
            "{} IS {}NULL",
            c.name,
            if rng.chance(50) { "NOT " } else { "" }
        ),
        1 => {
            let items: Vec<String> = (0..1 + rng.below(4)).map(|_| literal(rng, c.ty)).collect();
            format!("{} IN ({})", c.name, items.join(", "))
        }
        2 => {
            let (a, b) = (literal(rng, c.ty), literal(rng, c.ty));
            format!("{} BETWEEN {a} AND {b}", c.name)
        }
        _ => {
            let op = rng.pick(&["=", "<>", "<", "<=", ">", ">="]);
            format!("{} {op} {}", c.name, literal(rng, c.ty))
        }
    }
}

fn aggregate(rng: &mut Rng, t: &Table) -> String {
    let c = rng.pick(&t.columns);
    let numeric = matches!(c.ty, Ty::Int | Ty::Dec | Ty::Float);
    match rng.below(7) {
        0 => "COUNT(*)".into(),
        1 => format!("COUNT({})", c.name),
        2 => format!("COUNT(DISTINCT {})", c.name),
        3 if numeric => format!("SUM({})", c.name),
        4 if numeric => format!("AVG({})", c.name),
        5 => format!("MIN({})", c.name),
        _ => format!("MAX({})", c.name),
    }
}

/// One random query, and whether its order is total (rows compare in order).
fn query(rng: &mut Rng, t: &Table) -> (String, bool) {
    let filter = if rng.chance(60) {
        format!(" WHERE {}", predicate(rng, t, 0))
    } else {
        String::new()
    };
    let limit = |rng: &mut Rng| match rng.below(3) {
        0 => format!(" LIMIT {}", rng.below(20)),
        1 => format!(" LIMIT {}, {}", rng.below(10), 1 + rng.below(15)),
        _ => String::new(),
    };
    let dir = |rng: &mut Rng| if rng.chance(40) { " DESC" } else { "" };
    match rng.below(4) {
        // Plain rows.
        0 => {
            let n = 1 + rng.below(3);
            let cols: Vec<&str> = (0..n).map(|_| rng.pick(&t.columns).name).collect();
            let cols = cols.join(", ");
            if rng.chance(70) {
                let first = rng.pick(&t.columns).name;
                let order = format!(" ORDER BY {first}{}, {}{}", dir(rng), t.pk, dir(rng));
                let lim = limit(rng);
                (
                    format!("SELECT {cols} FROM {}{filter}{order}{lim}", t.name),
                    true,
                )
            } else {
                (format!("SELECT {cols} FROM {}{filter}", t.name), false)
            }
        }
        // Aggregates over the whole table.
        1 => {
            let aggs: Vec<String> = (0..1 + rng.below(4)).map(|_| aggregate(rng, t)).collect();
            (
                format!("SELECT {} FROM {}{filter}", aggs.join(", "), t.name),
                true,
            )
        }
        // GROUP BY, maybe HAVING, maybe a total order and LIMIT.
        2 => {
            let g = rng.pick(&t.columns).name;
            let aggs: Vec<String> = (0..1 + rng.below(3)).map(|_| aggregate(rng, t)).collect();
            let having = if rng.chance(30) {
                format!(
                    " HAVING {} {} {}",
                    aggregate(rng, t),
                    rng.pick(&[">", "<", ">=", "="]),
                    rng.below(10)
                )
            } else {
                String::new()
            };
            let base = format!(
                "SELECT {g}, {} FROM {}{filter} GROUP BY {g}{having}",
                aggs.join(", "),
                t.name
            );
            if rng.chance(60) {
                let lim = limit(rng);
                (format!("{base} ORDER BY {g}{}{lim}", dir(rng)), true)
            } else {
                (base, false)
            }
        }
        // DISTINCT.
        _ => {
            let a = rng.pick(&t.columns).name;
            let b = rng.pick(&t.columns).name;
            let cols = if a == b {
                a.to_string()
            } else {
                format!("{a}, {b}")
            };
            if rng.chance(50) {
                let lim = limit(rng);
                (
                    format!(
                        "SELECT DISTINCT {cols} FROM {}{filter} ORDER BY {cols}{lim}",
                        t.name
                    ),
                    // Collation-equal spellings make string orders partial.
                    !t.columns
                        .iter()
                        .any(|c| c.ty == Ty::Str && (c.name == a || c.name == b)),
                )
            } else {
                (
                    format!("SELECT DISTINCT {cols} FROM {}{filter}", t.name),
                    false,
                )
            }
        }
    }
}

/// A value as the comparison rules see it.
fn normal(v: &Value) -> String {
    match v {
        Value::NULL => "NULL".into(),
        Value::Bytes(b) => {
            let s = String::from_utf8_lossy(b);
            if s.contains(['.', 'e', 'E']) {
                if let Ok(f) = s.parse::<f64>() {
                    return format!("{f:.11e}");
                }
            }
            s.trim_end().to_lowercase().replace('é', "e")
        }
        other => format!("{other:?}"),
    }
}

async fn answer(c: &mut Conn, sql: &str) -> Result<Vec<Vec<String>>, mysql_async::Error> {
    let rows: Vec<mysql_async::Row> = c.query(sql).await?;
    Ok(rows
        .into_iter()
        .map(|r| r.unwrap().iter().map(normal).collect())
        .collect())
}

/// A query whose rows differ only in which collation-equal spelling the server
/// picked, or in the order of rows a partial order leaves open, is not a failure.
fn same(mut got: Vec<Vec<String>>, mut want: Vec<Vec<String>>, ordered: bool) -> bool {
    if !ordered {
        got.sort();
        want.sort();
    }
    got == want
}

#[tokio::test]
async fn random_selects_match_one_mariadb() {
    let queries: usize = std::env::var("SHARDGATE_DIFF_QUERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seed: u64 = std::env::var("SHARDGATE_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0xD1FF_5EED);
    let db = "diff";
    let oracle_db = "diff_oracle";
    let s = sandbox();
    for g in &s.groups {
        let mut c = direct(&g.primary, None).await;
        for name in [db, oracle_db] {
            c.query_drop(format!("DROP DATABASE IF EXISTS {name}"))
                .await
                .unwrap();
            c.query_drop(format!(
                "CREATE DATABASE {name} DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_general_ci"
            ))
            .await
            .unwrap();
        }
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
    let tables = tables();
    for t in &tables {
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
    }

    let mut rng = Rng(seed);
    let (mut compared, mut refused) = (0, 0);
    let mut failures = Vec::new();
    for _ in 0..queries {
        let t = &tables[rng.below(tables.len())];
        let (sql, ordered) = query(&mut rng, t);
        let want = answer(&mut oracle, &sql).await;
        let got = answer(&mut sharded, &sql).await;
        match (got, want) {
            (Ok(got), Ok(want)) => {
                compared += 1;
                if !same(got.clone(), want.clone(), ordered) {
                    failures.push(format!(
                        "{sql}\n  shardgate: {got:?}\n  mariadb:   {want:?}"
                    ));
                }
            }
            (Err(e), Ok(_)) if error_code(&e) == Some(1235) => refused += 1,
            (Err(e), Ok(_)) => failures.push(format!("{sql}\n  shardgate failed: {e}")),
            // The generator wrote something MariaDB itself refuses: nothing to compare.
            (_, Err(_)) => {}
        }
    }
    eprintln!(
        "differential (seed {seed}): {compared} compared, {refused} refused, {} wrong",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {queries} queries differ (seed {seed}); first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // A run that compares almost nothing proves nothing.
    assert!(
        compared > queries / 2,
        "only {compared} of {queries} compared"
    );
}
