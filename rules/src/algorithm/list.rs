//! `list`: an explicit value → shard map, with an optional default shard. Keys compare
//! by canonical form, so `'7'` and `7` are one key.

use std::collections::HashMap;

use super::{RuleError, ShardSet};
use crate::value::Value;

#[derive(Debug, Clone)]
pub struct ListRule {
    pub shards: u32,
    /// Canonical key bytes → shard.
    pub map: HashMap<Vec<u8>, u32>,
    pub default: Option<u32>,
    pub case_insensitive: bool,
}

impl ListRule {
    pub fn shard_of(&self, v: &Value) -> Result<u32, RuleError> {
        let mut buf = [0u8; 40];
        let key = v.canonical_in(self.case_insensitive, &mut buf);
        self.map
            .get(key.as_ref())
            .copied()
            .or(self.default)
            .ok_or_else(|| RuleError::NotListed(v.java_text().into_owned()))
    }

    /// Every shard some value can reach: the listed ones and the default.
    pub fn reachable(&self) -> ShardSet {
        self.map.values().copied().chain(self.default).collect()
    }
}
