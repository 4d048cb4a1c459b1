//! Shard-key extraction: which shards a WHERE clause can touch.
//!
//! `None` means "not narrowed" (every shard). AND intersects, OR unites; anything not
//! understood leaves the set unnarrowed, so the answer is always a superset.

use std::ops::Bound;

use rules::{Algorithm, RuleError, ShardSet, Value};
use sqlparser::ast::{BinaryOperator, Expr, UnaryOperator, Value as SqlValue};

use super::spans::Offsets;

pub struct KeyColumn<'a> {
    pub column: &'a str,
    /// Names and aliases the shard column may be qualified with.
    pub tables: &'a [&'a str],
}

impl KeyColumn<'_> {
    pub fn is_key(&self, e: &Expr) -> bool {
        match e {
            Expr::Identifier(i) => i.value.eq_ignore_ascii_case(self.column),
            Expr::CompoundIdentifier(parts) => match parts.as_slice() {
                [.., t, c] => {
                    c.value.eq_ignore_ascii_case(self.column)
                        && self.tables.iter().any(|x| x.eq_ignore_ascii_case(&t.value))
                }
                _ => false,
            },
            Expr::Nested(inner) => self.is_key(inner),
            _ => false,
        }
    }
}

/// A literal's value, or `None` for anything else (placeholders, expressions).
pub fn literal(e: &Expr) -> Option<Value> {
    match e {
        Expr::Value(v) => match &v.value {
            SqlValue::Number(n, _) => Value::literal(n),
            SqlValue::SingleQuotedString(s) | SqlValue::DoubleQuotedString(s) => {
                Some(Value::text(s.clone()))
            }
            SqlValue::Null => Some(Value::Null),
            SqlValue::Boolean(b) => Some(Value::Int(*b as i128)),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match literal(expr)? {
            Value::Int(i) => Some(Value::Int(-i)),
            Value::Decimal(d) => Value::number(&format!("-{d}")),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Plus,
            expr,
        } => literal(expr),
        Expr::Nested(inner) => literal(inner),
        _ => None,
    }
}

/// Rule errors for a value in a condition: a value that no shard may hold matches no
/// row, so any one shard answers correctly; a value the rule cannot read at all may
/// still match rows (MySQL converts types), so every shard is searched.
fn point(alg: &Algorithm, v: &Value) -> Option<ShardSet> {
    match alg.shard_of(v) {
        Ok(s) => Some(ShardSet::one(s)),
        Err(RuleError::OutOfRange(_) | RuleError::NotListed(_) | RuleError::NotYet(..)) => {
            Some(ShardSet::one(0))
        }
        Err(_) => None,
    }
}

fn range(alg: &Algorithm, low: Bound<&Value>, high: Bound<&Value>) -> Option<ShardSet> {
    match alg.shards_in(low, high) {
        Ok(s) if s.is_empty() => Some(ShardSet::one(0)),
        Ok(s) => Some(s),
        Err(_) => None,
    }
}

/// A value in a key condition: written in the statement, or a `?` parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Lit(Value),
    Param(usize),
}

/// The byte offsets of the statement's `?` placeholders, in order: parameter `n` is
/// the `n`-th.
#[derive(Debug, Default)]
pub struct Params {
    starts: Vec<usize>,
}

impl Params {
    pub fn new(text: &str, reading: crate::reading::Reading) -> Params {
        let base = text.as_ptr() as usize;
        let starts = reading
            .lexer(text.as_bytes())
            .filter_map(|t| match t {
                crate::lexer::Token::Punct(p) if p == b"?" => Some(p.as_ptr() as usize - base),
                _ => None,
            })
            .collect();
        Params { starts }
    }

    pub fn count(&self) -> usize {
        self.starts.len()
    }

    fn index(&self, e: &Expr, offsets: &Offsets<'_>) -> Option<usize> {
        let Expr::Value(v) = e else { return None };
        if !matches!(&v.value, SqlValue::Placeholder(p) if p == "?") {
            return None;
        }
        let at = offsets.byte(v.span.start)?;
        self.starts.binary_search(&at).ok()
    }
}

/// Where parameters may stand for values (prepared statements).
pub struct Context<'a> {
    pub params: Option<&'a Params>,
    pub offsets: &'a Offsets<'a>,
}

impl Context<'_> {
    pub fn operand(&self, e: &Expr) -> Option<Operand> {
        if let Some(v) = literal(e) {
            return Some(Operand::Lit(v));
        }
        let inner = match e {
            Expr::Nested(inner) => inner,
            other => other,
        };
        self.params?.index(inner, self.offsets).map(Operand::Param)
    }
}

/// A WHERE clause reduced to what matters for routing, so that a prepared statement
/// is routed per execution without looking at SQL again.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyExpr {
    And(Box<KeyExpr>, Box<KeyExpr>),
    Or(Box<KeyExpr>, Box<KeyExpr>),
    Point(Operand),
    In(Vec<Operand>),
    Range(Bound<Operand>, Bound<Operand>),
    /// Says nothing about the shard key.
    Unknown,
}

impl KeyExpr {
    pub fn has_params(&self) -> bool {
        let p = |o: &Operand| matches!(o, Operand::Param(_));
        let b = |x: &Bound<Operand>| matches!(x, Bound::Included(o) | Bound::Excluded(o) if p(o));
        match self {
            KeyExpr::And(a, c) | KeyExpr::Or(a, c) => a.has_params() || c.has_params(),
            KeyExpr::Point(o) => p(o),
            KeyExpr::In(list) => list.iter().any(p),
            KeyExpr::Range(l, h) => b(l) || b(h),
            KeyExpr::Unknown => false,
        }
    }
}

pub fn compile(e: &Expr, key: &KeyColumn<'_>, cx: &Context<'_>) -> KeyExpr {
    let boxed = |e: &Expr| Box::new(compile(e, key, cx));
    match e {
        Expr::Nested(inner) => compile(inner, key, cx),
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And => KeyExpr::And(boxed(left), boxed(right)),
            BinaryOperator::Or => KeyExpr::Or(boxed(left), boxed(right)),
            BinaryOperator::Eq | BinaryOperator::Spaceship => {
                let v = if key.is_key(left) {
                    cx.operand(right)
                } else if key.is_key(right) {
                    cx.operand(left)
                } else {
                    None
                };
                v.map_or(KeyExpr::Unknown, KeyExpr::Point)
            }
            BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq => {
                // Normalise to `key OP value`.
                let (v, op) = if key.is_key(left) {
                    (cx.operand(right), op.clone())
                } else if key.is_key(right) {
                    let flipped = match op {
                        BinaryOperator::Lt => BinaryOperator::Gt,
                        BinaryOperator::LtEq => BinaryOperator::GtEq,
                        BinaryOperator::Gt => BinaryOperator::Lt,
                        _ => BinaryOperator::LtEq,
                    };
                    (cx.operand(left), flipped)
                } else {
                    (None, op.clone())
                };
                match v {
                    Some(v) => match op {
                        BinaryOperator::Lt => KeyExpr::Range(Bound::Unbounded, Bound::Excluded(v)),
                        BinaryOperator::LtEq => {
                            KeyExpr::Range(Bound::Unbounded, Bound::Included(v))
                        }
                        BinaryOperator::Gt => KeyExpr::Range(Bound::Excluded(v), Bound::Unbounded),
                        _ => KeyExpr::Range(Bound::Included(v), Bound::Unbounded),
                    },
                    None => KeyExpr::Unknown,
                }
            }
            _ => KeyExpr::Unknown,
        },
        Expr::InList {
            expr,
            list,
            negated: false,
        } if key.is_key(expr) => list
            .iter()
            .map(|i| cx.operand(i))
            .collect::<Option<Vec<_>>>()
            .map_or(KeyExpr::Unknown, KeyExpr::In),
        Expr::Between {
            expr,
            negated: false,
            low,
            high,
        } if key.is_key(expr) => match (cx.operand(low), cx.operand(high)) {
            (Some(l), Some(h)) => KeyExpr::Range(Bound::Included(l), Bound::Included(h)),
            _ => KeyExpr::Unknown,
        },
        _ => KeyExpr::Unknown,
    }
}

/// True when the condition holds for no row whose shard key is NULL (literal
/// values only: a parameter may be bound to NULL, and `<=> NULL` is a point too).
pub fn rejects_null(k: &KeyExpr) -> bool {
    let lit = |o: &Operand| matches!(o, Operand::Lit(v) if *v != Value::Null);
    let bound = |b: &Bound<Operand>| match b {
        Bound::Included(o) | Bound::Excluded(o) => lit(o),
        Bound::Unbounded => false,
    };
    match k {
        KeyExpr::And(a, b) => rejects_null(a) || rejects_null(b),
        KeyExpr::Or(a, b) => rejects_null(a) && rejects_null(b),
        KeyExpr::Point(o) => lit(o),
        KeyExpr::In(list) => !list.is_empty() && list.iter().all(lit),
        KeyExpr::Range(l, h) => bound(l) || bound(h),
        KeyExpr::Unknown => false,
    }
}

fn resolve<'v>(o: &'v Operand, params: &'v [Value]) -> Option<&'v Value> {
    match o {
        Operand::Lit(v) => Some(v),
        Operand::Param(i) => params.get(*i),
    }
}

fn bound<'v>(x: &'v Bound<Operand>, params: &'v [Value]) -> Option<Bound<&'v Value>> {
    Some(match x {
        Bound::Included(o) => Bound::Included(resolve(o, params)?),
        Bound::Excluded(o) => Bound::Excluded(resolve(o, params)?),
        Bound::Unbounded => Bound::Unbounded,
    })
}

/// The shards a reduced condition can touch; `None`: not narrowed (every shard).
pub fn eval(k: &KeyExpr, alg: &Algorithm, params: &[Value]) -> Option<ShardSet> {
    match k {
        KeyExpr::And(a, b) => match (eval(a, alg, params), eval(b, alg, params)) {
            (Some(a), Some(b)) => {
                let both = a.intersection(&b);
                Some(if both.is_empty() {
                    ShardSet::one(0)
                } else {
                    both
                })
            }
            (a, None) => a,
            (None, b) => b,
        },
        KeyExpr::Or(a, b) => match (eval(a, alg, params), eval(b, alg, params)) {
            (Some(a), Some(b)) => Some(a.union(&b)),
            _ => None,
        },
        KeyExpr::Point(o) => point(alg, resolve(o, params)?),
        KeyExpr::In(list) => {
            let mut set = ShardSet::empty();
            for o in list {
                set = set.union(&point(alg, resolve(o, params)?)?);
            }
            Some(set)
        }
        KeyExpr::Range(low, high) => {
            let (l, h) = (bound(low, params)?, bound(high, params)?);
            let is_null = |x: &Bound<&Value>| matches!(x, Bound::Included(v) | Bound::Excluded(v) if **v == Value::Null);
            if is_null(&l) || is_null(&h) {
                return None;
            }
            range(alg, l, h)
        }
        KeyExpr::Unknown => None,
    }
}
