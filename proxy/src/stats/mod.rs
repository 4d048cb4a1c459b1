//! Statement statistics for the admin port: per digest, how often, how long (total,
//! mean, p99, max), how many failed, rows and shards touched (`SHOW STATS`, reset by
//! `RESET STATS`), and the slowest statements' own text (`SHOW SLOW QUERIES`).
//!
//! Recorded once per statement from the session: a digest pass over the text (into
//! the session's buffer) and one short lock. Latency goes into fixed log-scale buckets,
//! so p99 is read from 4 buckets per power of two (within 19%), with no samples kept.

pub mod digest;

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// Digests kept at most; statements of new shapes past it count under one row.
const MAX_DIGESTS: usize = 5000;
/// Slow statements kept, the newest last.
const MAX_SLOW: usize = 200;
/// Slow statements' text kept, at most.
const SLOW_TEXT: usize = 2048;
/// Latency buckets: 4 per power of two of microseconds, up to ~2^32 µs.
const BUCKETS: usize = 132;
/// The row statements past [`MAX_DIGESTS`] share.
const OVERFLOW: u64 = 0;

/// What one statement did.
pub struct Observation<'a> {
    pub digest: u64,
    /// The digest's text (only copied for a digest seen the first time).
    pub digest_text: &'a [u8],
    pub elapsed: Duration,
    pub failed: bool,
    pub rows: u64,
    pub shards: u16,
}

struct Entry {
    text: String,
    count: u64,
    errors: u64,
    total_us: u64,
    max_us: u64,
    rows: u64,
    shards: u64,
    buckets: Box<[u32; BUCKETS]>,
}

/// A slow statement, as it ran.
#[derive(Debug, Clone)]
pub struct Slow {
    /// Unix seconds when it ended.
    pub at: u64,
    pub user: String,
    pub schema: Option<String>,
    pub elapsed: Duration,
    pub shards: u16,
    pub failed: bool,
    /// Its text, cut before anything that may be a password.
    pub statement: String,
}

pub struct Stats {
    digests: Mutex<HashMap<u64, Entry>>,
    slow: Mutex<VecDeque<Slow>>,
    /// Statements at least this long are kept in the slow log.
    pub slow_threshold: Duration,
}

impl Stats {
    pub fn new(slow_threshold: Duration) -> Stats {
        Stats {
            digests: Mutex::new(HashMap::new()),
            slow: Mutex::new(VecDeque::new()),
            slow_threshold,
        }
    }

    pub fn record(&self, o: &Observation<'_>) {
        let us = u64::try_from(o.elapsed.as_micros()).unwrap_or(u64::MAX);
        let mut map = self.digests.lock().unwrap_or_else(|p| p.into_inner());
        let key = if map.len() >= MAX_DIGESTS && !map.contains_key(&o.digest) {
            OVERFLOW
        } else {
            o.digest
        };
        let e = map.entry(key).or_insert_with(|| Entry {
            text: if key == OVERFLOW {
                "(statements of other shapes: the digest table is full)".into()
            } else {
                String::from_utf8_lossy(o.digest_text).into_owned()
            },
            count: 0,
            errors: 0,
            total_us: 0,
            max_us: 0,
            rows: 0,
            shards: 0,
            buckets: Box::new([0; BUCKETS]),
        });
        e.count += 1;
        e.errors += u64::from(o.failed);
        e.total_us = e.total_us.saturating_add(us);
        e.max_us = e.max_us.max(us);
        e.rows = e.rows.saturating_add(o.rows);
        e.shards += u64::from(o.shards);
        let b = &mut e.buckets[bucket(us)];
        *b = b.saturating_add(1);
    }

    pub fn is_slow(&self, elapsed: Duration) -> bool {
        elapsed >= self.slow_threshold
    }

    pub fn record_slow(&self, slow: Slow) {
        let mut log = self.slow.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() == MAX_SLOW {
            log.pop_front();
        }
        let mut slow = slow;
        if slow.statement.len() > SLOW_TEXT {
            let mut end = SLOW_TEXT;
            while !slow.statement.is_char_boundary(end) {
                end -= 1;
            }
            slow.statement.truncate(end);
        }
        log.push_back(slow);
    }

    pub fn reset(&self) {
        self.digests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.slow.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// `SHOW STATS` rows, by total time, longest first.
    pub fn rows(&self) -> Vec<Vec<Option<String>>> {
        let map = self.digests.lock().unwrap_or_else(|p| p.into_inner());
        let mut entries: Vec<(&u64, &Entry)> = map.iter().collect();
        entries.sort_by(|a, b| b.1.total_us.cmp(&a.1.total_us).then(a.0.cmp(b.0)));
        let ms = |us: u64| format!("{:.3}", us as f64 / 1000.0);
        entries
            .into_iter()
            .map(|(digest, e)| {
                vec![
                    Some(format!("{digest:016x}")),
                    Some(e.text.clone()),
                    Some(e.count.to_string()),
                    Some(e.errors.to_string()),
                    Some(ms(e.total_us)),
                    Some(ms(e.total_us / e.count.max(1))),
                    Some(ms(p99(&e.buckets, e.count).min(e.max_us))),
                    Some(ms(e.max_us)),
                    Some(e.rows.to_string()),
                    Some(format!("{:.2}", e.shards as f64 / e.count.max(1) as f64)),
                ]
            })
            .collect()
    }

    pub const COLUMNS: [&'static str; 10] = [
        "digest",
        "statement",
        "count",
        "errors",
        "total_ms",
        "mean_ms",
        "p99_ms",
        "max_ms",
        "rows",
        "shards_per_statement",
    ];

    /// The slow log, newest first.
    pub fn slow(&self) -> Vec<Slow> {
        let log = self.slow.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().rev().cloned().collect()
    }
}

/// The bucket of a latency: 4 per power of two.
fn bucket(us: u64) -> usize {
    let x = us.max(1);
    let exp = 63 - x.leading_zeros() as usize;
    let sub = if exp >= 2 {
        ((x >> (exp - 2)) & 3) as usize
    } else {
        ((x << (2 - exp)) & 3) as usize
    };
    (exp * 4 + sub).min(BUCKETS - 1)
}

/// The upper bound (µs) of bucket `i`.
fn upper(i: usize) -> u64 {
    let (exp, sub) = (i / 4, (i % 4) as u64);
    if exp >= 2 {
        (5 + sub) << (exp - 2)
    } else {
        ((5 + sub) >> (2 - exp)).max(1)
    }
}

/// The latency 99% of the statements stayed within (a bucket's upper bound).
fn p99(buckets: &[u32; BUCKETS], count: u64) -> u64 {
    let want = (count * 99).div_ceil(100);
    let mut seen = 0u64;
    for (i, &n) in buckets.iter().enumerate() {
        seen += u64::from(n);
        if seen >= want && seen > 0 {
            return upper(i);
        }
    }
    0
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
    let rem = secs % 86_400;
    let (y, m, d) = rules::algorithm::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_their_latencies() {
        for us in [1u64, 2, 3, 5, 7, 100, 999, 1000, 1001, 123_456, 10_000_000] {
            let i = bucket(us);
            assert!(
                upper(i) >= us,
                "{us} µs in bucket {i} of upper {}",
                upper(i)
            );
            assert!(
                upper(i) as f64 <= us as f64 * 1.25 + 1.0,
                "{us}: {}",
                upper(i)
            );
        }
    }

    #[test]
    fn p99_reads_the_tail() {
        let s = Stats::new(Duration::from_secs(1));
        for i in 0..100u64 {
            s.record(&Observation {
                digest: 7,
                digest_text: b"select ?",
                elapsed: Duration::from_micros(if i == 99 { 50_000 } else { 100 }),
                failed: i == 0,
                rows: 1,
                shards: 2,
            });
        }
        let rows = s.rows();
        let r = &rows[0];
        assert_eq!(r[1].as_deref(), Some("select ?"));
        assert_eq!(r[2].as_deref(), Some("100"));
        assert_eq!(r[3].as_deref(), Some("1"));
        let p99: f64 = r[6].as_deref().unwrap().parse().unwrap();
        assert!((0.1..0.13).contains(&p99), "{p99}");
        assert_eq!(r[7].as_deref(), Some("50.000"));
        assert_eq!(r[9].as_deref(), Some("2.00"));
        s.reset();
        assert!(s.rows().is_empty());
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_709_210_096), "2024-02-29 12:34:56");
    }
}
