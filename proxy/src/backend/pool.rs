//! A pool of connections to one backend server. Connections are grouped by flavor
//! (see [`Flavor`]); the total, idle or lent, never exceeds `max_size`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::wire::WireError;

use super::{BackendConn, Flavor, Target};

#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Connections kept open even when idle (of the default flavor).
    pub min_idle: usize,
    pub max_size: usize,
    /// Idle connections beyond `min_idle` are closed after this long.
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
    /// How long a statement waits for a connection when all `max_size` are in use.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            min_idle: 0,
            max_size: 64,
            idle_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(3),
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("{label} ({address}): all {max} connections are busy; waited {waited_ms} ms")]
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
    permit: OwnedSemaphorePermit,
    since: Instant,
}

pub struct Pool {
    pub target: Target,
    pub settings: PoolSettings,
    idle: Mutex<Vec<Idle>>,
    permits: Arc<Semaphore>,
    /// False after a failed connect or health check; reads skip unhealthy replicas.
    healthy: AtomicBool,
}

/// A connection lent by a pool. Give it back with [`Pool::put`]; dropping it closes
/// the connection and frees its slot.
pub struct PooledConn {
    pub conn: BackendConn,
    permit: OwnedSemaphorePermit,
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
    pub fn new(target: Target, settings: PoolSettings) -> Arc<Pool> {
        Arc::new(Pool {
            permits: Arc::new(Semaphore::new(settings.max_size)),
            target,
            settings,
            idle: Mutex::new(Vec::new()),
            healthy: AtomicBool::new(true),
        })
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn set_healthy(&self, healthy: bool) {
        let was = self.healthy.swap(healthy, Ordering::Relaxed);
        if was != healthy {
            if healthy {
                tracing::info!(backend = %self.target.label, address = %self.target.address, "backend is back");
            } else {
                tracing::warn!(backend = %self.target.label, address = %self.target.address, "backend marked down");
                self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
            }
        }
    }

    pub fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn take_idle(&self, flavor: Flavor) -> Option<Idle> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let i = idle.iter().rposition(|c| c.conn.flavor == flavor)?;
        Some(idle.swap_remove(i))
    }

    /// Lends a connection of `flavor`: an idle one when a healthy one exists, else a new one.
    pub async fn get(&self, flavor: Flavor) -> Result<PooledConn, PoolError> {
        while let Some(idle) = self.take_idle(flavor) {
            if !idle.conn.is_broken() {
                return Ok(PooledConn {
                    conn: idle.conn,
                    permit: idle.permit,
                });
            }
        }
        let started = Instant::now();
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // Free a slot held by an idle connection of another flavor, if any.
                let evicted = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
                match evicted {
                    Some(idle) => idle.permit,
                    None => match tokio::time::timeout(
                        self.settings.acquire_timeout,
                        self.permits.clone().acquire_owned(),
                    )
                    .await
                    {
                        Ok(Ok(p)) => p,
                        _ => {
                            return Err(PoolError::Exhausted {
                                label: self.target.label.clone(),
                                address: self.target.address.clone(),
                                max: self.settings.max_size,
                                waited_ms: started.elapsed().as_millis(),
                            })
                        }
                    },
                }
            }
        };
        // A connection may have come back while we waited for a slot.
        if let Some(idle) = self.take_idle(flavor) {
            if !idle.conn.is_broken() {
                return Ok(PooledConn {
                    conn: idle.conn,
                    permit: idle.permit,
                });
            }
        }
        match BackendConn::connect(&self.target, flavor, None, self.settings.connect_timeout).await
        {
            Ok(conn) => {
                self.set_healthy(true);
                metrics::counter!("shardgate_backend_connects_total", "backend" => self.target.label.clone()).increment(1);
                Ok(PooledConn { conn, permit })
            }
            Err(source) => {
                metrics::counter!("shardgate_backend_connect_errors_total", "backend" => self.target.label.clone()).increment(1);
                if matches!(source, WireError::Io(_) | WireError::UnexpectedEof) {
                    self.set_healthy(false);
                }
                Err(PoolError::Connect {
                    label: self.target.label.clone(),
                    address: self.target.address.clone(),
                    source,
                })
            }
        }
    }

    /// Takes a connection back. Connections with session state are reset first; one
    /// that cannot be reset is closed.
    pub async fn put(&self, mut pooled: PooledConn) {
        if pooled.conn.dirty && pooled.conn.reset().await.is_err() {
            return;
        }
        if !self.is_healthy() {
            return;
        }
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Idle {
                conn: pooled.conn,
                permit: pooled.permit,
                since: Instant::now(),
            });
    }

    /// Closes connections idle past the timeout (keeping `min_idle`) and opens new
    /// ones up to `min_idle`. Called periodically by the maintenance task.
    pub async fn maintain(&self) {
        let expired: Vec<Idle> = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let keep = self.settings.min_idle;
            let mut expired = Vec::new();
            let mut i = 0;
            while i < idle.len() {
                if idle.len() > keep && idle[i].since.elapsed() > self.settings.idle_timeout {
                    expired.push(idle.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            expired
        };
        drop(expired);
        while self.idle_count() < self.settings.min_idle {
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                break;
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
                    self.idle
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Idle {
                            conn,
                            permit,
                            since: Instant::now(),
                        });
                }
                Err(e) => {
                    tracing::debug!(backend = %self.target.label, error = %e, "could not open an idle connection");
                    self.set_healthy(false);
                    break;
                }
            }
        }
    }
}
