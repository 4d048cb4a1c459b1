//! Shard-key extraction: which shards a WHERE clause can touch.
//!
//! `None` means "not narrowed" (every shard). AND intersects, OR unites; anything not
//! understood leaves the set unnarrowed, so the answer is always a superset.

use std::ops::Bound;

use rules::{Algorithm, RuleError, ShardSet, Value};
use sqlparser::ast::{BinaryOperator, Expr, UnaryOperator, Value as SqlValue};

use super::RouteError;

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
            SqlValue::Number(n, _) => Value::number(n),
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
        Err(RuleError::OutOfRange(_)) | Err(RuleError::NotListed(_)) => Some(ShardSet::one(0)),
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

pub fn shards(
    e: &Expr,
    key: &KeyColumn<'_>,
    alg: &Algorithm,
) -> Result<Option<ShardSet>, RouteError> {
    Ok(match e {
        Expr::Nested(inner) => shards(inner, key, alg)?,
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And => match (shards(left, key, alg)?, shards(right, key, alg)?) {
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
            BinaryOperator::Or => match (shards(left, key, alg)?, shards(right, key, alg)?) {
                (Some(a), Some(b)) => Some(a.union(&b)),
                _ => None,
            },
            BinaryOperator::Eq | BinaryOperator::Spaceship => {
                let v = if key.is_key(left) {
                    literal(right)
                } else if key.is_key(right) {
                    literal(left)
                } else {
                    None
                };
                v.and_then(|v| point(alg, &v))
            }
            BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq => {
                // Normalise to `key OP value`.
                let (v, op) = if key.is_key(left) {
                    (literal(right), op.clone())
                } else if key.is_key(right) {
                    let flipped = match op {
                        BinaryOperator::Lt => BinaryOperator::Gt,
                        BinaryOperator::LtEq => BinaryOperator::GtEq,
                        BinaryOperator::Gt => BinaryOperator::Lt,
                        _ => BinaryOperator::LtEq,
                    };
                    (literal(left), flipped)
                } else {
                    (None, op.clone())
                };
                match v {
                    Some(v) if v != Value::Null => match op {
                        BinaryOperator::Lt => range(alg, Bound::Unbounded, Bound::Excluded(&v)),
                        BinaryOperator::LtEq => range(alg, Bound::Unbounded, Bound::Included(&v)),
                        BinaryOperator::Gt => range(alg, Bound::Excluded(&v), Bound::Unbounded),
                        _ => range(alg, Bound::Included(&v), Bound::Unbounded),
                    },
                    _ => None,
                }
            }
            _ => None,
        },
        Expr::InList {
            expr,
            list,
            negated: false,
        } if key.is_key(expr) => {
            let mut set = ShardSet::empty();
            for item in list {
                match literal(item).and_then(|v| point(alg, &v)) {
                    Some(s) => set = set.union(&s),
                    None => return Ok(None),
                }
            }
            Some(set)
        }
        Expr::Between {
            expr,
            negated: false,
            low,
            high,
        } if key.is_key(expr) => match (literal(low), literal(high)) {
            (Some(l), Some(h)) => range(alg, Bound::Included(&l), Bound::Included(&h)),
            _ => None,
        },
        _ => None,
    })
}
