//! `mod`: integer key modulo the shard count, always in `0..shards` (Euclidean
//! remainder: -1 mod 4 = 3), for BIGINT and BIGINT UNSIGNED alike. This is also
//! ShardingSphere's `MOD` (BigInteger.mod) and Mycat's PartitionByMod.

use super::RuleError;
use crate::value::Value;

#[derive(Debug, Clone)]
pub struct Modulo {
    pub shards: u32,
}

impl Modulo {
    pub fn shard_of(&self, v: &Value) -> Result<u32, RuleError> {
        let i = v
            .as_int()
            .ok_or_else(|| RuleError::NotInteger(v.java_text().into_owned()))?;
        Ok(i.rem_euclid(self.shards as i128) as u32)
    }
}
