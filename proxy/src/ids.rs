//! Global ids for INSERTs that omit a table's global id column: snowflake ids from
//! this process's clock, strictly increasing even when the clock steps back or many
//! ids are taken in one millisecond.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Ids per millisecond the 12-bit sequence allows.
const PER_MS: u16 = 4096;

#[derive(Default)]
pub struct IdGenerator {
    /// Millisecond and sequence of the last id handed out.
    last: Mutex<(u64, u16)>,
}

impl IdGenerator {
    /// `n` fresh ids for `worker` (the instance's configured worker id).
    pub fn take(&self, worker: u16, n: usize) -> Vec<i64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let (ms, seq) = *last;
            // Never go back: a clock that steps back borrows from the last millisecond,
            // and a full millisecond moves on to the next one.
            *last = if now > ms {
                (now, 0)
            } else if seq + 1 < PER_MS {
                (ms, seq + 1)
            } else {
                (ms + 1, 0)
            };
            out.push(rules::table::snowflake(last.0, worker, last.1));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_across_a_full_millisecond() {
        let g = IdGenerator::default();
        let ids = g.take(3, 10_000);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(ids.iter().all(|i| (i >> 12) & 0x3ff == 3), "worker bits");
        let more = g.take(3, 1);
        assert!(more[0] > ids[ids.len() - 1]);
    }
}
