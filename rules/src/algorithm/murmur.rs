//! `murmur`: Mycat's PartitionByMurmurHash, byte for byte, so a Mycat user keeps every
//! row where it is.
//!
//! Mycat builds a ring of `virtual_bucket_times × weight` points per shard. Point `n` of
//! shard `i` is the murmur3_32 (Guava `hashUnencodedChars`: UTF-16LE, given seed) of a
//! name built by appending to one growing string: `SHARD-i-NODE-0`, then
//! `SHARD-i-NODE-0-NODE-1`, ... The ring is a Java `TreeMap<Integer, Integer>` keyed by
//! the signed hash (a later shard overwrites an equal key). A value's text is hashed the
//! same way and goes to the first point at or after it, wrapping to the first point.

use std::collections::BTreeMap;

use crate::hash::murmur3_32_utf16;
use crate::value::Value;

#[derive(Debug, Clone)]
pub struct MycatMurmur {
    seed: u32,
    shards: u32,
    /// Ring points sorted by signed hash.
    ring: Vec<(i32, u32)>,
}

impl MycatMurmur {
    /// `weights[i]` is shard i's weight (Mycat's `weightMapFile`; 1 when absent).
    pub fn new(shards: u32, seed: i32, virtual_bucket_times: u32, weights: &[u32]) -> Self {
        let seed = seed as u32;
        let mut ring = BTreeMap::new();
        for i in 0..shards {
            let weight = weights.get(i as usize).copied().unwrap_or(1);
            let mut name = format!("SHARD-{i}");
            for n in 0..virtual_bucket_times * weight {
                name.push_str("-NODE-");
                name.push_str(&n.to_string());
                ring.insert(murmur3_32_utf16(&name, seed) as i32, i);
            }
        }
        MycatMurmur {
            seed,
            shards,
            ring: ring.into_iter().collect(),
        }
    }

    pub fn shards(&self) -> u32 {
        self.shards
    }

    pub fn shard_of(&self, v: &Value) -> u32 {
        let h = murmur3_32_utf16(&v.java_text(), self.seed) as i32;
        let i = self.ring.partition_point(|(k, _)| *k < h);
        self.ring
            .get(i)
            .or_else(|| self.ring.first())
            .map_or(0, |(_, s)| *s)
    }
}
