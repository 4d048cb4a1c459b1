//! Transactions over several data nodes: XA ids, the durable decision log, and the
//! recovery of branches a crash left prepared. The commit protocol itself runs in
//! the session (`session::commit`); this module is what outlives a session.

pub mod log;
pub mod recovery;
pub mod xid;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub use log::{Decision, DecisionLog, LogError};

/// This instance's XA state, shared by its sessions and its recovery task.
pub struct Coordinator {
    prefix: String,
    /// This run's start (unix seconds): ids of earlier runs never collide with ours.
    run: u64,
    next: AtomicU64,
    pub log: DecisionLog,
    /// Global transactions a session of this run is committing or rolling back:
    /// recovery leaves their branches alone, since their outcome is still being
    /// decided or carried out by that session.
    in_flight: Mutex<HashSet<String>>,
}

impl Coordinator {
    pub fn open(dir: &std::path::Path, instance: &str) -> Result<Coordinator, LogError> {
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Ok(Coordinator {
            prefix: xid::prefix(instance),
            run,
            next: AtomicU64::new(1),
            log: DecisionLog::open(dir)?,
            in_flight: Mutex::new(HashSet::new()),
        })
    }

    /// A new global id, in flight until [`Coordinator::settled`].
    pub fn begin(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let gtrid = xid::gtrid(&self.prefix, self.run, n);
        self.flights().insert(gtrid.clone());
        gtrid
    }

    /// The session is done with `gtrid`: committed or rolled back everywhere it could
    /// reach. Branches still prepared somewhere are recovery's from now on.
    pub fn settled(&self, gtrid: &str) {
        self.flights().remove(gtrid);
    }

    /// A global id this instance started, not being settled by a session now.
    pub fn is_recoverable(&self, gtrid: &str) -> bool {
        gtrid.starts_with(&self.prefix) && !self.flights().contains(gtrid)
    }

    /// What every global id of this instance starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn in_flight(&self) -> usize {
        self.flights().len()
    }

    fn flights(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Test-only fault points, set by `SHARDGATE_FAILPOINT`: `name` aborts the process
/// there, as a `kill -9` at that instant would; `name=pause:MS` waits there that
/// long (time for a test to kill a backend). Read once; unset in production.
pub async fn failpoint(name: &str) {
    static SET: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let Some(set) = SET
        .get_or_init(|| std::env::var("SHARDGATE_FAILPOINT").ok())
        .as_deref()
    else {
        return;
    };
    let Some(rest) = set.strip_prefix(name) else {
        return;
    };
    if rest.is_empty() {
        tracing::error!(failpoint = name, "failpoint reached: aborting");
        std::process::abort();
    }
    if let Some(ms) = rest.strip_prefix("=pause:").and_then(|m| m.parse().ok()) {
        tracing::warn!(failpoint = name, ms, "failpoint reached: pausing");
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}
