//! The seeded random SELECT generator of the differential tests: tables described by
//! their columns' kinds, then statements on one table (predicates, aggregates, GROUP
//! BY / HAVING / DISTINCT / ORDER BY / LIMIT) and over several or whole tables
//! (joins on any columns, inner and outer, self-joins; subqueries IN, NOT IN, EXISTS,
//! scalar, derived tables; set operations; window functions; the aggregates a
//! shard-by-shard merge cannot combine). Each statement comes with whether its order
//! is total. Shared by `differential.rs` and `cross_shard.rs`.

use tests::rng::Rng;

#[derive(Clone, Copy, PartialEq)]
pub enum Ty {
    Int,
    Dec,
    Float,
    Str,
    Date,
}

pub struct Column {
    pub name: &'static str,
    pub ty: Ty,
}

pub struct Table {
    pub name: &'static str,
    /// Its primary key: ORDER BY it makes any order total.
    pub pk: &'static str,
    pub columns: Vec<Column>,
}

pub fn literal(rng: &mut Rng, ty: Ty) -> String {
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

pub fn predicate(rng: &mut Rng, t: &Table, prefix: &str, depth: usize) -> String {
    if depth < 2 && rng.chance(30) {
        let a = predicate(rng, t, prefix, depth + 1);
        let b = predicate(rng, t, prefix, depth + 1);
        let op = if rng.chance(50) { "AND" } else { "OR" };
        let p = format!("({a} {op} {b})");
        return if rng.chance(15) {
            format!("NOT {p}")
        } else {
            p
        };
    }
    let c = rng.pick(&t.columns);
    let name = format!("{prefix}{}", c.name);
    match rng.below(5) {
        0 => format!(
            "{} IS {}NULL",
            name,
            if rng.chance(50) { "NOT " } else { "" }
        ),
        1 => {
            let items: Vec<String> = (0..1 + rng.below(4)).map(|_| literal(rng, c.ty)).collect();
            format!("{} IN ({})", name, items.join(", "))
        }
        2 => {
            let (a, b) = (literal(rng, c.ty), literal(rng, c.ty));
            format!("{} BETWEEN {a} AND {b}", name)
        }
        _ => {
            let op = rng.pick(&["=", "<>", "<", "<=", ">", ">="]);
            format!("{} {op} {}", name, literal(rng, c.ty))
        }
    }
}

pub fn aggregate(rng: &mut Rng, t: &Table) -> String {
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

/// One random query on one table, and whether its order is total (rows compare
/// in order).
pub fn query(rng: &mut Rng, t: &Table) -> (String, bool) {
    let filter = if rng.chance(60) {
        format!(" WHERE {}", predicate(rng, t, "", 0))
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

/// Two columns that compare as the same kind of value.
fn comparable<'t>(rng: &mut Rng, a: &'t Table, b: &'t Table) -> Option<(&'t Column, &'t Column)> {
    for _ in 0..8 {
        let x = rng.pick(&a.columns);
        let candidates: Vec<&Column> = b.columns.iter().filter(|c| c.ty == x.ty).collect();
        if !candidates.is_empty() {
            return Some((x, candidates[rng.below(candidates.len())]));
        }
    }
    None
}

fn two<'t>(rng: &mut Rng, tables: &'t [Table]) -> (&'t Table, &'t Table) {
    (rng.pick(tables), rng.pick(tables))
}

fn join(rng: &mut Rng, tables: &[Table]) -> Option<(String, bool)> {
    let (a, b) = two(rng, tables);
    let (x, y) = comparable(rng, a, b)?;
    let kind = *rng.pick(&["JOIN", "JOIN", "LEFT JOIN", "RIGHT JOIN"]);
    let on = format!(
        "a.{} {} b.{}",
        x.name,
        rng.pick(&["=", "=", "<", "<=>"]),
        y.name
    );
    let filter = match rng.below(3) {
        0 => format!(" WHERE {}", predicate(rng, a, "a.", 1)),
        1 => format!(
            " WHERE {} AND {}",
            predicate(rng, a, "a.", 1),
            predicate(rng, b, "b.", 1)
        ),
        _ => String::new(),
    };
    let from = format!("{} a {kind} {} b ON {on}{filter}", a.name, b.name);
    Some(if rng.chance(50) {
        // Pairs of keys: unique per row of the join, a total order.
        let limit = if rng.chance(30) {
            format!(" LIMIT {}", rng.below(30))
        } else {
            String::new()
        };
        (
            format!(
                "SELECT a.{}, b.{} FROM {from} ORDER BY a.{}, b.{}{limit}",
                a.pk, b.pk, a.pk, b.pk
            ),
            true,
        )
    } else {
        let g = rng.pick(&a.columns);
        let num: Vec<&Column> = b
            .columns
            .iter()
            .filter(|c| matches!(c.ty, Ty::Int | Ty::Dec))
            .collect();
        let agg = if num.is_empty() {
            format!("COUNT(DISTINCT b.{})", rng.pick(&b.columns).name)
        } else {
            format!("SUM(b.{})", num[rng.below(num.len())].name)
        };
        (
            format!(
                "SELECT a.{}, COUNT(*), {agg} FROM {from} GROUP BY a.{}",
                g.name, g.name
            ),
            false,
        )
    })
}

fn subquery(rng: &mut Rng, tables: &[Table]) -> Option<(String, bool)> {
    let (a, b) = two(rng, tables);
    let (x, y) = comparable(rng, a, b)?;
    let inner_filter = if rng.chance(50) {
        format!(" WHERE {}", predicate(rng, b, "b.", 1))
    } else {
        String::new()
    };
    let sql = match rng.below(6) {
        0 => format!(
            "SELECT a.{} FROM {} a WHERE a.{} {}IN (SELECT b.{} FROM {} b{inner_filter}) ORDER BY a.{}",
            a.pk,
            a.name,
            x.name,
            if rng.chance(40) { "NOT " } else { "" },
            y.name,
            b.name,
            a.pk
        ),
        1 => format!(
            "SELECT a.{} FROM {} a WHERE {}EXISTS (SELECT 1 FROM {} b WHERE b.{} = a.{}{}) ORDER BY a.{}",
            a.pk,
            a.name,
            if rng.chance(40) { "NOT " } else { "" },
            b.name,
            y.name,
            x.name,
            inner_filter.replacen(" WHERE", " AND", 1),
            a.pk
        ),
        2 => format!(
            "SELECT a.{}, (SELECT COUNT(*) FROM {} b WHERE b.{} = a.{}) FROM {} a ORDER BY a.{}",
            a.pk, b.name, y.name, x.name, a.name, a.pk
        ),
        3 => {
            let num: Vec<&Column> = a
                .columns
                .iter()
                .filter(|c| matches!(c.ty, Ty::Int | Ty::Dec))
                .collect();
            let n = num.get(rng.below(num.len().max(1)))?;
            format!(
                "SELECT a.{} FROM {} a WHERE a.{} > (SELECT AVG(b.{}) FROM {} b) ORDER BY a.{}",
                a.pk, a.name, n.name, n.name, a.name, a.pk
            )
        }
        4 => format!(
            "SELECT d.v, COUNT(*) FROM (SELECT a.{} AS v FROM {} a WHERE {}) d GROUP BY d.v",
            x.name,
            a.name,
            predicate(rng, a, "a.", 1)
        ),
        _ => format!(
            "SELECT a.{} FROM {} a WHERE a.{} = ANY (SELECT b.{} FROM {} b{inner_filter}) ORDER BY a.{}",
            a.pk, a.name, x.name, y.name, b.name, a.pk
        ),
    };
    let ordered = !sql.contains("GROUP BY d.v");
    Some((sql, ordered))
}

fn set_operation(rng: &mut Rng, tables: &[Table]) -> Option<(String, bool)> {
    let (a, b) = two(rng, tables);
    let (x, y) = comparable(rng, a, b)?;
    let op = *rng.pick(&["UNION", "UNION ALL", "INTERSECT", "EXCEPT"]);
    let part = |rng: &mut Rng, t: &Table, c: &Column| {
        if rng.chance(50) {
            format!(
                "SELECT {} FROM {} WHERE {}",
                c.name,
                t.name,
                predicate(rng, t, "", 1)
            )
        } else {
            format!("SELECT {} FROM {}", c.name, t.name)
        }
    };
    let sql = format!("{} {op} {}", part(rng, a, x), part(rng, b, y));
    // Equal strings may differ in case: only other columns order totally.
    if x.ty != Ty::Str && rng.chance(60) {
        let limit = if rng.chance(40) {
            format!(" LIMIT {}", rng.below(20))
        } else {
            String::new()
        };
        return Some((format!("{sql} ORDER BY 1{limit}"), true));
    }
    Some((sql, false))
}

fn window(rng: &mut Rng, tables: &[Table]) -> Option<(String, bool)> {
    let t = rng.pick(tables);
    let c = rng.pick(&t.columns);
    let num: Vec<&Column> = t
        .columns
        .iter()
        .filter(|c| matches!(c.ty, Ty::Int | Ty::Dec))
        .collect();
    let n = num.get(rng.below(num.len().max(1)))?;
    let f = match rng.below(6) {
        0 => format!(
            "ROW_NUMBER() OVER (PARTITION BY {} ORDER BY {})",
            c.name, t.pk
        ),
        1 => format!("RANK() OVER (ORDER BY {}, {})", n.name, t.pk),
        2 => format!(
            "DENSE_RANK() OVER (PARTITION BY {} ORDER BY {})",
            c.name, n.name
        ),
        3 => format!("SUM({}) OVER (PARTITION BY {})", n.name, c.name),
        4 => format!("LAG({}) OVER (ORDER BY {})", c.name, t.pk),
        _ => "COUNT(*) OVER ()".to_string(),
    };
    let filter = if rng.chance(40) {
        format!(" WHERE {}", predicate(rng, t, "", 1))
    } else {
        String::new()
    };
    Some((
        format!(
            "SELECT {}, {f} FROM {}{filter} ORDER BY {}",
            t.pk, t.name, t.pk
        ),
        true,
    ))
}

fn hard_aggregate(rng: &mut Rng, tables: &[Table]) -> Option<(String, bool)> {
    let t = rng.pick(tables);
    let num: Vec<&Column> = t
        .columns
        .iter()
        .filter(|c| matches!(c.ty, Ty::Int | Ty::Dec | Ty::Float))
        .collect();
    let n = num.get(rng.below(num.len().max(1)))?.name;
    let c = rng.pick(&t.columns).name;
    let d = rng.pick(&t.columns).name;
    let agg = match rng.below(9) {
        0 => format!("STDDEV({n}), VARIANCE({n})"),
        1 => format!("STDDEV_SAMP({n}), VAR_SAMP({n})"),
        2 => format!("GROUP_CONCAT({c} ORDER BY {} SEPARATOR '|')", t.pk),
        3 => format!("SUM({n}) / COUNT(*), MAX({n}) - MIN({n})"),
        4 => format!("COUNT(DISTINCT {c}, {d})"),
        5 => format!("SUM(DISTINCT {n}), AVG(DISTINCT {n})"),
        6 => format!("COUNT(DISTINCT {c}), COUNT(DISTINCT {d})"),
        7 => format!("BIT_OR({n}), BIT_XOR({n}), BIT_AND({n})"),
        _ => format!("{}, COUNT(*)", aggregate(rng, t)),
    };
    let filter = if rng.chance(40) {
        format!(" WHERE {}", predicate(rng, t, "", 1))
    } else {
        String::new()
    };
    let g = rng.pick(&t.columns);
    // MariaDB 10.11 answers COUNT(DISTINCT ...) wrongly on the ROLLUP row when the
    // grouping column is the primary key (it adds up the groups' counts); shardgate's
    // copies have no primary key and answer right, so the oracle cannot judge it.
    let rollup = g.name != t.pk;
    Some(match rng.below(3) {
        0 => (format!("SELECT {agg} FROM {}{filter}", t.name), true),
        1 if rollup => (
            format!(
                "SELECT {}, {agg} FROM {}{filter} GROUP BY {} WITH ROLLUP",
                g.name, t.name, g.name
            ),
            false,
        ),
        _ => {
            let having = format!(
                "HAVING COUNT(*) {} {}",
                rng.pick(&[">", "<", "="]),
                literal(rng, Ty::Int)
            );
            (
                format!(
                    "SELECT {}, {agg} FROM {}{filter} GROUP BY {} {having}",
                    g.name, t.name, g.name
                ),
                false,
            )
        }
    })
}

/// One random statement over several tables or needing a table whole (the
/// shapes above).
pub fn cross_query(rng: &mut Rng, tables: &[Table]) -> (String, bool) {
    loop {
        let made = match rng.below(5) {
            0 => join(rng, tables),
            1 => subquery(rng, tables),
            2 => set_operation(rng, tables),
            3 => window(rng, tables),
            _ => hard_aggregate(rng, tables),
        };
        if let Some(q) = made {
            return q;
        }
    }
}
