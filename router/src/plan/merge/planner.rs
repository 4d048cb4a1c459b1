//! Building a merge plan from a parsed SELECT: what each shard sends, in which
//! order, and how the merge combines it.

use super::*;
use crate::reading::Reading;

/// The merge for a SELECT that runs on several shards, with the edits that give each
/// shard its part. `None`: the shards' rows one after another are the answer.
pub fn plan(
    text: &str,
    q: &Query,
    select: &Select,
    key: &KeyColumn<'_>,
    reading: Reading,
) -> Result<Option<(MergeSpec, Vec<Splice>)>, RouteError> {
    let item_exprs = select.projection.iter().filter_map(|i| match i {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    });
    // Window functions partitioned by the shard key see, on each shard, every row
    // of each of their partitions: each shard computes them right, and only the
    // rows are merged. Any other window needs every row at once (a gather).
    let order_exprs = q.order_by.iter().flat_map(|o| match &o.kind {
        OrderByKind::Expressions(list) => list.iter().map(|e| &e.expr).collect::<Vec<_>>(),
        OrderByKind::All(_) => Vec::new(),
    });
    let windowed = item_exprs
        .clone()
        .chain(order_exprs.clone())
        .any(has_window);
    let local_windows = windowed
        && select.named_window.is_empty()
        && item_exprs
            .clone()
            .chain(order_exprs)
            .all(|e| !calls(e, |f| f.over.is_some() && !partitioned_by_key(f, key)));
    if (windowed || !select.named_window.is_empty()) && !local_windows {
        return Err(unsupported("window functions"));
    }
    let aggregating_items = select.projection.iter().any(|i| match i {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => has_aggregate(e),
        _ => false,
    });
    let group_exprs: &[Expr] = match &select.group_by {
        GroupByExpr::Expressions(e, modifiers) => {
            if !modifiers.is_empty() {
                return Err(unsupported("GROUP BY ... WITH ROLLUP"));
            }
            e
        }
        GroupByExpr::All(_) => return Err(unsupported("GROUP BY ALL")),
    };
    let distinct = match &select.distinct {
        None | Some(Distinct::All) => false,
        Some(Distinct::Distinct) => true,
        Some(_) => return Err(unsupported("DISTINCT ON")),
    };
    let aggregating = aggregating_items || !group_exprs.is_empty() || select.having.is_some();
    if !aggregating && !distinct && q.order_by.is_none() && q.limit_clause.is_none() {
        return Ok(None);
    }
    let clauses = clauses::find(text, reading)
        .ok_or_else(|| unsupported("a SELECT whose clauses shardgate could not find"))?;
    if clauses.windows && !local_windows {
        return Err(unsupported("window functions"));
    }
    if local_windows && (aggregating || distinct) {
        return Err(unsupported("window functions with aggregates or DISTINCT"));
    }
    if clauses.items.len() != select.projection.len() {
        return Err(unsupported("a select list shardgate could not split"));
    }
    let mut items = Vec::new();
    let mut star = false;
    for (item, range) in select.projection.iter().zip(&clauses.items) {
        match item {
            SelectItem::UnnamedExpr(e) => items.push(Item {
                expr: e,
                alias: None,
                range: *range,
                norm: norm(e),
            }),
            SelectItem::ExprWithAlias { expr, alias } => items.push(Item {
                expr,
                alias: Some(alias.value.clone()),
                range: clauses::without_alias(text, *range, reading),
                norm: norm(expr),
            }),
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => star = true,
            _ => return Err(unsupported("this select-list form")),
        }
    }
    let order_exprs: Vec<(&Expr, bool)> = match &q.order_by {
        None => Vec::new(),
        Some(o) => match &o.kind {
            OrderByKind::All(_) => return Err(unsupported("ORDER BY ALL")),
            OrderByKind::Expressions(list) => {
                let mut v = Vec::new();
                for e in list {
                    if e.options.nulls_first.is_some() || e.with_fill.is_some() {
                        return Err(unsupported("ORDER BY ... NULLS FIRST/LAST"));
                    }
                    let desc = match e.options.sort {
                        None | Some(OrderBySort::Asc) => false,
                        Some(OrderBySort::Desc) => true,
                        Some(_) => return Err(unsupported("ORDER BY ... USING")),
                    };
                    v.push((&e.expr, desc));
                }
                v
            }
        },
    };
    let order_ranges = clauses
        .order
        .as_ref()
        .map(|(_, r)| r.clone())
        .unwrap_or_default();
    if order_ranges.len() != order_exprs.len() {
        return Err(unsupported("an ORDER BY shardgate could not split"));
    }
    let (offset, limit) = limit_of(q)?;
    let mut b = Builder {
        clauses,
        items,
        star,
        hidden: Vec::new(),
        aggregates: Vec::new(),
        key,
        distinct_arg: None,
        key_distinct: false,
    };
    let mut splices = Vec::new();

    if !aggregating && !distinct {
        // Each shard sorts by the client's ORDER BY; the merge interleaves.
        let mut order = Vec::new();
        for ((e, desc), r) in order_exprs.iter().zip(&order_ranges) {
            let key = match b.find_item(e)? {
                Some(i) => b.item_key(i, *desc),
                None => {
                    let col = b.hide(vec![Piece::Src(*r)]);
                    b.key_for(e, vec![Piece::Src(*r)], col, *desc)
                }
            };
            order.push(key);
        }
        if let (Some(l), Some(range)) = (limit, b.clauses.limit) {
            splices.push(Splice {
                start: range.0,
                end: range.1,
                pieces: vec![Piece::Lit(format!("LIMIT {} ", offset.saturating_add(l)))],
            });
        }
        splices.extend(b.hidden_splice());
        let spec = MergeSpec {
            hidden: b.hidden.len(),
            order,
            group: None,
            sort_after: Vec::new(),
            offset,
            limit,
        };
        return Ok(Some((spec, splices)));
    }

    if b.star {
        return Err(unsupported(
            "SELECT * with DISTINCT, GROUP BY or aggregates; name the columns",
        ));
    }
    let (group_keys, order, sort_after, having) = if !aggregating {
        // DISTINCT: every select item is a group key.
        let keys: Vec<Key> = (0..b.items.len()).map(|i| b.item_key(i, false)).collect();
        let mut order = Vec::new();
        for (e, desc) in &order_exprs {
            let i = b.find_item(e)?.ok_or_else(|| {
                unsupported("SELECT DISTINCT ordered by a column that is not selected")
            })?;
            order.push(Key {
                desc: *desc,
                ..keys[i]
            });
        }
        for k in &keys {
            if !order.iter().any(|o| o.value == k.value) {
                order.push(*k);
            }
        }
        (keys, order, Vec::new(), None)
    } else {
        if distinct {
            return Err(unsupported("SELECT DISTINCT with aggregates or GROUP BY"));
        }
        let group_ranges = b
            .clauses
            .group
            .as_ref()
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        if group_ranges.len() != group_exprs.len() {
            return Err(unsupported("a GROUP BY shardgate could not split"));
        }
        let mut keys = Vec::new();
        for (e, r) in group_exprs.iter().zip(&group_ranges) {
            let key = match b.find_item(e)? {
                Some(i) => b.item_key(i, false),
                None => {
                    let col = b.hide(vec![Piece::Src(*r)]);
                    b.key_for(e, vec![Piece::Src(*r)], col, false)
                }
            };
            keys.push(key);
        }
        for i in 0..b.items.len() {
            let e = b.items[i].expr;
            if aggregate(e)?.is_some() {
                let range = b.items[i].range;
                let arg = clauses::call_argument(text, range).map(|r| vec![Piece::Src(r)]);
                b.add_aggregate(e, vec![Piece::Src(range)], arg, Col::Visible(i))?;
            } else if has_aggregate(e) {
                return Err(unsupported(&format!(
                    "`{e}`, an expression over aggregates,"
                )));
            }
        }
        let having = match &select.having {
            Some(h) => Some(b.cond(h)?),
            None => None,
        };
        // The client's ORDER BY, over merged rows. `ORDER BY NULL` (MySQL's idiom
        // for "no order") orders by a constant: nothing to do.
        let mut wanted = Vec::new();
        for ((e, desc), r) in order_exprs.iter().zip(&order_ranges) {
            if matches!(e, Expr::Value(v) if matches!(v.value, sqlparser::ast::Value::Null)) {
                continue;
            }
            let key = if let Some(i) = b.find_item(e)? {
                let found = b.aggregates.iter().find_map(|a| match a {
                    Agg::Min(k) | Agg::Max(k) if k.value == Col::Visible(i) => Some(*k),
                    _ => None,
                });
                match found {
                    Some(k) => Key { desc: *desc, ..k },
                    None if aggregate(e)?.is_some() => Key {
                        value: Col::Visible(i),
                        weight: None,
                        desc: *desc,
                    },
                    None => b.item_key(i, *desc),
                }
            } else if aggregate(e)?.is_some() {
                let col = b.hide(vec![Piece::Src(*r)]);
                let arg = clauses::call_argument(text, *r).map(|r| vec![Piece::Src(r)]);
                match b.add_aggregate(e, vec![Piece::Src(*r)], arg, col)? {
                    Agg::Min(k) | Agg::Max(k) => Key { desc: *desc, ..k },
                    _ => Key {
                        value: col,
                        weight: None,
                        desc: *desc,
                    },
                }
            } else if let Some(k) = keys
                .iter()
                .zip(group_exprs)
                .find_map(|(k, g)| (norm(g) == norm(e)).then_some(*k))
            {
                Key { desc: *desc, ..k }
            } else {
                return Err(unsupported(&format!(
                    "ORDER BY `{e}`, which is neither grouped nor aggregated,"
                )));
            };
            wanted.push(key);
        }
        // COUNT(DISTINCT x): within each group, rows come ordered by x.
        let sub: Vec<Key> = b.distinct_arg.iter().map(|(_, _, k)| *k).collect();
        if keys.is_empty() {
            // One group: ORDER BY has nothing to order.
            (keys, sub, Vec::new(), having)
        } else if wanted
            .iter()
            .all(|w| keys.iter().any(|k| k.value == w.value))
        {
            let mut order = wanted;
            for k in keys.iter().chain(&sub) {
                if !order.iter().any(|o| o.value == k.value) {
                    order.push(*k);
                }
            }
            (keys.clone(), order, Vec::new(), having)
        } else {
            let order = keys.iter().chain(&sub).copied().collect();
            (keys.clone(), order, wanted, having)
        }
    };

    if b.distinct_arg.is_some() {
        if b.key_distinct {
            // Shards' rows are then per (group, x): a shard-key value appears once
            // per x it goes with, and the per-row distinct counts would add up wrong.
            return Err(unsupported(
                "COUNT/SUM/AVG(DISTINCT <shard key>) next to COUNT(DISTINCT <another column>)",
            ));
        }
        if group_keys.is_empty() {
            // Over no rows at all, shards grouped by x send nothing, and shardgate
            // answers the one row itself: it can for aggregates only.
            for (i, item) in b.items.iter().enumerate() {
                if aggregate(item.expr)?.is_none() {
                    return Err(unsupported(&format!(
                        "`{}` next to COUNT(DISTINCT ...) without GROUP BY (column {})",
                        item.expr,
                        i + 1
                    )));
                }
            }
        }
    }
    // COUNT(DISTINCT x): shards group by x as well, so each sends every x once.
    if let Some((_, arg, _)) = &b.distinct_arg {
        match &b.clauses.group {
            Some((_, items)) => {
                let at = items.last().map_or(0, |r| r.1);
                let mut pieces = vec![Piece::Lit(", ".into())];
                pieces.extend(arg.iter().cloned());
                splices.push(Splice {
                    start: at,
                    end: at,
                    pieces,
                });
            }
            None => {
                let at = [
                    b.clauses.having.map(|r| r.0),
                    b.clauses.order.as_ref().map(|(r, _)| r.0),
                    b.clauses.limit.map(|r| r.0),
                ]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(b.clauses.tail);
                let mut pieces = vec![Piece::Lit(" GROUP BY ".into())];
                pieces.extend(arg.iter().cloned());
                pieces.push(Piece::Lit(" ".into()));
                splices.push(Splice {
                    start: at,
                    end: at,
                    pieces,
                });
            }
        }
    }
    // Shards order by the merge keys, keep every group whole (no HAVING, no LIMIT).
    let order_text = b.order_by_text(&order);
    match (&b.clauses.order, b.clauses.limit) {
        (Some((range, _)), _) => splices.push(Splice {
            start: range.0,
            end: range.1,
            pieces: vec![Piece::Lit(order_text)],
        }),
        (None, Some(l)) => splices.push(Splice {
            start: l.0,
            end: l.0,
            pieces: vec![Piece::Lit(order_text)],
        }),
        (None, None) if !order_text.is_empty() => splices.push(Splice {
            start: b.clauses.tail,
            end: b.clauses.tail,
            pieces: vec![Piece::Lit(format!(" {order_text}"))],
        }),
        _ => {}
    }
    if let Some(l) = b.clauses.limit {
        splices.push(Splice {
            start: l.0,
            end: l.1,
            pieces: Vec::new(),
        });
    }
    if let Some(h) = b.clauses.having {
        splices.push(Splice {
            start: h.0,
            end: h.1,
            pieces: Vec::new(),
        });
    }
    splices.extend(b.hidden_splice());
    let spec = MergeSpec {
        hidden: b.hidden.len(),
        order,
        group: Some(Grouping {
            keys: group_keys,
            aggregates: b.aggregates,
            having,
        }),
        sort_after,
        offset,
        limit,
    };
    Ok(Some((spec, splices)))
}

/// A window function whose window is partitioned by the shard key (inline, not a
/// named window).
fn partitioned_by_key(f: &sqlparser::ast::Function, key: &KeyColumn<'_>) -> bool {
    match &f.over {
        Some(sqlparser::ast::WindowType::WindowSpec(spec)) => {
            spec.window_name.is_none() && spec.partition_by.iter().any(|p| key.is_key(p))
        }
        _ => false,
    }
}
