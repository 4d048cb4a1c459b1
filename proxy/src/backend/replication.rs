//! What shardgate knows of each replica: the position it has applied, how far it lags
//! behind its primary, and whether it may serve reads. Learned by the health task
//! each round (one `SHOW SLAVE STATUS` per replica, one `@@gtid_binlog_pos` per
//! primary), and raised by reads that waited for a position there. No sockets here:
//! the health task asks, this module decides.
//!
//! Lag is measured in two ways and the larger wins: the server's own
//! `Seconds_Behind_Master`, and the age of the oldest primary position (sampled each
//! round) the replica has not reached. The second sees lag below a second, with the
//! health interval as its resolution.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::gtid::GtidPos;

/// Primary positions kept for the lag estimate.
const SAMPLES: usize = 120;

/// A primary's recent positions, oldest first.
#[derive(Debug, Default)]
pub struct PrimaryHistory {
    samples: Mutex<VecDeque<(Instant, GtidPos)>>,
}

impl PrimaryHistory {
    pub fn record(&self, at: Instant, pos: GtidPos) {
        let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if s.back().is_some_and(|(_, p)| *p == pos) {
            return;
        }
        if s.len() == SAMPLES {
            s.pop_front();
        }
        s.push_back((at, pos));
    }

    /// The newest position seen.
    pub fn latest(&self) -> Option<GtidPos> {
        let s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        s.back().map(|(_, p)| p.clone())
    }

    /// How long the oldest primary position the replica has not applied has existed:
    /// zero when it has applied the newest.
    pub fn lag_of(&self, applied: &GtidPos, now: Instant) -> Duration {
        let s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        s.iter()
            .find(|(_, p)| !applied.covers(p))
            .map_or(Duration::ZERO, |(at, _)| now.saturating_duration_since(*at))
    }
}

/// A replica's replication, as last seen.
#[derive(Debug, Clone, Default)]
pub struct ReplicaState {
    /// GTIDs applied (`@@gtid_slave_pos`, or `@@gtid_current_pos` for a server that
    /// replicates from nothing).
    pub applied: GtidPos,
    /// Lag in milliseconds; `None` until measured.
    pub lag_ms: Option<u64>,
    /// Why the replica is out of the read rotation, when it is.
    pub excluded: Option<String>,
    /// Whether a probe ever answered.
    pub probed: bool,
    /// A wait for this position ran out here: reads that need it (or more) do not
    /// wait again until a probe sees the replica there.
    pub behind: Option<GtidPos>,
}

/// The replica half of a pool: its state, behind a lock taken briefly.
#[derive(Debug, Default)]
pub struct Replication {
    state: Mutex<ReplicaState>,
}

impl Replication {
    fn lock(&self) -> std::sync::MutexGuard<'_, ReplicaState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> ReplicaState {
        self.lock().clone()
    }

    /// The replica may serve reads (it is not stopped, nor too far behind).
    pub fn in_rotation(&self) -> bool {
        self.lock().excluded.is_none()
    }

    /// The replica is known to have applied `pos`.
    pub fn has_applied(&self, pos: &GtidPos) -> bool {
        self.lock().applied.covers(pos)
    }

    /// A read waited for `pos` there and found it applied.
    pub fn note_applied(&self, pos: &GtidPos) {
        self.lock().applied.merge(pos);
    }

    /// A read's wait for `pos` ran out there.
    pub fn note_behind(&self, pos: &GtidPos) {
        self.lock().behind = Some(pos.clone());
    }

    /// A wait for `pos` would run out too: an earlier one, for a position `pos`
    /// includes, did, and no probe has seen the replica get there since.
    pub fn known_behind(&self, pos: &GtidPos) -> bool {
        self.lock().behind.as_ref().is_some_and(|b| pos.covers(b))
    }

    /// Takes in what the replica said (`SHOW SLAVE STATUS`, and its own position when
    /// it replicates from nothing) and decides whether it serves reads.
    pub fn observe(&self, label: &str, seen: Seen, primary: &PrimaryHistory, max_lag: Duration) {
        let now = Instant::now();
        let estimated = primary.lag_of(&seen.applied, now);
        let lag = estimated.max(Duration::from_secs(seen.seconds_behind.unwrap_or(0)));
        let lag_ms = u64::try_from(lag.as_millis()).unwrap_or(u64::MAX);
        let excluded = seen.stopped.or_else(|| {
            (lag > max_lag).then(|| {
                format!(
                    "lag {lag_ms} ms is over max_replica_lag_ms ({})",
                    max_lag.as_millis()
                )
            })
        });
        let mut st = self.lock();
        let behind = st.behind.take().filter(|b| !seen.applied.covers(b));
        if st.excluded != excluded {
            match &excluded {
                Some(why) => {
                    tracing::warn!(replica = %label, %why, "replica leaves the read rotation")
                }
                None => tracing::info!(replica = %label, "replica is in the read rotation"),
            }
        }
        *st = ReplicaState {
            applied: seen.applied,
            lag_ms: Some(lag_ms),
            excluded,
            probed: true,
            behind,
        };
    }
}

/// One look at a replica.
#[derive(Debug, Default)]
pub struct Seen {
    pub applied: GtidPos,
    /// Why it does not apply what its primary sends, when it does not.
    pub stopped: Option<String>,
    pub seconds_behind: Option<u64>,
}

impl Seen {
    /// Reads `SHOW SLAVE STATUS` (its column names and rows); `None` when it has no
    /// row (the server replicates from nothing). The applied position is not among
    /// its columns (`Gtid_IO_Pos` is what was received): the caller adds
    /// `@@gtid_slave_pos`.
    pub fn from_status(names: &[String], rows: &[Vec<Option<Vec<u8>>>]) -> Option<Seen> {
        let row = rows.first()?;
        let col = |name: &str| -> String {
            names
                .iter()
                .position(|n| n.eq_ignore_ascii_case(name))
                .and_then(|i| row.get(i)?.as_deref())
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let sql = col("Slave_SQL_Running");
        let io = col("Slave_IO_Running");
        let stopped = if !sql.eq_ignore_ascii_case("yes") {
            Some(format!("replication stopped (Slave_SQL_Running: {sql})"))
        } else if io.eq_ignore_ascii_case("no") {
            Some("replication stopped (Slave_IO_Running: No)".to_string())
        } else {
            None
        };
        Some(Seen {
            applied: GtidPos::default(),
            stopped,
            seconds_behind: col("Seconds_Behind_Master").parse().ok(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_age_of_the_oldest_position_not_applied() {
        let h = PrimaryHistory::default();
        let t0 = Instant::now();
        let pos = |s: &str| GtidPos::parse(s.as_bytes()).unwrap();
        h.record(t0, pos("0-1-10"));
        h.record(t0 + Duration::from_millis(500), pos("0-1-20"));
        h.record(t0 + Duration::from_millis(1000), pos("0-1-30"));
        let now = t0 + Duration::from_millis(1200);
        assert_eq!(h.lag_of(&pos("0-1-30"), now), Duration::ZERO);
        assert_eq!(h.lag_of(&pos("0-1-25"), now), Duration::from_millis(200));
        assert_eq!(h.lag_of(&pos("0-1-15"), now), Duration::from_millis(700));
        assert_eq!(
            h.lag_of(&GtidPos::default(), now),
            Duration::from_millis(1200)
        );
    }

    #[test]
    fn a_stopped_or_lagging_replica_leaves_the_rotation_and_comes_back() {
        // Columns of MariaDB's SHOW SLAVE STATUS that matter (Gtid_IO_Pos is what was
        // received, not applied: the applied position comes from @@gtid_slave_pos).
        let names: Vec<String> = [
            "Slave_IO_Running",
            "Slave_SQL_Running",
            "Gtid_IO_Pos",
            "Seconds_Behind_Master",
        ]
        .map(String::from)
        .to_vec();
        let seen = |io: &str, sql: &str, behind: Option<&str>, applied: &str| {
            let rows = vec![vec![
                Some(io.as_bytes().to_vec()),
                Some(sql.as_bytes().to_vec()),
                Some(b"0-1-999".to_vec()),
                behind.map(|b| b.as_bytes().to_vec()),
            ]];
            let mut seen = Seen::from_status(&names, &rows).expect("a row");
            assert!(seen.applied.is_empty(), "received is not applied");
            seen.applied = GtidPos::parse(applied.as_bytes()).expect("gtid");
            seen
        };
        let primary = PrimaryHistory::default();
        let r = Replication::default();
        let max = Duration::from_millis(1000);
        r.observe("r", seen("Yes", "No", None, "0-1-5"), &primary, max);
        assert!(!r.in_rotation());
        let why = r.snapshot().excluded.unwrap_or_default();
        assert!(why.contains("Slave_SQL_Running: No"), "{why}");
        r.observe("r", seen("Yes", "Yes", Some("3"), "0-1-5"), &primary, max);
        assert!(!r.in_rotation(), "3 s behind is over 1000 ms");
        r.observe(
            "r",
            seen("Connecting", "Yes", Some("0"), "0-1-9"),
            &primary,
            max,
        );
        assert!(r.in_rotation(), "a primary that is away stops no reads");
        assert!(r.has_applied(&GtidPos::parse(b"0-1-9").unwrap()));
        assert!(!r.has_applied(&GtidPos::parse(b"0-1-10").unwrap()));
        assert!(Seen::from_status(&names, &[]).is_none());
    }
}
