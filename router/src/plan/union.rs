//! UNION over shards: parts on one shard, or UNION ALL part by part.

use super::*;

/// `(SELECT ...) UNION (SELECT ...)`: parts in parentheses are queries of their own
/// to the parser, but not subqueries.
pub(super) fn parenthesized_union_parts(statement: &Statement) -> usize {
    fn count(body: &SetExpr) -> usize {
        match body {
            SetExpr::Query(q) => 1 + count(q.body.as_ref()),
            SetExpr::SetOperation { left, right, .. } => count(left) + count(right),
            _ => 0,
        }
    }
    match statement {
        Statement::Query(q) if matches!(q.body.as_ref(), SetExpr::SetOperation { .. }) => {
            count(q.body.as_ref())
        }
        _ => 0,
    }
}

/// The SELECTs of a UNION; true when every UNION is UNION ALL.
pub(super) fn union_parts<'q>(
    body: &'q SetExpr,
    out: &mut Vec<&'q sqlparser::ast::Select>,
) -> Result<bool, RouteError> {
    use sqlparser::ast::{SetOperator, SetQuantifier};
    match body {
        SetExpr::Select(s) => {
            out.push(s);
            Ok(true)
        }
        SetExpr::Query(q) if q.order_by.is_none() && q.limit_clause.is_none() => {
            union_parts(q.body.as_ref(), out)
        }
        SetExpr::SetOperation {
            left,
            op: SetOperator::Union,
            set_quantifier,
            right,
        } => {
            let l = union_parts(left, out)?;
            let r = union_parts(right, out)?;
            Ok(l && r && matches!(set_quantifier, SetQuantifier::All))
        }
        _ => Err(RouteError::Unsupported(
            "INTERSECT, EXCEPT or a part with its own ORDER BY/LIMIT over sharded tables".into(),
        )),
    }
}

/// True when the parts select the same list from the same tables: their rows then
/// have one shape, and a UNION ALL is their rows one after another. Parts that
/// differ have their column types unified by the server (an INT part next to a
/// DECIMAL one answers `1.0`), which only the server can do.
pub(super) fn same_shape(parts: &[&sqlparser::ast::Select]) -> bool {
    let shape = |s: &sqlparser::ast::Select| {
        let items: Vec<String> = s.projection.iter().map(|i| i.to_string()).collect();
        let from: Vec<String> = s.from.iter().map(|f| f.to_string()).collect();
        (items, from)
    };
    parts.windows(2).all(|w| shape(w[0]) == shape(w[1]))
}

/// UNION ALL whose parts go to different shards: each part is planned on its own,
/// and the answer is their rows one part after another.
pub(super) fn plan_union_all(
    text: &str,
    schema: &LogicalSchema,
    rt: &Runtime,
    foreign: bool,
    reading: Reading,
) -> Result<Prepared, RouteError> {
    let mut targets = Vec::new();
    for part in clauses::union_all_parts(text, reading) {
        // Parts are planned directly: a part that needs a gather needs the whole
        // statement gathered.
        let planned = plan_direct(part.as_bytes(), schema, rt, false, foreign, reading)?;
        match planned {
            Some(p)
                if p.plan.gather.is_none()
                    && matches!(p.plan.merge, Merge::Single | Merge::Concat | Merge::Any) =>
            {
                targets.extend(p.plan.targets)
            }
            Some(_) => {
                return Err(RouteError::Unsupported(
                    "a UNION ALL part that needs merging (ORDER BY, LIMIT, aggregates) over several shards"
                        .into(),
                ))
            }
            None => targets.push(Target {
                node: schema.node,
                shard: None,
                sql: part.to_string(),
            }),
        }
    }
    Ok(Prepared {
        plan: Plan {
            targets,
            write: false,
            scatter: false,
            merge: Merge::Concat,
            fill_global_id: None,
            gather: None,
            load: None,
        },
        routing: Routing::Fixed,
        algorithm: None,
        params: 0,
    })
}
