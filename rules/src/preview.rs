//! Resharding preview: before a rule change is applied, how much data would move.

use crate::algorithm::Algorithm;
use crate::value::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct MovePreview {
    pub sampled: usize,
    /// Keys whose shard differs between the rules.
    pub moved: usize,
    /// Keys one of the rules cannot place (out of range, not listed ...).
    pub unplaceable: usize,
}

impl MovePreview {
    pub fn moved_fraction(&self) -> f64 {
        if self.sampled == 0 {
            0.0
        } else {
            self.moved as f64 / self.sampled as f64
        }
    }
}

/// Compares where `old` and `new` put each key of `sample`. `location` maps a shard to
/// where it physically lives (node + table), so a renumbering that keeps data in place
/// counts as no move; pass `|s| s` to compare shard numbers.
pub fn preview<L: PartialEq>(
    old: &Algorithm,
    new: &Algorithm,
    sample: &[Value],
    old_location: impl Fn(u32) -> L,
    new_location: impl Fn(u32) -> L,
) -> MovePreview {
    let mut p = MovePreview {
        sampled: sample.len(),
        moved: 0,
        unplaceable: 0,
    };
    for v in sample {
        match (old.shard_of(v), new.shard_of(v)) {
            (Ok(a), Ok(b)) => {
                if old_location(a) != new_location(b) {
                    p.moved += 1;
                }
            }
            _ => p.unplaceable += 1,
        }
    }
    p
}

/// A deterministic sample of integer keys spread over `[lo, hi]`.
pub fn integer_sample(lo: i128, hi: i128, count: usize) -> Vec<Value> {
    if count == 0 || hi < lo {
        return Vec::new();
    }
    let span = (hi - lo) as u128 + 1;
    (0..count as u128)
        .map(|i| Value::Int(lo + ((i * span) / count as u128) as i128))
        .collect()
}
