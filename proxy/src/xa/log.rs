//! The decision log: a global transaction's commit decision, durable before any of
//! its branches commits. SQLite (WAL, `synchronous=FULL`) does the durability; a
//! thread of its own does the writing, so a commit's fsync never blocks the
//! runtime, and decisions that arrive while one is written share the next fsync
//! (group commit): under load, many transactions pay for one.
//!
//! Presumed abort: only commits are written. A prepared branch with no decision
//! here is rolled back by recovery.

use std::path::Path;
use std::sync::mpsc;

use rusqlite::{params, Connection};
use tokio::sync::oneshot;

/// Why the log could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("the XA decision log {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("cannot create the data directory {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("the XA decision log: {0}")]
    Write(String),
    #[error("the data directory {0} is in use by another shardgate (its `lock` file is held); give each instance a data_dir of its own")]
    Busy(String),
    #[error("the XA decision log's writer has stopped")]
    Stopped,
}

/// A commit decision that is not yet known to be carried out on every branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub gtrid: String,
    /// The nodes whose branches it commits.
    pub nodes: Vec<String>,
    /// Unix seconds.
    pub decided_at: i64,
}

enum Request {
    Commit {
        decision: Decision,
        done: oneshot::Sender<Result<(), String>>,
    },
    Forget(String),
    List(oneshot::Sender<Result<Vec<Decision>, String>>),
}

/// A handle on the log; clones share its writer.
#[derive(Clone)]
pub struct DecisionLog {
    requests: mpsc::Sender<Request>,
}

impl DecisionLog {
    /// Opens (or creates) `dir/xa.sqlite`, counts this run (the XA ids of each run
    /// differ, whatever the clock says), and starts the writer. Returns the run's
    /// number.
    pub fn open(dir: &Path) -> Result<(DecisionLog, u64), LogError> {
        std::fs::create_dir_all(dir).map_err(|source| LogError::Dir {
            path: dir.display().to_string(),
            source,
        })?;
        let path = dir.join("xa.sqlite");
        let open_err = |source| LogError::Open {
            path: path.display().to_string(),
            source,
        };
        let db = Connection::open(&path).map_err(open_err)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS xa_decisions (
                 gtrid TEXT PRIMARY KEY,
                 nodes TEXT NOT NULL,
                 decided_at INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS runs (
                 n INTEGER PRIMARY KEY AUTOINCREMENT,
                 started_at INTEGER NOT NULL
             );",
        )
        .map_err(open_err)?;
        db.execute(
            "INSERT INTO runs (started_at) VALUES (?1)",
            params![super::unix_seconds()],
        )
        .map_err(open_err)?;
        let run = db.last_insert_rowid() as u64;
        let (requests, inbox) = mpsc::channel();
        std::thread::Builder::new()
            .name("xa-log".into())
            .spawn(move || write_loop(db, inbox))
            .map_err(|e| LogError::Write(e.to_string()))?;
        Ok((DecisionLog { requests }, run))
    }

    /// Returns once the decision to commit is on disk.
    pub async fn commit(&self, decision: Decision) -> Result<(), LogError> {
        let (done, answer) = oneshot::channel();
        self.requests
            .send(Request::Commit { decision, done })
            .map_err(|_| LogError::Stopped)?;
        answer
            .await
            .map_err(|_| LogError::Stopped)?
            .map_err(LogError::Write)
    }

    /// Every branch of `gtrid` is committed: its decision is no longer needed. Not
    /// waited for: a decision left behind by a crash only makes recovery look for
    /// branches that are no longer there, and remove it then.
    pub fn forget(&self, gtrid: &str) {
        let _ = self.requests.send(Request::Forget(gtrid.to_string()));
    }

    /// The decisions not yet forgotten.
    pub async fn list(&self) -> Result<Vec<Decision>, LogError> {
        let (done, answer) = oneshot::channel();
        self.requests
            .send(Request::List(done))
            .map_err(|_| LogError::Stopped)?;
        answer
            .await
            .map_err(|_| LogError::Stopped)?
            .map_err(LogError::Write)
    }
}

/// Forgets wait for the next write of decisions (or a listing, or this many): a
/// forget needs no fsync of its own, and one lost in a crash only makes recovery
/// look for branches that are gone, then forget again.
const FORGETS_HELD: usize = 256;

/// Takes every request waiting, writes them in one SQLite transaction (one fsync),
/// then answers them all.
fn write_loop(mut db: Connection, inbox: mpsc::Receiver<Request>) {
    let mut forgets: Vec<String> = Vec::new();
    while let Ok(first) = inbox.recv() {
        let mut batch = vec![first];
        batch.extend(inbox.try_iter());
        let mut lists = Vec::new();
        let mut waiting = Vec::new();
        let mut decisions = Vec::new();
        for request in batch {
            match request {
                Request::Commit { decision, done } => {
                    decisions.push(decision);
                    waiting.push(done);
                }
                Request::Forget(gtrid) => forgets.push(gtrid),
                Request::List(done) => lists.push(done),
            }
        }
        if decisions.is_empty() && lists.is_empty() && forgets.len() < FORGETS_HELD {
            continue;
        }
        let written = write_batch(&mut db, &decisions, &forgets).map_err(|e| e.to_string());
        match &written {
            Ok(()) => forgets.clear(),
            Err(e) => tracing::error!(error = %e, "the XA decision log could not be written"),
        }
        for done in waiting {
            let _ = done.send(written.clone());
        }
        for done in lists {
            let _ = done.send(read_all(&db).map_err(|e| e.to_string()));
        }
    }
}

fn write_batch(
    db: &mut Connection,
    decisions: &[Decision],
    forgets: &[String],
) -> rusqlite::Result<()> {
    let tx = db.transaction()?;
    for d in decisions {
        tx.execute(
            "INSERT OR REPLACE INTO xa_decisions (gtrid, nodes, decided_at) VALUES (?1, ?2, ?3)",
            params![d.gtrid, d.nodes.join("\n"), d.decided_at],
        )?;
    }
    for gtrid in forgets {
        tx.execute("DELETE FROM xa_decisions WHERE gtrid = ?1", params![gtrid])?;
    }
    tx.commit()
}

fn read_all(db: &Connection) -> rusqlite::Result<Vec<Decision>> {
    let mut stmt =
        db.prepare("SELECT gtrid, nodes, decided_at FROM xa_decisions ORDER BY decided_at")?;
    let rows = stmt.query_map([], |r| {
        let nodes: String = r.get(1)?;
        Ok(Decision {
            gtrid: r.get(0)?,
            nodes: nodes.lines().map(String::from).collect(),
            decided_at: r.get(2)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn decisions_survive_reopening_until_forgotten() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (log, first) = DecisionLog::open(dir.path()).expect("open");
        let d = |g: &str| Decision {
            gtrid: g.to_string(),
            nodes: vec!["dn1".into(), "dn2".into()],
            decided_at: 7,
        };
        log.commit(d("a")).await.expect("commit a");
        log.commit(d("b")).await.expect("commit b");
        log.forget("a");
        assert_eq!(log.list().await.expect("list"), vec![d("b")]);
        drop(log);
        let (again, second) = DecisionLog::open(dir.path()).expect("reopen");
        assert_eq!(again.list().await.expect("list"), vec![d("b")]);
        assert!(second > first, "each run has a number of its own");
    }
}
