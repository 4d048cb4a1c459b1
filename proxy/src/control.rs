//! What other sessions may do to a session: `KILL QUERY` stops the statement it runs on
//! a backend, `KILL CONNECTION` closes it. Ids are shardgate's own connection ids, the
//! ones clients see in the handshake and from `CONNECTION_ID()`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::backend::Pool;

/// A session as other sessions see it.
pub struct SessionControl {
    pub user: String,
    /// The client's address, as SHOW PROCESSLIST shows it.
    pub host: String,
    /// What the session is doing, for SHOW PROCESSLIST.
    activity: Mutex<Activity>,
    /// The backend connections serving the session's statement (several while a
    /// multi-shard statement's parts run at once).
    running: Mutex<Vec<Running>>,
    killed: AtomicBool,
    kill: tokio::sync::Notify,
    /// Why the session is pinned to its connection, for SHOW SHARDGATE SESSIONS.
    pins: Mutex<Vec<&'static str>>,
}

/// Where a backend statement runs: the server (by its pool, which outlives any
/// layout change while the statement runs) and the thread to kill there.
#[derive(Clone)]
pub struct Running {
    pub pool: Arc<Pool>,
    pub thread: u32,
}

impl PartialEq for Running {
    fn eq(&self, other: &Running) -> bool {
        self.thread == other.thread && Arc::ptr_eq(&self.pool, &other.pool)
    }
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, thread {}", self.pool.target.label, self.thread)
    }
}

impl Running {
    /// Stops the statement (KILL QUERY) on its server.
    pub async fn kill_query(&self) -> Result<(), String> {
        self.pool.kill_query(self.thread).await
    }
}

/// A session's current command, as SHOW PROCESSLIST shows it.
#[derive(Debug, Clone)]
pub struct Activity {
    /// "Query", "Execute", … or "Sleep" between commands.
    pub command: &'static str,
    pub db: Option<String>,
    /// The statement running, as the client sent it.
    statement: Option<bytes::Bytes>,
    pub since: std::time::Instant,
}

impl Activity {
    /// The statement's first [`INFO_LIMIT`] bytes, never a password.
    pub fn info(&self) -> Option<String> {
        self.statement
            .as_deref()
            .map(|s| shown_statement(s, INFO_LIMIT))
    }
}

/// A statement as operators may see it (process list, slow log): its first `limit`
/// bytes, cut before anything that may be a password.
pub fn shown_statement(s: &[u8], limit: usize) -> String {
    {
        let mut end = s.len().min(limit);
        // A password is never shown: the text stops before it.
        let secret = secret_at(s);
        if let Some(at) = secret {
            end = end.min(at);
        }
        // Cut on a character boundary when the text is UTF-8.
        while end > 0 && end < s.len() && (s[end] & 0xC0) == 0x80 {
            end -= 1;
        }
        let mut info = String::from_utf8_lossy(&s[..end]).into_owned();
        if end < s.len() && secret.is_some_and(|at| at <= end) {
            info.push_str("<password hidden>");
        }
        info
    }
}

/// How much of a statement SHOW FULL PROCESSLIST keeps: enough to know it, never a
/// copy of a bulk INSERT.
pub const INFO_LIMIT: usize = 1024;

/// Where a statement may start to hold a password (`IDENTIFIED BY`, `PASSWORD(…)`,
/// `SET PASSWORD`): the process list shows the statement up to there.
fn secret_at(sql: &[u8]) -> Option<usize> {
    ["identified", "password"]
        .iter()
        .filter_map(|w| {
            sql.windows(w.len())
                .position(|x| x.eq_ignore_ascii_case(w.as_bytes()))
        })
        .min()
}

impl SessionControl {
    pub fn new(user: String, host: String) -> SessionControl {
        SessionControl {
            user,
            host,
            activity: Mutex::new(Activity {
                command: "Sleep",
                db: None,
                statement: None,
                since: std::time::Instant::now(),
            }),
            running: Mutex::new(Vec::new()),
            killed: AtomicBool::new(false),
            kill: tokio::sync::Notify::new(),
            pins: Mutex::new(Vec::new()),
        }
    }

    /// A command starts (`info`: its statement text) or ends (`command` "Sleep").
    /// Records what the session does now. The statement is kept as the client sent
    /// it (a reference to the packet, no copy): it is rendered only when a process
    /// list asks.
    pub fn set_activity(
        &self,
        command: &'static str,
        db: Option<&str>,
        statement: Option<bytes::Bytes>,
    ) {
        let mut a = self.activity.lock().unwrap_or_else(|p| p.into_inner());
        a.command = command;
        if a.db.as_deref() != db {
            a.db = db.map(str::to_string);
        }
        a.statement = statement;
        a.since = std::time::Instant::now();
    }

    pub fn activity(&self) -> Activity {
        self.activity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_pins(&self, pins: Vec<&'static str>) {
        *self.pins.lock().unwrap_or_else(|p| p.into_inner()) = pins;
    }

    pub fn pins(&self) -> Vec<&'static str> {
        self.pins.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `r` serves the session now (besides any other part still running).
    pub fn set_running(&self, r: Running) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if !running.contains(&r) {
            running.push(r);
        }
    }

    /// The connection left the session.
    pub fn clear_if(&self, r: Running) {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|x| *x != r);
    }

    /// Between statements only the connection the session keeps serves it (parts
    /// that failed and were dropped leave no record behind).
    pub fn keep_only(&self, held: Option<Running>) {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|x| held.as_ref() == Some(x));
    }

    /// Every backend connection serving the session: what KILL QUERY stops.
    pub fn running(&self) -> Vec<Running> {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Asks the session to close.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.kill.notify_one();
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Resolves when the session is asked to close.
    pub async fn killed(&self) {
        if self.is_killed() {
            return;
        }
        self.kill.notified().await;
    }
}

/// caching_sha2_password's server-side cache: who logged in since start. A user not
/// in it gets full authentication (over TLS), as with MySQL after a restart.
#[derive(Default)]
pub struct Sha2Cache {
    users: Mutex<std::collections::HashSet<String>>,
}

impl Sha2Cache {
    pub fn contains(&self, user: &str) -> bool {
        self.users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(user)
    }

    pub fn insert(&self, user: &str) {
        self.users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user.to_string());
    }
}

/// Every live session, by connection id.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<u32, Arc<SessionControl>>>,
}

impl Sessions {
    pub fn insert(&self, id: u32, c: Arc<SessionControl>) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, c);
    }

    pub fn remove(&self, id: u32) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Every session, by id.
    pub fn list(&self) -> Vec<(u32, Arc<SessionControl>)> {
        let mut v: Vec<(u32, Arc<SessionControl>)> = self
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(id, c)| (*id, c.clone()))
            .collect();
        v.sort_by_key(|(id, _)| *id);
        v
    }

    pub fn get(&self, id: u32) -> Option<Arc<SessionControl>> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_keeps_every_part_until_it_leaves() {
        let c = SessionControl::new("u".into(), "127.0.0.1:1".into());
        assert!(c.running().is_empty());
        let pool = |label: &str| {
            let target = crate::backend::BackendServer {
                label: label.into(),
                address: "127.0.0.1:1".into(),
                user: "u".into(),
                password: String::new(),
                track_gtid: false,
                read_timeout: None,
                tls: None,
            };
            Pool::new(target, crate::backend::PoolSettings::default())
        };
        let replica = pool("dn4/replica[1]");
        let r = Running {
            pool: replica.clone(),
            thread: 4_000_000_000,
        };
        c.set_running(r.clone());
        c.set_running(r.clone());
        assert_eq!(c.running(), std::slice::from_ref(&r));
        c.clear_if(Running {
            thread: 5,
            ..r.clone()
        });
        assert_eq!(
            c.running(),
            std::slice::from_ref(&r),
            "another connection's release"
        );
        // The same thread id on another server is another statement.
        let p = Running {
            pool: pool("dn1/primary"),
            thread: 4_000_000_000,
        };
        c.set_running(p.clone());
        assert_eq!(c.running(), [r.clone(), p.clone()]);
        c.clear_if(r);
        assert_eq!(c.running(), [p]);
    }

    #[test]
    fn the_process_list_never_shows_a_password() {
        let c = SessionControl::new("u".into(), "127.0.0.1:1".into());
        let sql = |s: &'static [u8]| Some(bytes::Bytes::from_static(s));
        c.set_activity("Query", None, sql(b"CREATE USER u IDENTIFIED BY 'pw'"));
        assert_eq!(
            c.activity().info().as_deref(),
            Some("CREATE USER u <password hidden>")
        );
        c.set_activity("Query", None, sql(b"SET PASSWORD = PASSWORD('pw')"));
        assert_eq!(
            c.activity().info().as_deref(),
            Some("SET <password hidden>")
        );
        c.set_activity("Query", None, sql(b"SELECT 1"));
        assert_eq!(c.activity().info().as_deref(), Some("SELECT 1"));
    }
}
