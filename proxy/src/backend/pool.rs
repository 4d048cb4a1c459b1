//! A pool of connections to one backend server. Connections are grouped by flavor
//! (see [`Flavor`]); the total, idle or lent, never exceeds `max_size`. When all are
//! lent, sessions wait in a queue and each returned connection goes to the oldest.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::collections::VecDeque;

use tokio::sync::oneshot;

use crate::wire::WireError;

use super::replication::{PrimaryHistory, Replication};
use super::{BackendConn, BackendServer, Flavor};

#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Connections kept open even when idle (of the default flavor).
    pub min_idle: usize,
    /// Connections at most, until `backend_share` replaces it with the backend's own
    /// figure.
    pub max_size: usize,
    /// Size the pool as this share of the backend's `max_connections` (learned by the
    /// health task at its first contact), instead of `max_size`.
    pub backend_share: Option<f64>,
    /// Idle connections beyond `min_idle` are closed after this long.
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
    /// How long a statement waits for a connection when all `max_size` are in use.
    pub acquire_timeout: Duration,
    /// See [`BackendServer::read_timeout`](super::BackendServer::read_timeout).
    pub read_timeout: Option<Duration>,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            min_idle: 0,
            max_size: 64,
            backend_share: None,
            idle_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(3),
            acquire_timeout: Duration::from_secs(5),
            read_timeout: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error(
        "{label} ({address}): all {max} connections are busy; waited {waited_ms} ms \
         (pool.acquire_timeout_ms): retry later, or raise pool.max_size if the backend \
         has room"
    )]
    Exhausted {
        label: String,
        address: String,
        max: usize,
        waited_ms: u128,
    },
    #[error("{label} ({address}): {source}")]
    Connect {
        label: String,
        address: String,
        source: WireError,
    },
}

struct Idle {
    conn: BackendConn,
    since: Instant,
}

/// One of the pool's `max_size` places for an open connection. Dropping it gives
/// the place to the oldest waiter, or frees it.
struct Slot {
    pool: Arc<Pool>,
    armed: bool,
}

impl Slot {
    fn new(pool: &Arc<Pool>) -> Slot {
        Slot {
            pool: pool.clone(),
            armed: true,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if std::mem::take(&mut self.armed) {
            self.pool.hand_off(Grant::Slot(Slot::new(&self.pool)));
        }
    }
}

/// What a waiter is handed: a returned connection, or a free place to open one.
enum Grant {
    Conn(Box<PooledConn>),
    Slot(Slot),
}

struct Waiter {
    grant: oneshot::Sender<Grant>,
}

struct State {
    idle: Vec<Idle>,
    /// Connections open or being opened, idle or lent: never more than `max_size`.
    open: usize,
    /// Sessions waiting for a connection, oldest first. A returned connection goes
    /// to the oldest, never to a newcomer, so no waiter starves.
    waiters: VecDeque<Waiter>,
}

pub struct Pool {
    pub target: BackendServer,
    pub settings: PoolSettings,
    state: Mutex<State>,
    /// Connections at most: `settings.max_size`, or learned from the backend.
    max_size: AtomicUsize,
    /// The size was learned from the backend (or needs not be).
    sized: AtomicBool,
    /// False after a failed connect or health check; reads skip unhealthy replicas.
    healthy: AtomicBool,
    /// The server has answered at least once (a connection or a health check):
    /// until then `healthy` is a presumption, not a fact.
    answered: AtomicBool,
    /// Out of the read rotation by an administrator's decision; kept across layout
    /// changes, as the pool is.
    offline: AtomicBool,
    /// What a replica has applied and whether it serves reads (unused for a primary).
    pub replication: Replication,
    /// A primary's recent positions, against which its replicas' lag is measured.
    pub history: PrimaryHistory,
    /// The health task's own connection: a probe never takes a place a client
    /// waits for, and is not opened anew each round.
    probe: tokio::sync::Mutex<Option<BackendConn>>,
}

/// A connection lent by a pool. Give it back with [`Pool::put`]; dropping it closes
/// the connection and frees its place for the next waiter.
pub struct PooledConn {
    pub conn: BackendConn,
    slot: Slot,
}

impl PooledConn {
    /// The pool that lent it, and takes it back.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.slot.pool
    }
}

impl std::ops::Deref for PooledConn {
    type Target = BackendConn;
    fn deref(&self) -> &BackendConn {
        &self.conn
    }
}

impl std::ops::DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut BackendConn {
        &mut self.conn
    }
}

impl Pool {
    /// Stops the statement running on backend thread `thread` (KILL QUERY), from a
    /// connection of its own, not one of the pool's: the pool may be full of the very
    /// statements to stop, and a KILL must not wait behind them.
    pub async fn kill_query(&self, thread: u32) -> Result<(), String> {
        let mut conn = BackendConn::connect(
            &self.target,
            Flavor::default(),
            None,
            self.settings.connect_timeout,
        )
        .await
        .map_err(|e| e.to_string())?;
        let sql = format!("KILL QUERY {thread}");
        match conn.execute_ok(sql.as_bytes()).await {
            Ok(_) => Ok(()),
            // The statement ended meanwhile: nothing to stop.
            Err(WireError::Server { code: 1094, .. }) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    pub fn new(target: BackendServer, settings: PoolSettings) -> Arc<Pool> {
        Arc::new(Pool {
            max_size: AtomicUsize::new(settings.max_size),
            sized: AtomicBool::new(settings.backend_share.is_none()),
            target,
            settings,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                waiters: VecDeque::new(),
            }),
            healthy: AtomicBool::new(true),
            answered: AtomicBool::new(false),
            offline: AtomicBool::new(false),
            replication: Replication::default(),
            history: PrimaryHistory::default(),
            probe: tokio::sync::Mutex::new(None),
        })
    }

    /// The first value of a health-task query (see [`Pool::probe_rows`]).
    pub async fn probe_value(&self, sql: &[u8]) -> Result<Option<Vec<u8>>, WireError> {
        let (_, rows) = self.probe_rows(sql).await?;
        Ok(super::conn::first_value(rows))
    }

    /// Runs one of the health task's queries (small answers) on the probe connection,
    /// opened when there is none; one that fails other than by a server error is
    /// closed. A server that does not answer within `connect_timeout` fails the probe,
    /// so one hung server never stalls the health task's round over every node.
    pub async fn probe_rows(
        &self,
        sql: &[u8],
    ) -> Result<(Vec<String>, Vec<Vec<Option<Vec<u8>>>>), WireError> {
        // The health task and the promotion follower take turns; the time limit
        // counts from this one's turn.
        let mut slot = self.probe.lock().await;
        let limit = self.settings.connect_timeout;
        match tokio::time::timeout(limit, self.probe_rows_now(&mut slot, sql)).await {
            Ok(answer) => answer,
            // The connection was out of its slot for the query and is dropped with it:
            // a late answer is never read by the next probe.
            Err(_) => Err(WireError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} ms", limit.as_millis()),
            ))),
        }
    }

    async fn probe_rows_now(
        &self,
        slot: &mut Option<BackendConn>,
        sql: &[u8],
    ) -> Result<(Vec<String>, Vec<Vec<Option<Vec<u8>>>>), WireError> {
        let mut conn = match slot.take() {
            Some(c) if !c.is_broken() => c,
            _ => {
                let target = BackendServer {
                    track_gtid: false,
                    ..self.target.clone()
                };
                let timeout = self.settings.connect_timeout;
                BackendConn::connect(&target, Flavor::default(), None, timeout).await?
            }
        };
        let answer = conn.query_rows(sql).await;
        // Back in its slot only when it answered in full (a server error is an answer).
        if answer.is_ok() || matches!(answer, Err(WireError::Server { .. })) {
            *slot = Some(conn);
        }
        answer
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// A replica that is up and in the read rotation (not stopped, not too far behind,
    /// not taken out by an administrator).
    pub fn serves_reads(&self) -> bool {
        self.is_healthy() && self.replication.in_rotation() && !self.is_offline()
    }

    /// Taken out of the read rotation on the admin port (`SET REPLICA … OFFLINE`).
    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Relaxed)
    }

    pub fn set_offline(&self, offline: bool) {
        self.offline.store(offline, Ordering::Relaxed);
    }

    /// Up as far as anyone knows: it answered, and did not fail since.
    pub fn is_up(&self) -> bool {
        self.answered.load(Ordering::Relaxed) && self.is_healthy()
    }

    /// It answered once at least: the health task need not check it while healthy.
    pub fn has_answered(&self) -> bool {
        self.answered.load(Ordering::Relaxed)
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.set_health(healthy, None);
    }

    /// Marks it down for `why`, which the log says (a TLS certificate refused, a
    /// refused connection …).
    pub fn mark_down(&self, why: &dyn std::fmt::Display) {
        self.set_health(false, Some(why));
    }

    fn set_health(&self, healthy: bool, why: Option<&dyn std::fmt::Display>) {
        if healthy {
            self.answered.store(true, Ordering::Relaxed);
        }
        let was = self.healthy.swap(healthy, Ordering::Relaxed);
        if was != healthy {
            if healthy {
                tracing::info!(backend = %self.target.label, address = %self.target.address, "backend is back");
            } else {
                let why = why.map(|w| w.to_string()).unwrap_or_default();
                tracing::warn!(backend = %self.target.label, address = %self.target.address, %why, "backend marked down");
                let closed: Vec<Idle> = {
                    let mut st = self.state();
                    let closed = std::mem::take(&mut st.idle);
                    st.open -= closed.len();
                    closed
                };
                drop(closed);
            }
        }
    }

    /// Connections this pool opens at most now.
    pub fn max_size(&self) -> usize {
        self.max_size.load(Ordering::Relaxed)
    }

    /// With `backend_share`, and not yet done: asks the backend for its
    /// `max_connections` and sizes the pool to its share (at least 1). Until then the
    /// pool uses `max_size`.
    pub async fn learn_size(self: &Arc<Self>) {
        let Some(share) = self.settings.backend_share else {
            return;
        };
        if self.sized.load(Ordering::Relaxed) || !self.is_healthy() {
            return;
        }
        // A connection of its own: never a place a client waits for.
        let answer = match BackendConn::connect(
            &self.target,
            Flavor::default(),
            None,
            self.settings.connect_timeout,
        )
        .await
        {
            Ok(mut conn) => conn.query_value(b"SELECT @@max_connections").await,
            // Not reachable now: the next tick asks again.
            Err(_) => return,
        };
        let backend: Option<usize> = answer
            .ok()
            .flatten()
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse().ok());
        let Some(backend) = backend else {
            // Once: the pool keeps its default size, and the health task will not ask
            // again every tick.
            self.sized.store(true, Ordering::Relaxed);
            tracing::warn!(backend = %self.target.label, "could not read @@max_connections; the pool keeps its default size");
            return;
        };
        let size = ((backend as f64 * share).floor() as usize).max(1);
        self.max_size.store(size, Ordering::Relaxed);
        self.sized.store(true, Ordering::Relaxed);
        tracing::info!(backend = %self.target.label, max_connections = backend, share, pool_size = size, "pool sized from the backend");
        // Room grew: waiters may take the new places.
        loop {
            let grant = {
                let mut st = self.state();
                if st.waiters.is_empty() || st.open >= size {
                    break;
                }
                st.open += 1;
                drop(st);
                Slot::new(self)
            };
            self.hand_off(Grant::Slot(grant));
        }
    }

    /// A connection can be had without waiting: one is idle, or a place is free, and
    /// no one waits before. A session that already holds connections of this pool
    /// takes another only then, so that it never waits for its own.
    pub fn lends_now(&self) -> bool {
        let st = self.state();
        st.waiters.is_empty() && (!st.idle.is_empty() || st.open < self.max_size())
    }

    pub fn idle_count(&self) -> usize {
        self.state().idle.len()
    }

    /// Connections open (lent or idle), idle, and sessions waiting: one reading.
    pub fn usage(&self) -> (usize, usize, usize) {
        let st = self.state();
        (st.open, st.idle.len(), st.waiters.len())
    }

    /// Gives `grant` to the oldest waiter still waiting; with none, a connection
    /// becomes idle and a place is freed.
    fn hand_off(&self, mut grant: Grant) {
        loop {
            let waiter = {
                let mut st = self.state();
                if st.open > self.max_size() {
                    // The pool was sized down (learned from the backend): this place
                    // goes, whoever waits.
                    st.open -= 1;
                    drop(st);
                    match grant {
                        Grant::Conn(pooled) => {
                            let PooledConn { conn, mut slot } = *pooled;
                            slot.armed = false;
                            drop(conn);
                        }
                        Grant::Slot(mut slot) => slot.armed = false,
                    }
                    return;
                }
                match st.waiters.pop_front() {
                    Some(w) => w,
                    None => {
                        match grant {
                            Grant::Conn(pooled) => {
                                let PooledConn { conn, mut slot } = *pooled;
                                slot.armed = false;
                                st.idle.push(Idle {
                                    conn,
                                    since: Instant::now(),
                                });
                            }
                            Grant::Slot(mut slot) => {
                                slot.armed = false;
                                st.open -= 1;
                            }
                        }
                        return;
                    }
                }
            };
            // Sent outside the lock: a grant that comes back (its waiter gave up) is
            // offered to the next one.
            match waiter.grant.send(grant) {
                Ok(()) => return,
                Err(back) => grant = back,
            }
        }
    }

    /// Lends a connection of `flavor`: an idle one when no one waits before us, else
    /// a new one while the pool has room, else the next one returned, in turn.
    pub async fn get(self: &Arc<Self>, flavor: Flavor) -> Result<PooledConn, PoolError> {
        self.get_for(flavor, false).await
    }

    /// A connection of `flavor`; with `no_database`, one that never selected a
    /// database. The protocol cannot unselect one, and a session with none selected
    /// must not run in whatever database another session left on the connection.
    pub async fn get_for(
        self: &Arc<Self>,
        flavor: Flavor,
        no_database: bool,
    ) -> Result<PooledConn, PoolError> {
        let fits = |c: &BackendConn| c.flavor == flavor && (!no_database || c.database.is_none());
        let started = Instant::now();
        let slot = loop {
            let waiting = {
                let mut st = self.state();
                if st.waiters.is_empty() {
                    if let Some(i) = st.idle.iter().rposition(|c| fits(&c.conn)) {
                        let idle = st.idle.swap_remove(i);
                        drop(st);
                        let pooled = PooledConn {
                            conn: idle.conn,
                            slot: Slot::new(self),
                        };
                        if pooled.conn.is_broken() {
                            // Closed; its place is taken again below.
                            drop(pooled);
                            continue;
                        }
                        return Ok(pooled);
                    }
                    if st.open < self.max_size() {
                        st.open += 1;
                        drop(st);
                        break Slot::new(self);
                    }
                    if let Some(other) = st.idle.pop() {
                        // An idle connection of another flavor gives up its place.
                        drop(st);
                        drop(other);
                        break Slot::new(self);
                    }
                }
                let (tx, rx) = oneshot::channel();
                st.waiters.push_back(Waiter { grant: tx });
                rx
            };
            let left = self
                .settings
                .acquire_timeout
                .saturating_sub(started.elapsed());
            match tokio::time::timeout(left, waiting).await {
                Ok(Ok(Grant::Conn(pooled))) => {
                    if fits(&pooled.conn) && !pooled.conn.is_broken() {
                        return Ok(*pooled);
                    }
                    let PooledConn { conn, slot } = *pooled;
                    drop(conn);
                    break slot;
                }
                Ok(Ok(Grant::Slot(slot))) => break slot,
                // Dropping the receiver passes on whatever was granted meanwhile.
                Ok(Err(_)) | Err(_) => {
                    metrics::counter!("shardgate_pool_timeouts_total", "backend" => self.target.label.clone()).increment(1);
                    return Err(PoolError::Exhausted {
                        label: self.target.label.clone(),
                        address: self.target.address.clone(),
                        max: self.max_size(),
                        waited_ms: started.elapsed().as_millis(),
                    });
                }
            }
        };
        match BackendConn::connect(&self.target, flavor, None, self.settings.connect_timeout).await
        {
            Ok(conn) => {
                self.set_healthy(true);
                metrics::counter!("shardgate_backend_connects_total", "backend" => self.target.label.clone()).increment(1);
                Ok(PooledConn { conn, slot })
            }
            Err(source) => {
                metrics::counter!("shardgate_backend_connect_errors_total", "backend" => self.target.label.clone()).increment(1);
                if matches!(source, WireError::Io(_) | WireError::UnexpectedEof) {
                    self.mark_down(&source);
                }
                Err(PoolError::Connect {
                    label: self.target.label.clone(),
                    address: self.target.address.clone(),
                    source,
                })
            }
        }
    }

    /// Takes a connection back: every way a connection leaves a session ends here.
    /// One with session state (an open transaction, autocommit off, anything a
    /// session set) is reset first; one whose state is unknown (a response not read
    /// to its end) or that cannot be reset is closed. Never is one pooled as clean
    /// unless the server's own status flags say it is. The oldest waiter gets it.
    pub async fn put(&self, mut pooled: PooledConn) {
        // Another session's writes are not this one's.
        pooled.conn.written = None;
        match pooled.conn.reuse() {
            None => return,
            Some(true) => {
                if pooled.conn.reset().await.is_err() || pooled.conn.reuse() != Some(false) {
                    return;
                }
                metrics::counter!("shardgate_backend_resets_total").increment(1);
            }
            Some(false) => {}
        }
        if !self.is_healthy() {
            return;
        }
        {
            // No one waits (the usual case): straight to idle, no hand-off.
            let mut st = self.state();
            if st.waiters.is_empty() && st.open <= self.max_size() {
                let PooledConn { conn, mut slot } = pooled;
                slot.armed = false;
                st.idle.push(Idle {
                    conn,
                    since: Instant::now(),
                });
                return;
            }
        }
        self.hand_off(Grant::Conn(Box::new(pooled)));
    }

    /// Closes connections idle past the timeout (keeping `min_idle`) and opens new
    /// ones up to `min_idle`. Called periodically by the maintenance task.
    pub async fn maintain(self: &Arc<Self>) {
        let expired: Vec<Idle> = {
            let mut st = self.state();
            let keep = self.settings.min_idle;
            let mut expired = Vec::new();
            let mut i = 0;
            while i < st.idle.len() {
                if st.idle.len() > keep && st.idle[i].since.elapsed() > self.settings.idle_timeout {
                    expired.push(st.idle.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            st.open -= expired.len();
            expired
        };
        drop(expired);
        while self.idle_count() < self.settings.min_idle {
            let slot = {
                let mut st = self.state();
                if st.open >= self.max_size() {
                    break;
                }
                st.open += 1;
                drop(st);
                Slot::new(self)
            };
            match BackendConn::connect(
                &self.target,
                Flavor::default(),
                None,
                self.settings.connect_timeout,
            )
            .await
            {
                Ok(conn) => {
                    self.set_healthy(true);
                    self.hand_off(Grant::Conn(Box::new(PooledConn { conn, slot })));
                }
                Err(e) => {
                    tracing::debug!(backend = %self.target.label, error = %e, "could not open an idle connection");
                    drop(slot);
                    self.mark_down(&e);
                    break;
                }
            }
        }
    }
}
