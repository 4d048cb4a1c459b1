//! Random statements over several tables, or that need all of a table's rows at
//! once: joins (on any columns, inner and outer, self-joins), subqueries (IN, NOT
//! IN, EXISTS, scalar, derived tables), set operations, window functions and the
//! aggregates a shard-by-shard merge cannot combine. Each comes with whether its
//! order is total.

use tests::rng::Rng;

use super::{aggregate, literal, predicate, Column, Table, Ty};

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

/// One random statement of the shapes above.
pub fn query(rng: &mut Rng, tables: &[Table]) -> (String, bool) {
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
