//! `range`: explicit integer boundaries. Shard `i` holds `[b[i], b[i+1])`; values below
//! the first boundary or at/after the last go to the first/last shard when the rule's
//! ends are open, and are refused otherwise.

use std::ops::Bound;

use super::{int_bounds, RuleError, ShardSet};
use crate::value::Value;

#[derive(Debug, Clone)]
pub struct RangeRule {
    /// Strictly increasing, at least two.
    pub boundaries: Vec<i128>,
    pub open_below: bool,
    pub open_above: bool,
}

impl RangeRule {
    pub fn shards(&self) -> u32 {
        (self.boundaries.len() - 1) as u32
    }

    fn index(&self, i: i128) -> Option<u32> {
        let b = &self.boundaries;
        if i < b[0] {
            return self.open_below.then_some(0);
        }
        if i >= b[b.len() - 1] {
            return self.open_above.then_some(self.shards() - 1);
        }
        // Number of boundaries <= i, minus one.
        Some((b.partition_point(|x| *x <= i) - 1) as u32)
    }

    pub fn shard_of(&self, v: &Value) -> Result<u32, RuleError> {
        let i = v
            .as_int()
            .ok_or_else(|| RuleError::NotInteger(v.java_text().into_owned()))?;
        self.index(i)
            .ok_or_else(|| RuleError::OutOfRange(i.to_string()))
    }

    pub fn shards_in(
        &self,
        low: Bound<&Value>,
        high: Bound<&Value>,
    ) -> Result<ShardSet, RuleError> {
        let Some((lo, hi)) = int_bounds(low, high) else {
            return Ok(ShardSet::all(self.shards()));
        };
        let b = &self.boundaries;
        let lo = lo.unwrap_or(i128::MIN);
        let hi = hi.unwrap_or(i128::MAX);
        if hi < lo {
            return Ok(ShardSet::empty());
        }
        // Clamp to the covered span, then take every shard between the ends.
        let first = b[0];
        let last = b[b.len() - 1] - 1;
        let lo_c = if self.open_below { lo } else { lo.max(first) };
        let hi_c = if self.open_above { hi } else { hi.min(last) };
        if hi_c < lo_c {
            return Ok(ShardSet::empty());
        }
        let (Some(a), Some(z)) = (self.index(lo_c), self.index(hi_c)) else {
            return Ok(ShardSet::empty());
        };
        Ok((a..=z).collect())
    }
}
