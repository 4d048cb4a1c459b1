//! The merge step of a multi-shard SELECT whose answer is not just the shards' rows
//! one after another: ORDER BY, LIMIT, aggregates, GROUP BY with HAVING, DISTINCT.
//!
//! The plan keeps the merge streaming. Every shard returns its rows already ordered
//! the way the merge needs them (its own ORDER BY, or one shardgate writes), so the
//! executor holds one row per shard and picks the least, like a merge sort. Groups
//! arrive adjacent, so combining them needs only the group being built. Only an
//! ORDER BY on aggregated values forces a sort after grouping, which is bounded by
//! the executor.
//!
//! Values are compared the way the server compares them: numbers as numbers, and
//! strings by their collation weight, which each shard computes with `WEIGHT_STRING`
//! in a column the client never sees. MariaDB's `WEIGHT_STRING` keeps trailing
//! spaces, so the weight is taken of `RTRIM(x)` when the collation pads
//! (`CONCAT(x) = CONCAT(x, ' ')` holds exactly then; both sides are strings, so a
//! number or a date compares without a conversion warning, and its weight is unused).

use sqlparser::ast::{
    BinaryOperator, Distinct, DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr,
    FunctionArguments, GroupByExpr, LimitClause, OrderByKind, OrderBySort, Query, Select,
    SelectItem, UnaryOperator, Value as SqlValue, Visit, Visitor,
};

use super::clauses::{self, Clauses, Range};
use super::keys::KeyColumn;
use super::rewrite::{Piece, Splice};
use super::RouteError;

pub use planner::plan;
pub use spec::*;

mod planner;
mod spec;

/// One select-list item.
struct Item<'a> {
    expr: &'a Expr,
    alias: Option<String>,
    /// The expression's text, alias excluded.
    range: Range,
    norm: String,
}

struct Builder<'a> {
    clauses: Clauses,
    items: Vec<Item<'a>>,
    star: bool,
    hidden: Vec<Vec<Piece>>,
    aggregates: Vec<Agg>,
    key: &'a KeyColumn<'a>,
    /// The argument of COUNT(DISTINCT x) (normalized, as text pieces, as a key).
    distinct_arg: Option<(String, Vec<Piece>, Key)>,
    /// A DISTINCT aggregate of the shard key (COUNT/SUM/AVG), summed over shards:
    /// exact only while shards do not also group by a COUNT(DISTINCT x).
    key_distinct: bool,
}

fn unsupported(what: &str) -> RouteError {
    RouteError::Unsupported(format!("{what} over several shards"))
}

/// Normalized text of an expression, to find the same expression written twice.
fn norm(e: &Expr) -> String {
    e.to_string().replace('`', "").to_ascii_lowercase()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AggName {
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

/// An aggregate call: its function, whether DISTINCT, its argument (none for `*`).
type Call<'e> = (AggName, bool, Option<&'e Expr>);

/// The top-level aggregate call `e` is, if any; `Err` names an aggregate the merge
/// cannot combine.
fn aggregate(e: &Expr) -> Result<Option<Call<'_>>, RouteError> {
    let Expr::Function(f) = e else {
        return Ok(None);
    };
    let name = f.name.to_string().to_ascii_lowercase();
    let kind = match name.as_str() {
        "count" => AggName::Count,
        "sum" => AggName::Sum,
        "min" => AggName::Min,
        "max" => AggName::Max,
        "avg" => AggName::Avg,
        n if AGGREGATES.contains(&n) => {
            return Err(unsupported(&format!("{}()", n.to_ascii_uppercase())))
        }
        _ => return Ok(None),
    };
    if f.over.is_some() {
        return Err(unsupported("window functions"));
    }
    let FunctionArguments::List(list) = &f.args else {
        return Ok(None);
    };
    let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
    let arg = match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(a))] => Some(a),
        [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] if kind == AggName::Count => None,
        _ => return Err(unsupported(&format!("{name} with several arguments"))),
    };
    Ok(Some((kind, distinct, arg)))
}

const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "group_concat",
    "std",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "bit_and",
    "bit_or",
    "bit_xor",
    "json_arrayagg",
    "json_objectagg",
];

/// True when some function call inside `e` satisfies `pred`.
pub(super) fn calls(e: &Expr, pred: impl Fn(&sqlparser::ast::Function) -> bool) -> bool {
    struct Find<P>(P, bool);
    impl<P: Fn(&sqlparser::ast::Function) -> bool> Visitor for Find<P> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> std::ops::ControlFlow<()> {
            if matches!(e, Expr::Function(f) if (self.0)(f)) {
                self.1 = true;
                return std::ops::ControlFlow::Break(());
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let mut f = Find(pred, false);
    let _ = e.visit(&mut f);
    f.1
}

/// True when `e` calls a window function: it would see one shard's rows only.
fn has_window(e: &Expr) -> bool {
    calls(e, |f| f.over.is_some())
}

/// True when `e` calls an aggregate anywhere inside.
pub fn has_aggregate(e: &Expr) -> bool {
    calls(e, |f| {
        f.over.is_none() && AGGREGATES.contains(&f.name.to_string().to_ascii_lowercase().as_str())
    })
}

fn is_numeric_literal(e: &Expr) -> bool {
    match e {
        Expr::Value(v) => matches!(v.value, SqlValue::Number(..)),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => is_numeric_literal(expr),
        Expr::Nested(inner) => is_numeric_literal(inner),
        _ => false,
    }
}

fn literal_u64(e: &Expr) -> Result<u64, RouteError> {
    match e {
        Expr::Value(v) => match &v.value {
            SqlValue::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| unsupported("LIMIT with a value that is not a plain number"))
}

impl<'a> Builder<'a> {
    fn hide(&mut self, pieces: Vec<Piece>) -> Col {
        if let Some(i) = self.hidden.iter().position(|p| *p == pieces) {
            return Col::Hidden(i);
        }
        self.hidden.push(pieces);
        Col::Hidden(self.hidden.len() - 1)
    }

    /// The collation weight of the expression at `r`.
    fn weight(&mut self, expr: Vec<Piece>) -> Col {
        let mut p = vec![Piece::Lit("WEIGHT_STRING(IF(CONCAT((".into())];
        p.extend(expr.iter().cloned());
        p.push(Piece::Lit(")) = CONCAT((".into()));
        p.extend(expr.iter().cloned());
        p.push(Piece::Lit("), ' '), RTRIM((".into()));
        p.extend(expr.iter().cloned());
        p.push(Piece::Lit(")), (".into()));
        p.extend(expr);
        p.push(Piece::Lit(")))".into()));
        self.hide(p)
    }

    /// The key for a numeric column (COUNT, SUM, AVG) needs no weight.
    fn key_for(&mut self, e: &Expr, pieces: Vec<Piece>, value: Col, desc: bool) -> Key {
        let numeric = is_numeric_literal(e)
            || matches!(
                aggregate(e),
                Ok(Some((AggName::Count | AggName::Sum | AggName::Avg, _, _)))
            );
        let weight = (!numeric).then(|| self.weight(pieces));
        Key {
            value,
            weight,
            desc,
        }
    }

    fn item_key(&mut self, i: usize, desc: bool) -> Key {
        let expr = self.items[i].expr;
        let piece = Piece::Src(self.items[i].range);
        self.key_for(expr, vec![piece], Col::Visible(i), desc)
    }

    /// The select item an ORDER BY / GROUP BY expression means: a position, an alias
    /// or the same expression.
    fn find_item(&self, e: &Expr) -> Result<Option<usize>, RouteError> {
        if let Expr::Value(v) = e {
            if let SqlValue::Number(n, _) = &v.value {
                let n: usize = n
                    .parse()
                    .map_err(|_| RouteError::Invalid(format!("bad column position {n}")))?;
                if self.star {
                    return Err(unsupported("ORDER BY or GROUP BY a column position with SELECT *; name the column instead,"));
                }
                if n == 0 || n > self.items.len() {
                    return Err(RouteError::Invalid(format!(
                        "column position {n} is not in the select list"
                    )));
                }
                return Ok(Some(n - 1));
            }
        }
        if self.star {
            return Ok(None);
        }
        if let Expr::Identifier(id) = e {
            if let Some(i) = self.items.iter().position(|it| {
                it.alias
                    .as_deref()
                    .is_some_and(|a| a.eq_ignore_ascii_case(&id.value))
            }) {
                return Ok(Some(i));
            }
        }
        let n = norm(e);
        Ok(self.items.iter().position(|it| it.norm == n))
    }

    /// An aggregate the merge combines, in column `col` (its pieces are the call).
    fn add_aggregate(
        &mut self,
        e: &Expr,
        call: Vec<Piece>,
        arg: Option<Vec<Piece>>,
        col: Col,
    ) -> Result<Agg, RouteError> {
        let Some((name, distinct, argument)) = aggregate(e)? else {
            return Err(RouteError::Invalid("not an aggregate".into()));
        };
        let on_key = argument.is_some_and(|a| self.key.is_key(a));
        self.key_distinct |= distinct && on_key;
        if distinct && !on_key && matches!(name, AggName::Sum | AggName::Avg) {
            return Err(unsupported(
                "SUM/AVG(DISTINCT ...) of a column other than the shard key",
            ));
        }
        let agg = match name {
            AggName::Count if distinct && !on_key => {
                let (Some(argument), Some(arg)) = (argument, arg) else {
                    return Err(unsupported("COUNT(DISTINCT ...) of several expressions"));
                };
                let n = norm(argument);
                let value = match &self.distinct_arg {
                    Some((seen, _, key)) if *seen == n => *key,
                    Some(_) => {
                        return Err(unsupported(
                            "COUNT(DISTINCT ...) of two different expressions",
                        ))
                    }
                    None => {
                        let value = self.hide(arg.clone());
                        let weight = Some(self.weight(arg.clone()));
                        let key = Key {
                            value,
                            weight,
                            desc: false,
                        };
                        self.distinct_arg = Some((n, arg, key));
                        key
                    }
                };
                Agg::CountDistinct { count: col, value }
            }
            AggName::Count => Agg::Count(col),
            AggName::Sum => Agg::Sum(col),
            AggName::Min | AggName::Max => {
                let weight = Some(self.weight(call));
                let key = Key {
                    value: col,
                    weight,
                    desc: false,
                };
                if name == AggName::Min {
                    Agg::Min(key)
                } else {
                    Agg::Max(key)
                }
            }
            AggName::Avg => {
                let arg = arg.ok_or_else(|| unsupported("AVG without an argument"))?;
                let d = if distinct { "DISTINCT " } else { "" };
                let mut sum = vec![Piece::Lit(format!("SUM({d}"))];
                sum.extend(arg.iter().cloned());
                sum.push(Piece::Lit(")".into()));
                let mut count = vec![Piece::Lit(format!("COUNT({d}"))];
                count.extend(arg);
                count.push(Piece::Lit(")".into()));
                Agg::Avg {
                    avg: col,
                    sum: self.hide(sum),
                    count: self.hide(count),
                }
            }
        };
        self.aggregates.push(agg);
        Ok(agg)
    }

    /// A HAVING leaf: a select item, or an aggregate added as a hidden column.
    fn operand(&mut self, e: &Expr) -> Result<Operand, RouteError> {
        if is_numeric_literal(e) {
            return Ok(Operand::Number(e.to_string().replace(' ', "")));
        }
        if let Expr::Nested(inner) = e {
            return self.operand(inner);
        }
        if let Some(i) = self.find_item(e)? {
            return Ok(Operand::Col(Col::Visible(i)));
        }
        if aggregate(e)?.is_some() {
            let mut qualified = false;
            let _ = e.visit(&mut QualifiedFinder(&mut qualified));
            if qualified {
                return Err(unsupported(
                    "HAVING on a qualified aggregate that is not in the select list; add it to the select list",
                ));
            }
            let text = e.to_string();
            let arg = clauses::call_argument(&text, (0, text.len()))
                .map(|(a, b)| vec![Piece::Lit(text[a..b].to_string())]);
            let col = self.hide(vec![Piece::Lit(text.clone())]);
            self.add_aggregate(e, vec![Piece::Lit(text)], arg, col)?;
            return Ok(Operand::Col(col));
        }
        Err(unsupported(&format!(
            "HAVING on `{e}`, which is neither in the select list nor an aggregate,"
        )))
    }

    fn cond(&mut self, e: &Expr) -> Result<Cond, RouteError> {
        Ok(match e {
            Expr::Nested(inner) => self.cond(inner)?,
            Expr::BinaryOp { left, op, right } => match op {
                BinaryOperator::And => {
                    Cond::And(Box::new(self.cond(left)?), Box::new(self.cond(right)?))
                }
                BinaryOperator::Or => {
                    Cond::Or(Box::new(self.cond(left)?), Box::new(self.cond(right)?))
                }
                _ => {
                    let op = match op {
                        BinaryOperator::Eq => CmpOp::Eq,
                        BinaryOperator::NotEq => CmpOp::Ne,
                        BinaryOperator::Lt => CmpOp::Lt,
                        BinaryOperator::LtEq => CmpOp::Le,
                        BinaryOperator::Gt => CmpOp::Gt,
                        BinaryOperator::GtEq => CmpOp::Ge,
                        _ => return Err(unsupported(&format!("HAVING with operator {op}"))),
                    };
                    Cond::Cmp(op, self.operand(left)?, self.operand(right)?)
                }
            },
            Expr::UnaryOp {
                op: UnaryOperator::Not,
                expr,
            } => Cond::Not(Box::new(self.cond(expr)?)),
            Expr::IsNull(x) => Cond::IsNull(self.operand(x)?, false),
            Expr::IsNotNull(x) => Cond::IsNull(self.operand(x)?, true),
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let v = self.operand(expr)?;
                let c = Cond::And(
                    Box::new(Cond::Cmp(CmpOp::Ge, v.clone(), self.operand(low)?)),
                    Box::new(Cond::Cmp(CmpOp::Le, v, self.operand(high)?)),
                );
                if *negated {
                    Cond::Not(Box::new(c))
                } else {
                    c
                }
            }
            other => return Err(unsupported(&format!("HAVING `{other}`"))),
        })
    }

    /// `ORDER BY` by positions in the shard's result.
    fn order_by_text(&self, keys: &[Key]) -> String {
        if keys.is_empty() {
            return String::new();
        }
        let cols: Vec<String> = keys
            .iter()
            .map(|k| {
                let pos = k.value.index(self.items.len()) + 1;
                if k.desc {
                    format!("{pos} DESC")
                } else {
                    pos.to_string()
                }
            })
            .collect();
        format!("ORDER BY {} ", cols.join(", "))
    }

    fn hidden_splice(&self) -> Option<Splice> {
        if self.hidden.is_empty() {
            return None;
        }
        let mut pieces = Vec::new();
        for h in &self.hidden {
            pieces.push(Piece::Lit(", ".into()));
            pieces.extend(h.iter().cloned());
        }
        pieces.push(Piece::Lit(" ".into()));
        Some(Splice {
            start: self.clauses.from,
            end: self.clauses.from,
            pieces,
        })
    }
}

struct QualifiedFinder<'b>(&'b mut bool);

impl Visitor for QualifiedFinder<'_> {
    type Break = ();
    fn pre_visit_expr(&mut self, e: &Expr) -> std::ops::ControlFlow<()> {
        if matches!(e, Expr::CompoundIdentifier(_)) {
            *self.0 = true;
        }
        std::ops::ControlFlow::Continue(())
    }
}

fn limit_of(q: &Query) -> Result<(u64, Option<u64>), RouteError> {
    match &q.limit_clause {
        None => Ok((0, None)),
        Some(LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            if !limit_by.is_empty() {
                return Err(unsupported("LIMIT BY"));
            }
            let offset = match offset {
                Some(o) => literal_u64(&o.value)?,
                None => 0,
            };
            let limit = limit.as_ref().map(literal_u64).transpose()?;
            Ok((offset, limit))
        }
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
            Ok((literal_u64(offset)?, Some(literal_u64(limit)?)))
        }
    }
}
