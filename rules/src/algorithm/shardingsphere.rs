//! ShardingSphere-compatible algorithms, so a ShardingSphere user keeps their data where
//! it is. (`MOD` is [`Modulo`](super::Modulo): BigInteger.mod, never negative.)
//!
//! - `HASH_MOD`: `Math.abs((long) value.hashCode()) % sharding-count`, with Java's
//!   `hashCode` of the value's Java type (`Long`, `Integer` or `String`).
//! - `INTERVAL`: `[lower + k·amount, lower + (k+1)·amount)` is shard k, for every k whose
//!   interval starts at or before `upper`; the table suffix is the interval start
//!   formatted with `sharding-suffix-pattern`. Wall-clock (LocalDateTime) arithmetic.

use std::ops::Bound;

use super::date::{civil_from_days, format_date, parse_datetime, Civil};
use super::{RuleError, ShardSet};
use crate::hash::{java_long_hash, java_string_hash};
use crate::value::Value;

/// The Java type a ShardingSphere application binds the sharding column as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JavaType {
    Long,
    Integer,
    String,
}

#[derive(Debug, Clone)]
pub struct SsHashMod {
    pub shards: u32,
    pub java_type: JavaType,
}

impl SsHashMod {
    pub fn shard_of(&self, v: &Value) -> Result<u32, RuleError> {
        let not_int = || RuleError::NotInteger(v.java_text().into_owned());
        let hash = match self.java_type {
            JavaType::String => java_string_hash(&v.java_text()),
            JavaType::Long => java_long_hash(
                v.as_int()
                    .and_then(|i| i64::try_from(i).ok())
                    .ok_or_else(not_int)?,
            ),
            JavaType::Integer => v
                .as_int()
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(not_int)?,
        };
        Ok(((hash as i64).abs() % self.shards as i64) as u32)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalUnit {
    Hours,
    Days,
    Months,
    Years,
}

#[derive(Debug, Clone)]
pub struct SsInterval {
    pub lower: Civil,
    pub upper: Civil,
    pub unit: IntervalUnit,
    pub amount: u32,
    pub suffix_pattern: String,
    /// Intervals starting at or before `upper`, counted once at build.
    shards: u32,
}

const NANOS_PER_HOUR: i128 = 3_600_000_000_000;

impl SsInterval {
    fn bucket(&self, c: Civil) -> i64 {
        let nanos = |c: Civil| c.days as i128 * 24 * NANOS_PER_HOUR + c.nanos_of_day as i128;
        let amount = self.amount as i128;
        match self.unit {
            IntervalUnit::Hours => {
                (nanos(c) - nanos(self.lower)).div_euclid(amount * NANOS_PER_HOUR) as i64
            }
            IntervalUnit::Days => {
                (nanos(c) - nanos(self.lower)).div_euclid(amount * 24 * NANOS_PER_HOUR) as i64
            }
            IntervalUnit::Months | IntervalUnit::Years => {
                // `lower` is the first instant of a month (checked when the rule is built).
                let (y, m, _) = civil_from_days(c.days);
                let (ly, lm, _) = civil_from_days(self.lower.days);
                let months = ((y - ly) * 12 + m as i64 - lm as i64) as i128;
                let per = if self.unit == IntervalUnit::Years {
                    12 * amount
                } else {
                    amount
                };
                months.div_euclid(per) as i64
            }
        }
    }

    pub fn new(
        lower: Civil,
        upper: Civil,
        unit: IntervalUnit,
        amount: u32,
        suffix_pattern: String,
    ) -> Self {
        let mut rule = SsInterval {
            lower,
            upper,
            unit,
            amount: amount.max(1),
            suffix_pattern,
            shards: 0,
        };
        rule.shards = u32::try_from((rule.bucket(upper) + 1).max(0)).unwrap_or(u32::MAX);
        rule
    }

    pub fn shards(&self) -> u32 {
        self.shards
    }

    fn civil(&self, v: &Value) -> Result<Civil, RuleError> {
        let text = v.java_text();
        parse_datetime(&text).map(|(c, _)| c).ok_or_else(|| {
            RuleError::BadDate(text.into_owned(), "expected yyyy-MM-dd HH:mm:ss".into())
        })
    }

    pub fn shard_of(&self, v: &Value) -> Result<u32, RuleError> {
        let b = self.bucket(self.civil(v)?);
        if b < 0 || b >= self.shards() as i64 {
            return Err(RuleError::OutOfRange(v.java_text().into_owned()));
        }
        Ok(b as u32)
    }

    pub fn shards_in(
        &self,
        low: Bound<&Value>,
        high: Bound<&Value>,
    ) -> Result<ShardSet, RuleError> {
        let lo = match low {
            Bound::Included(v) | Bound::Excluded(v) => self.bucket(self.civil(v)?),
            Bound::Unbounded => 0,
        }
        .max(0);
        let hi = match high {
            Bound::Included(v) | Bound::Excluded(v) => self.bucket(self.civil(v)?),
            Bound::Unbounded => i64::MAX,
        }
        .min(self.shards() as i64 - 1);
        if hi < lo {
            return Ok(ShardSet::empty());
        }
        Ok((lo as u32..=hi as u32).collect())
    }

    pub fn suffix(&self, shard: u32) -> String {
        let k = shard as i64 * self.amount as i64;
        let (ly, lm, ld) = civil_from_days(self.lower.days);
        let lh = (self.lower.nanos_of_day / NANOS_PER_HOUR as u64) as i64;
        let (y, m, d, h) = match self.unit {
            IntervalUnit::Hours => {
                let hours = self.lower.days * 24 + lh + k;
                let (y, m, d) = civil_from_days(hours.div_euclid(24));
                (y, m, d, hours.rem_euclid(24))
            }
            IntervalUnit::Days => {
                let (y, m, d) = civil_from_days(self.lower.days + k);
                (y, m, d, lh)
            }
            IntervalUnit::Months | IntervalUnit::Years => {
                let per = if self.unit == IntervalUnit::Years {
                    12
                } else {
                    1
                };
                let months = ly * 12 + lm as i64 - 1 + k * per;
                (
                    months.div_euclid(12),
                    (months.rem_euclid(12) + 1) as u32,
                    ld,
                    lh,
                )
            }
        };
        format_date(&self.suffix_pattern, y, m, d, h as u32)
    }
}
