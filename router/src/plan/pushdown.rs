//! Which conditions of a gathered statement concern one table alone, so that rows
//! failing them are never copied.
//!
//! A condition is pushed to a table only when dropping the rows it fails cannot
//! change the answer: it is one of the AND-ed conditions of the WHERE of the
//! statement's SELECT (or of one part of its set operation) whose FROM names that
//! table, every column it names is that table's, the table is not on the side of an
//! outer join that the join fills with NULLs, and the condition is deterministic and
//! self-contained (no subquery, variable, parameter or function outside a short list
//! of pure built-ins). The statement itself still applies every condition: a pushed
//! one only thins the copy. (The caller pushes only to a table the statement names
//! once.)

use std::collections::HashMap;
use std::ops::ControlFlow;

use rules::{Algorithm, ShardSet};
use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, JoinOperator, Select,
    SetExpr, Spanned, Statement, TableFactor, Value,
};
use sqlparser::parser::Parser;

use super::keys::{self, KeyColumn};
use super::spans::Offsets;
use crate::reading::Reading;

/// Conditions pushed to one table.
#[derive(Debug)]
pub(super) struct Pushed {
    /// The conditions in the client's words, AND-ed.
    pub text: String,
    conditions: Vec<Expr>,
}

impl Pushed {
    /// The shards the conditions leave of a table sharded by `column`; `None` when
    /// they do not narrow it.
    pub fn shards(&self, column: &str, tables: &[&str], alg: &Algorithm) -> Option<ShardSet> {
        let key = KeyColumn { column, tables };
        let offsets = Offsets::new("");
        let cx = keys::Context {
            params: None,
            offsets: &offsets,
        };
        let mut set: Option<ShardSet> = None;
        for c in &self.conditions {
            if let Some(s) = keys::eval(&keys::compile(c, &key, &cx), alg, &[]) {
                set = Some(match set {
                    None => s,
                    Some(prev) => prev.intersection(&s),
                });
            }
        }
        set
    }
}

/// Built-in functions whose value depends on their arguments only.
const PURE: &[&str] = &[
    "abs",
    "ceil",
    "ceiling",
    "floor",
    "round",
    "truncate",
    "mod",
    "sign",
    "lower",
    "upper",
    "lcase",
    "ucase",
    "length",
    "char_length",
    "character_length",
    "octet_length",
    "concat",
    "concat_ws",
    "substring",
    "substr",
    "left",
    "right",
    "trim",
    "ltrim",
    "rtrim",
    "replace",
    "coalesce",
    "ifnull",
    "nullif",
    "if",
    "isnull",
    "date",
    "year",
    "month",
    "day",
    "dayofmonth",
    "dayofweek",
    "hour",
    "minute",
    "second",
    "date_format",
    "datediff",
    "to_days",
    "greatest",
    "least",
    "locate",
    "instr",
    "reverse",
    "lpad",
    "rpad",
    "hex",
];

/// Niladic functions the parser reads as bare names.
const CLOCKS: &[&str] = &[
    "utc_date",
    "utc_time",
    "utc_timestamp",
    "current_date",
    "current_time",
    "current_timestamp",
    "localtime",
    "localtimestamp",
    "current_user",
    "current_role",
    "user",
];

/// One table of a FROM: where its name starts in the text (what tells it from
/// tables of the same name or alias in other scopes), the name that qualifies its
/// columns, and whether an outer join may fill it with NULLs.
struct Instance {
    at: Option<usize>,
    qualifier: String,
    nullable: bool,
}

/// Pushable conditions by the byte offset of the name of the table they concern, as
/// named in the FROM of the statement's SELECT (or of one part of its set
/// operation): only those tables, in the scope whose WHERE it is.
pub(super) fn filters(
    statement: &Statement,
    text: &str,
    offsets: &Offsets<'_>,
    reading: Reading,
) -> HashMap<usize, Pushed> {
    let mut out: HashMap<usize, Pushed> = HashMap::new();
    if let Statement::Query(q) = statement {
        parts(q.body.as_ref(), &mut |s| {
            select(s, text, offsets, reading, &mut out)
        });
    }
    out
}

/// Every SELECT of a body: itself, or each part of a set operation.
fn parts<'q>(body: &'q SetExpr, f: &mut dyn FnMut(&'q Select)) {
    match body {
        SetExpr::Select(s) => f(s),
        SetExpr::Query(q) => parts(q.body.as_ref(), f),
        SetExpr::SetOperation { left, right, .. } => {
            parts(left, f);
            parts(right, f);
        }
        _ => {}
    }
}

fn select(
    s: &Select,
    text: &str,
    offsets: &Offsets<'_>,
    reading: Reading,
    out: &mut HashMap<usize, Pushed>,
) {
    let Some(selection) = &s.selection else {
        return;
    };
    let mut instances: Vec<Instance> = Vec::new();
    let mut factors = 0usize;
    for twj in &s.from {
        let group_unsafe = twj.joins.iter().any(|j| {
            !matches!(
                j.join_operator,
                JoinOperator::Join(_)
                    | JoinOperator::Inner(_)
                    | JoinOperator::CrossJoin(_)
                    | JoinOperator::Left(_)
                    | JoinOperator::LeftOuter(_)
            )
        });
        factors += 1 + twj.joins.len();
        let mut add = |factor: &TableFactor, nullable: bool| {
            if let TableFactor::Table { name, alias, .. } = factor {
                let last = name.0.last().and_then(|p| p.as_ident());
                let qualifier = match (alias, last) {
                    (Some(a), _) => a.name.value.clone(),
                    (None, Some(i)) => i.value.clone(),
                    (None, None) => return,
                };
                instances.push(Instance {
                    at: last.and_then(|i| offsets.range(i.span)).map(|r| r.0),
                    qualifier: qualifier.to_lowercase(),
                    nullable,
                });
            }
        };
        add(&twj.relation, group_unsafe);
        for j in &twj.joins {
            let left = matches!(
                j.join_operator,
                JoinOperator::Left(_) | JoinOperator::LeftOuter(_)
            );
            add(&j.relation, group_unsafe || left);
        }
    }
    // Unqualified columns belong to the one table of a one-table FROM only.
    let sole = (factors == 1 && instances.len() == 1).then(|| instances[0].qualifier.clone());
    let mut conditions = Vec::new();
    split_and(selection, &mut conditions);
    for c in conditions {
        let Some(owner) = owner(c, sole.as_deref()) else {
            continue;
        };
        let mut matching = instances.iter().filter(|i| i.qualifier == owner);
        let (Some(instance), None) = (matching.next(), matching.next()) else {
            continue;
        };
        let (Some(at), false) = (instance.at, instance.nullable) else {
            continue;
        };
        let Some(words) = own_words(c, text, offsets, reading) else {
            continue;
        };
        let p = out.entry(at).or_insert_with(|| Pushed {
            text: String::new(),
            conditions: Vec::new(),
        });
        if !p.text.is_empty() {
            p.text.push_str(" AND ");
        }
        p.text.push('(');
        p.text.push_str(words);
        p.text.push(')');
        p.conditions.push(c.clone());
    }
}

fn split_and<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            split_and(left, out);
            split_and(right, out);
        }
        Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            split_and(inner, out)
        }
        other => out.push(other),
    }
}

/// The lowercase qualifier of the one table whose columns `c` names, when it is
/// deterministic and self-contained.
fn owner(c: &Expr, sole: Option<&str>) -> Option<String> {
    let mut owner: Option<String> = None;
    let mut claim = |q: String| -> ControlFlow<()> {
        match &owner {
            Some(o) if *o != q => ControlFlow::Break(()),
            _ => {
                owner = Some(q);
                ControlFlow::Continue(())
            }
        }
    };
    let walked = sqlparser::ast::visit_expressions(c, |e: &Expr| match e {
        Expr::Identifier(i) => {
            if CLOCKS.iter().any(|k| i.value.eq_ignore_ascii_case(k)) && i.quote_style.is_none() {
                return ControlFlow::Break(());
            }
            match sole {
                Some(s) => claim(s.to_string()),
                None => ControlFlow::Break(()),
            }
        }
        Expr::CompoundIdentifier(parts) => match parts.as_slice() {
            [t, _] => claim(t.value.to_lowercase()),
            _ => ControlFlow::Break(()),
        },
        Expr::Value(v) if matches!(v.value, Value::Placeholder(_)) => ControlFlow::Break(()),
        Expr::Value(_)
        | Expr::TypedString { .. }
        | Expr::BinaryOp { .. }
        | Expr::UnaryOp { .. }
        | Expr::Nested(_)
        | Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsNotTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotFalse(_)
        | Expr::Between { .. }
        | Expr::InList { .. }
        | Expr::Like { .. }
        | Expr::RLike { .. }
        | Expr::Cast { .. }
        | Expr::Case { .. }
        | Expr::Interval(_) => ControlFlow::Continue(()),
        Expr::Function(f) => {
            let pure = match f.name.0.as_slice() {
                [n] => PURE.iter().any(|p| n.to_string().eq_ignore_ascii_case(p)),
                _ => false,
            };
            let plain_args = match &f.args {
                FunctionArguments::None => true,
                FunctionArguments::List(l) => {
                    l.duplicate_treatment.is_none()
                        && l.clauses.is_empty()
                        && l.args
                            .iter()
                            .all(|a| matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Expr(_))))
                }
                FunctionArguments::Subquery(_) => false,
            };
            let plain = pure
                && plain_args
                && f.over.is_none()
                && f.filter.is_none()
                && f.within_group.is_empty()
                && matches!(f.parameters, FunctionArguments::None);
            if plain {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        }
        _ => ControlFlow::Break(()),
    });
    if walked.is_break() {
        return None;
    }
    owner
}

/// The client's own text of `c`, when its span covers exactly the condition (it
/// parses back to the same expression).
fn own_words<'t>(
    c: &Expr,
    text: &'t str,
    offsets: &Offsets<'_>,
    reading: Reading,
) -> Option<&'t str> {
    let (a, mut b) = offsets.range(c.span())?;
    // Some spans stop before the closing parentheses of a list (`x IN (1, 2`).
    let open = |w: &str| {
        reading.lexer(w.as_bytes()).fold(0i64, |d, t| match t {
            crate::lexer::Token::Punct(p) if p == b"(" => d + 1,
            crate::lexer::Token::Punct(p) if p == b")" => d - 1,
            _ => d,
        })
    };
    let mut depth = open(text.get(a..b)?);
    while depth > 0 {
        let rest = text.get(b..)?;
        let skip = rest.len() - rest.trim_start().len();
        if !rest[skip..].starts_with(')') {
            return None;
        }
        b += skip + 1;
        depth -= 1;
    }
    let words = text.get(a..b)?;
    let dialect = reading.dialect();
    let mut parser = Parser::new(&dialect).try_with_sql(words).ok()?;
    let again = parser.parse_expr().ok()?;
    let whole = parser.peek_token().token == sqlparser::tokenizer::Token::EOF;
    (whole && again.to_string() == c.to_string()).then_some(words)
}
