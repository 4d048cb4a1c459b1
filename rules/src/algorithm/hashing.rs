//! Hash placement of any key type through its canonical form (see [`Value::canonical`]).
//!
//! - `hash_mod`: murmur3_32(canonical bytes, seed 0) mod shards.
//! - `jump`: jump consistent hash of a 64-bit key (two murmur3_32 passes, seeds 0 and
//!   0x9747b28c), so growing from n to n+1 shards moves only 1/(n+1) of the keys.

use crate::hash::{jump_consistent, key64, murmur3_32};
use crate::value::Value;

#[derive(Debug, Clone)]
pub struct HashMod {
    pub shards: u32,
    pub case_insensitive: bool,
}

impl HashMod {
    pub fn shard_of(&self, v: &Value) -> u32 {
        let mut buf = [0u8; 40];
        murmur3_32(&v.canonical_in(self.case_insensitive, &mut buf), 0) % self.shards
    }
}

#[derive(Debug, Clone)]
pub struct Jump {
    pub shards: u32,
    pub case_insensitive: bool,
}

impl Jump {
    pub fn shard_of(&self, v: &Value) -> u32 {
        let mut buf = [0u8; 40];
        jump_consistent(
            key64(&v.canonical_in(self.case_insensitive, &mut buf)),
            self.shards,
        )
    }
}
