//! The data listener: accepts client connections and runs a session for each.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::backend::{health, BackendConn, Flavor};
use crate::config::{Config, Settings};
use crate::session::Session;
use crate::wire::generic::err_payload;
use crate::wire::packet::write_packet;
use crate::wire::SqlError;

/// State every session shares.
pub struct Shared {
    pub settings: Settings,
    /// Nodes, rules, users and pools: loaded once per statement, replaced as a whole.
    pub topology: Arc<crate::topology::Current>,
    pub server_version: String,
    /// The backend's version, which decides what its executable comments run.
    pub backend_version: router::comments::ServerVersion,
    next_connection_id: AtomicU32,
    /// Logged-in clients: `max_connections` places.
    pub connections: Arc<Semaphore>,
    /// Clients still logging in: a place of their own, so sockets that never log in
    /// cannot lock out the clients that do.
    handshakes: Arc<Semaphore>,
    /// Flips to true on shutdown: idle sessions close, busy ones finish their statement.
    shutdown: tokio::sync::watch::Sender<bool>,
    pub ids: crate::ids::IdGenerator,
    pub sessions: crate::control::Sessions,
    /// Users who passed caching_sha2_password authentication since start.
    pub sha2_cache: crate::control::Sha2Cache,
}

impl Shared {
    pub fn next_connection_id(&self) -> u32 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Resolves when shutdown begins.
    pub fn shutdown_signalled(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Stops taking connections and commands, then waits (up to `grace`) until every
    /// session has finished its statement in flight and closed.
    pub async fn drain(&self, grace: std::time::Duration) {
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        while self.connections.available_permits() < self.settings.max_connections {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    open = self.settings.max_connections - self.connections.available_permits(),
                    "grace period over; closing sessions still running"
                );
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// The first node's primary's version, when it answers at start.
async fn discover_version(topology: &crate::topology::Topology) -> Option<String> {
    if let Some(node) = topology.nodes().first() {
        let pool = &node.primary;
        match BackendConn::connect(
            &pool.target,
            Flavor::default(),
            None,
            pool.settings.connect_timeout,
        )
        .await
        {
            Ok(c) => return Some(c.server_version),
            Err(e) => {
                tracing::warn!(backend = %pool.target.label, address = %pool.target.address, error = %e, "primary not reachable at start")
            }
        }
    }
    None
}

/// Binds the listener, then serves until the future is dropped.
pub async fn bind(config: Config) -> std::io::Result<(TcpListener, Arc<Shared>)> {
    let Config { settings, layout } = config;
    let listener = TcpListener::bind(&settings.listen).await?;
    let topology = Arc::new(crate::topology::Current::new(
        layout,
        settings.pool.clone(),
        settings.tls.is_some(),
    ));
    // Clients see the primary's own version, so drivers enable what the backend really
    // supports (or the configured one); a MySQL 8 look-alike when no backend answers.
    let backend = discover_version(&topology.load()).await;
    let backend_version =
        router::comments::ServerVersion::parse(backend.as_deref().unwrap_or("10.11.0-MariaDB"));
    let server_version = settings
        .server_version
        .clone()
        .or(backend)
        .unwrap_or_else(|| "8.0.36-shardgate".to_string());
    let watched = topology.clone();
    let pools = move || watched.load().pools().cloned().collect();
    tokio::spawn(health::run(pools, settings.health_interval));
    let shared = Arc::new(Shared {
        ids: crate::ids::IdGenerator::default(),
        sessions: crate::control::Sessions::default(),
        sha2_cache: crate::control::Sha2Cache::default(),
        connections: Arc::new(Semaphore::new(settings.max_connections)),
        handshakes: Arc::new(Semaphore::new(settings.max_unauthenticated)),
        next_connection_id: AtomicU32::new(1),
        shutdown: tokio::sync::watch::channel(false).0,
        topology,
        server_version,
        backend_version,
        settings,
    });
    Ok((listener, shared))
}

/// Accepts until shutdown begins; then the listener closes and new clients are refused.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut stop = shared.shutdown_signalled();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handshake = match shared.handshakes.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                tokio::spawn(refuse(stream));
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            metrics::gauge!("shardgate_client_connections").increment(1.0);
            let session = Session::new(shared, stream, peer);
            session.run(handshake).await;
            metrics::gauge!("shardgate_client_connections").decrement(1.0);
        });
    }
}

/// Past `max_connections`: answer ER_CON_COUNT_ERROR in place of a greeting, as MySQL does.
async fn refuse(mut stream: TcpStream) {
    let mut out = BytesMut::new();
    write_packet(
        &mut out,
        &mut 0,
        &err_payload(&SqlError::too_many_connections()),
    );
    let _ = stream.write_all(&out).await;
}

/// On each SIGHUP, reads the config file again and puts its layout (nodes, schemas,
/// rules, users) in effect. A file that does not validate changes nothing; the
/// `[server]`, `[pool]` and `[tls]` sections take effect at the next start.
/// `hup` is made before the listener is announced, so a SIGHUP never finds the
/// process with the default action (exit).
pub async fn reload_on_hangup(
    path: std::path::PathBuf,
    shared: Arc<Shared>,
    mut hup: tokio::signal::unix::Signal,
) {
    while hup.recv().await.is_some() {
        let outcome = crate::config::Config::from_file(&path)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                shared
                    .topology
                    .replace(c.layout.cluster, c.layout.users)
                    .map_err(|e| e.to_string())
            });
        match outcome {
            Ok(t) => tracing::info!(
                config = %path.display(),
                generation = t.generation,
                "config reloaded; [server], [pool] and [tls] changes wait for a restart"
            ),
            Err(e) => tracing::error!("config reload refused, the running layout stays: {e}"),
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
