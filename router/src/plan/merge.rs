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

/// A column of the shards' results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// The n-th column the client asked for.
    Visible(usize),
    /// The n-th column shardgate appended for the merge, dropped before the client.
    Hidden(usize),
}

impl Col {
    /// Position in a shard row that has `visible` client columns.
    pub fn index(self, visible: usize) -> usize {
        match self {
            Col::Visible(i) => i,
            Col::Hidden(j) => visible + j,
        }
    }
}

/// A value to compare: the column, and for strings the collation weight column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub value: Col,
    pub weight: Option<Col>,
    pub desc: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    Count(Col),
    Sum(Col),
    Min(Key),
    Max(Key),
    /// COUNT(DISTINCT x): shards group by x too and send their rows ordered by it, so
    /// the merge counts each x once however many shards have it.
    CountDistinct {
        count: Col,
        value: Key,
    },
    /// The AVG column keeps the server's type and scale; shards also send SUM and COUNT.
    Avg {
        avg: Col,
        sum: Col,
        count: Col,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Col(Col),
    /// A numeric literal as written.
    Number(String),
}

/// A HAVING condition over merged groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    IsNull(Operand, bool),
    Cmp(CmpOp, Operand, Operand),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    /// Rows with equal keys are one group (no keys: all rows are one group).
    pub keys: Vec<Key>,
    pub aggregates: Vec<Agg>,
    pub having: Option<Cond>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeSpec {
    /// How many columns shardgate appended.
    pub hidden: usize,
    /// The order of every shard's rows, which the merge keeps.
    pub order: Vec<Key>,
    pub group: Option<Grouping>,
    /// A sort after grouping (ORDER BY aggregated values), done in memory.
    pub sort_after: Vec<Key>,
    pub offset: u64,
    pub limit: Option<u64>,
}

impl MergeSpec {
    /// The merge steps in words, for EXPLAIN SHARDING.
    pub fn describe(&self) -> String {
        let mut steps = Vec::new();
        if !self.order.is_empty() {
            steps.push(format!("merge sorted on {} key(s)", self.order.len()));
        } else {
            steps.push("concatenate rows".to_string());
        }
        if let Some(g) = &self.group {
            if g.keys.is_empty() {
                steps.push("combine into one row".to_string());
            } else {
                steps.push(format!("combine groups of {} key(s)", g.keys.len()));
            }
            if !g.aggregates.is_empty() {
                let names: Vec<&str> = g
                    .aggregates
                    .iter()
                    .map(|a| match a {
                        Agg::Count(_) => "COUNT",
                        Agg::Sum(_) => "SUM",
                        Agg::Min(_) => "MIN",
                        Agg::Max(_) => "MAX",
                        Agg::CountDistinct { .. } => "COUNT(DISTINCT)",
                        Agg::Avg { .. } => "AVG",
                    })
                    .collect();
                steps.push(format!("aggregate {}", names.join(", ")));
            }
            if g.having.is_some() {
                steps.push("filter HAVING".to_string());
            }
        }
        if !self.sort_after.is_empty() {
            steps.push(format!("sort on {} key(s)", self.sort_after.len()));
        }
        if self.offset > 0 {
            steps.push(format!("skip {}", self.offset));
        }
        if let Some(l) = self.limit {
            steps.push(format!("limit {l}"));
        }
        if self.hidden > 0 {
            steps.push(format!("drop {} helper column(s)", self.hidden));
        }
        steps.join("; ")
    }
}

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
fn calls(e: &Expr, pred: impl Fn(&sqlparser::ast::Function) -> bool) -> bool {
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

/// The merge for a SELECT that runs on several shards, with the edits that give each
/// shard its part. `None`: the shards' rows one after another are the answer.
pub fn plan(
    text: &str,
    q: &Query,
    select: &Select,
    key: &KeyColumn<'_>,
) -> Result<Option<(MergeSpec, Vec<Splice>)>, RouteError> {
    let item_exprs = select.projection.iter().filter_map(|i| match i {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    });
    if item_exprs.clone().any(has_window) || !select.named_window.is_empty() {
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
    let clauses = clauses::find(text)
        .ok_or_else(|| unsupported("a SELECT whose clauses shardgate could not find"))?;
    if clauses.windows {
        return Err(unsupported("window functions"));
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
                range: clauses::without_alias(text, *range),
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
        // The client's ORDER BY, over merged rows.
        let mut wanted = Vec::new();
        for ((e, desc), r) in order_exprs.iter().zip(&order_ranges) {
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
