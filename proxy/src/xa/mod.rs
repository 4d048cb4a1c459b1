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
    /// This run's number, from the decision log: ids of earlier runs never collide
    /// with ours.
    run: u64,
    next: AtomicU64,
    pub log: DecisionLog,
    /// Global transactions a session of this run is committing or rolling back:
    /// recovery leaves their branches alone, since their outcome is still being
    /// decided or carried out by that session.
    in_flight: Mutex<HashSet<String>>,
    /// Global transactions whose decision could not be written: whether it reached
    /// the disk is unknown until the log is read afresh (a restart), so recovery in
    /// this run leaves their branches alone.
    undecided: Mutex<HashSet<String>>,
    /// Held for the life of the process: a second shardgate on the same data
    /// directory would take this one's transactions for its own.
    _lock: std::fs::File,
}

impl Coordinator {
    /// Opens the data directory: takes its lock, the decision log, and the
    /// instance id (`configured`, else the one this directory was given on its first
    /// use: a random one, so that instances never share one by default).
    pub fn open(dir: &std::path::Path, configured: Option<&str>) -> Result<Coordinator, LogError> {
        let io = |e: std::io::Error| LogError::Dir {
            path: dir.display().to_string(),
            source: e,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock = std::fs::File::create(dir.join("lock")).map_err(io)?;
        if lock.try_lock().is_err() {
            return Err(LogError::Busy(dir.display().to_string()));
        }
        let instance = match configured {
            Some(id) => id.to_string(),
            None => own_instance_id(dir).map_err(io)?,
        };
        let (log, run) = DecisionLog::open(dir)?;
        Ok(Coordinator {
            prefix: xid::prefix(&instance),
            run,
            next: AtomicU64::new(1),
            log,
            in_flight: Mutex::new(HashSet::new()),
            undecided: Mutex::new(HashSet::new()),
            _lock: lock,
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
        gtrid.starts_with(&self.prefix)
            && !self.flights().contains(gtrid)
            && !lock(&self.undecided).contains(gtrid)
    }

    /// See `undecided`: the branches of `gtrid` wait for the next start.
    pub fn leave_undecided(&self, gtrid: &str) {
        tracing::error!(gtrid, "an XA decision could not be written; its prepared branches are resolved at the next start of shardgate, from what the decision log then holds");
        lock(&self.undecided).insert(gtrid.to_string());
    }

    /// What every global id of this instance starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The global ids in flight now.
    pub fn in_flight_ids(&self) -> HashSet<String> {
        self.flights().clone()
    }

    fn flights(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        lock(&self.in_flight)
    }
}

fn lock(m: &Mutex<HashSet<String>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The instance id kept in `dir/instance_id`, made on the directory's first use.
fn own_instance_id(dir: &std::path::Path) -> std::io::Result<String> {
    let path = dir.join("instance_id");
    match std::fs::read_to_string(&path) {
        Ok(id) if xid::check_instance_id(id.trim()).is_ok() => Ok(id.trim().to_string()),
        Ok(_) => Err(std::io::Error::other(format!(
            "{} does not hold a valid instance id; delete it, or set server.instance_id",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Written whole or not at all: an id half on disk after a power loss
            // would make a new instance of this one.
            let id = format!("sg{:016x}", rand::random::<u64>());
            let tmp = dir.join("instance_id.tmp");
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, format!("{id}\n").as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(dir)?.sync_all()?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

/// Seconds since the Unix epoch, for the decision log's records.
pub fn unix_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
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
