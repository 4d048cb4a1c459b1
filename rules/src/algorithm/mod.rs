//! Shard algorithms: a value → one shard index; a value range → the shards it can touch.
//!
//! Range answers are supersets: a shard may be listed that holds no matching row, but a
//! shard that holds one is never left out. Where a range cannot be narrowed (hashes over
//! wide ranges) the answer is every shard.

mod date;
mod hashing;
mod list;
mod modulo;
mod murmur;
mod range;
mod shardingsphere;
mod shardset;

use std::ops::Bound;

pub use date::{civil_from_days, parse_datetime, Civil, DateRule, DateUnit, IntDates};
pub use hashing::{HashMod, Jump};
pub use list::ListRule;
pub use modulo::Modulo;
pub use murmur::MycatMurmur;
pub use range::RangeRule;
pub use shardingsphere::{IntervalUnit, JavaType, SsHashMod, SsInterval};
pub use shardset::ShardSet;

use crate::value::Value;

/// Why a value has no shard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("shard key value {0} is not an integer")]
    NotInteger(String),
    #[error("shard key value {0} is outside every range of the rule")]
    OutOfRange(String),
    #[error(
        "shard key value {0} is in a period whose table is not created yet: an open-ended \
         date rule has tables up to {1} periods after the current one; raise the rule's `ahead`"
    )]
    NotYet(String, u32),
    #[error("shard key value {0} is not listed and the rule has no default shard")]
    NotListed(String),
    #[error("shard key value {0} is not a date or time this rule understands ({1})")]
    BadDate(String, String),
}

/// Up to this many integers, a range is answered by placing each one.
pub(crate) const ENUMERATE_LIMIT: i128 = 256;

#[derive(Debug, Clone)]
pub enum Algorithm {
    Mod(Modulo),
    HashMod(HashMod),
    Jump(Jump),
    Murmur(MycatMurmur),
    Range(RangeRule),
    List(ListRule),
    Date(DateRule),
    SsMod(Modulo),
    SsHashMod(SsHashMod),
    SsInterval(SsInterval),
}

impl Algorithm {
    pub fn shards(&self) -> u32 {
        match self {
            Algorithm::Mod(a) | Algorithm::SsMod(a) => a.shards,
            Algorithm::HashMod(a) => a.shards,
            Algorithm::Jump(a) => a.shards,
            Algorithm::Murmur(a) => a.shards(),
            Algorithm::Range(a) => a.shards(),
            Algorithm::List(a) => a.shards,
            Algorithm::Date(a) => a.shards,
            Algorithm::SsHashMod(a) => a.shards,
            Algorithm::SsInterval(a) => a.shards(),
        }
    }

    /// The algorithm's name as rules spell it (`mod`, `hash_mod`, …), for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Algorithm::Mod(_) => "mod",
            Algorithm::SsMod(_) => "ss_mod",
            Algorithm::HashMod(_) => "hash_mod",
            Algorithm::Jump(_) => "jump",
            Algorithm::Murmur(_) => "murmur",
            Algorithm::Range(_) => "range",
            Algorithm::List(_) => "list",
            Algorithm::Date(_) => "date",
            Algorithm::SsHashMod(_) => "ss_hash_mod",
            Algorithm::SsInterval(_) => "ss_interval",
        }
    }

    /// One shard per period, forever (an open-ended date rule): its shard count grows
    /// with time, so tables place its shards round robin, one table per period.
    pub fn open_ended(&self) -> bool {
        matches!(self, Algorithm::Date(d) if d.open_ended)
    }

    /// The one shard holding `value`. NULL keys live on shard 0 for every algorithm.
    pub fn shard_of(&self, value: &Value) -> Result<u32, RuleError> {
        if *value == Value::Null {
            return Ok(0);
        }
        match self {
            Algorithm::Mod(a) | Algorithm::SsMod(a) => a.shard_of(value),
            Algorithm::HashMod(a) => Ok(a.shard_of(value)),
            Algorithm::Jump(a) => Ok(a.shard_of(value)),
            Algorithm::Murmur(a) => Ok(a.shard_of(value)),
            Algorithm::Range(a) => a.shard_of(value),
            Algorithm::List(a) => a.shard_of(value),
            Algorithm::Date(a) => a.shard_of(value),
            Algorithm::SsHashMod(a) => a.shard_of(value),
            Algorithm::SsInterval(a) => a.shard_of(value),
        }
    }

    /// Shards that can hold values between `low` and `high` (`BETWEEN`, `<`, `>=` ...).
    pub fn shards_in(
        &self,
        low: Bound<&Value>,
        high: Bound<&Value>,
    ) -> Result<ShardSet, RuleError> {
        let n = self.shards();
        match self {
            Algorithm::Range(a) => return a.shards_in(low, high),
            Algorithm::Date(a) => return a.shards_in(low, high),
            Algorithm::SsInterval(a) => return a.shards_in(low, high),
            Algorithm::Mod(a) | Algorithm::SsMod(a) => {
                if let Some((lo, hi)) = int_interval(low, high) {
                    if hi < lo {
                        return Ok(ShardSet::empty());
                    }
                    if hi - lo + 1 >= n as i128 {
                        return Ok(ShardSet::all(n));
                    }
                    return (lo..=hi).map(|i| a.shard_of(&Value::Int(i))).collect();
                }
            }
            _ => {
                if let Some((lo, hi)) = int_interval(low, high) {
                    if hi < lo {
                        return Ok(ShardSet::empty());
                    }
                    if hi - lo < ENUMERATE_LIMIT {
                        return (lo..=hi).map(|i| self.shard_of(&Value::Int(i))).collect();
                    }
                }
            }
        }
        Ok(match self {
            Algorithm::List(a) => a.reachable(),
            _ => ShardSet::all(n),
        })
    }

    /// Shards for `IN (...)`: the union of each value's shard.
    pub fn shards_for_values<'a>(
        &self,
        values: impl IntoIterator<Item = &'a Value>,
    ) -> Result<ShardSet, RuleError> {
        values.into_iter().map(|v| self.shard_of(v)).collect()
    }

    /// A name suffix for shard `i` where the rule defines one (time rules), else `None`.
    pub fn suffix(&self, shard: u32) -> Option<String> {
        match self {
            Algorithm::Date(a) => a.suffix(shard),
            Algorithm::SsInterval(a) => Some(a.suffix(shard)),
            _ => None,
        }
    }
}

/// Closed integer interval for integer (or decimal) bounds; `None` when a bound is
/// open-ended or not numeric.
pub(crate) fn int_interval(low: Bound<&Value>, high: Bound<&Value>) -> Option<(i128, i128)> {
    let lo = match low {
        Bound::Included(v) => ceil(v)?,
        Bound::Excluded(v) => floor(v)?.checked_add(1)?,
        Bound::Unbounded => return None,
    };
    let hi = match high {
        Bound::Included(v) => floor(v)?,
        Bound::Excluded(v) => ceil(v)?.checked_sub(1)?,
        Bound::Unbounded => return None,
    };
    Some((lo, hi))
}

/// Integer bounds with unbounded ends kept open.
pub(crate) fn int_bounds(
    low: Bound<&Value>,
    high: Bound<&Value>,
) -> Option<(Option<i128>, Option<i128>)> {
    let lo = match low {
        Bound::Included(v) => Some(ceil(v)?),
        Bound::Excluded(v) => Some(floor(v)?.checked_add(1)?),
        Bound::Unbounded => None,
    };
    let hi = match high {
        Bound::Included(v) => Some(floor(v)?),
        Bound::Excluded(v) => Some(ceil(v)?.checked_sub(1)?),
        Bound::Unbounded => None,
    };
    Some((lo, hi))
}

fn split_decimal(v: &Value) -> Option<(i128, bool, bool)> {
    // (truncated integer part, has fraction, negative)
    match v {
        Value::Int(i) => Some((*i, false, *i < 0)),
        Value::Decimal(d) => {
            let neg = d.starts_with('-');
            let (i, f) = d.split_once('.').unwrap_or((d, ""));
            Some((i.parse().ok()?, !f.is_empty(), neg))
        }
        Value::Text(t) => match Value::number(t)? {
            Value::Null | Value::Text(_) => None,
            n => split_decimal(&n),
        },
        Value::Null => None,
    }
}

fn floor(v: &Value) -> Option<i128> {
    let (i, frac, neg) = split_decimal(v)?;
    Some(if frac && neg { i - 1 } else { i })
}

fn ceil(v: &Value) -> Option<i128> {
    let (i, frac, neg) = split_decimal(v)?;
    Some(if frac && !neg { i + 1 } else { i })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_intervals_from_decimal_bounds() {
        let d = |s: &str| Value::number(s).unwrap();
        let (a, b) = (d("2.5"), d("7.5"));
        assert_eq!(
            int_interval(Bound::Included(&a), Bound::Included(&b)),
            Some((3, 7))
        );
        let (a, b) = (d("-2.5"), d("-0.5"));
        assert_eq!(
            int_interval(Bound::Included(&a), Bound::Excluded(&b)),
            Some((-2, -1))
        );
        let (a, b) = (Value::Int(3), Value::Int(3));
        assert_eq!(
            int_interval(Bound::Excluded(&a), Bound::Excluded(&b)),
            Some((4, 2))
        );
        assert_eq!(int_interval(Bound::Unbounded, Bound::Included(&b)), None);
    }
}
