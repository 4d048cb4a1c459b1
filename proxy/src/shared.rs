//! State every session shares: settings, the topology, connection places, the
//! registry of live sessions. Sessions and the listener both use it; neither owns it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::backend::{health, BackendConn, Flavor};
use crate::config::{Layout, Settings};

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
    /// Logged-in clients per user: `max_user_connections` places each.
    pub user_slots: Arc<crate::user_slots::UserSlots>,
    /// Failed logins per client address, for the data port and the admin port.
    pub hosts: [crate::host_guard::HostGuard; 2],
    /// Clients still logging in: a place of their own, so sockets that never log in
    /// cannot lock out the clients that do.
    pub(crate) handshakes: Arc<Semaphore>,
    /// Flips to true on shutdown: idle sessions close, busy ones finish their statement.
    shutdown: tokio::sync::watch::Sender<bool>,
    pub ids: crate::ids::IdGenerator,
    pub sessions: crate::control::Sessions,
    /// Users who passed caching_sha2_password authentication since start.
    pub sha2_cache: crate::control::Sha2Cache,
    /// What each user wrote where, for causal reads in `global` mode.
    pub user_writes: crate::backend::gtid::UserWrites,
    /// XA ids, the decision log and recovery: `None` without a data directory
    /// (zero-config pass-through, one node).
    pub xa: Option<Arc<crate::xa::Coordinator>>,
    /// The staged layout, its history and audit, for the admin port; `None` when the
    /// admin port is off.
    pub admin: Option<Arc<crate::admin_plane::AdminPlane>>,
    /// Statement statistics and the slow log, for the admin port.
    pub stats: crate::stats::Stats,
}

impl Shared {
    /// The state of a shardgate starting with `settings` and `layout`: learns the
    /// backend's version and starts the health and XA recovery tasks. Fails when the
    /// XA decision log cannot be opened, or XA is asked of backends too old for it.
    pub async fn start(settings: Settings, layout: Layout) -> std::io::Result<Arc<Shared>> {
        crate::http::metrics::install();
        let topology = Arc::new(crate::topology::Current::new(
            layout,
            settings.pool.clone(),
            settings.tls.is_some(),
        ));
        // Clients see the primary's own version, so drivers enable what the backend really
        // supports (or the configured one); a MySQL 8 look-alike when no backend answers.
        let versions = discover_versions(&topology.load()).await;
        let backend = versions.first().and_then(|(_, v)| v.clone());
        let backend_version =
            router::comments::ServerVersion::parse(backend.as_deref().unwrap_or("10.11.0-MariaDB"));
        let server_version = settings
            .server_version
            .clone()
            .or(backend)
            .unwrap_or_else(|| "8.0.36-shardgate".to_string());
        let watched = topology.clone();
        let round = move || {
            let topo = watched.load();
            health::Round {
                nodes: topo.nodes().to_vec(),
                max_replica_lag: Duration::from_millis(topo.runtime.reads.max_replica_lag_ms),
            }
        };
        let xa = match &settings.data_dir {
            Some(dir) => {
                let coord = crate::xa::Coordinator::open(dir, settings.instance_id.as_deref())
                    .map_err(std::io::Error::other)?;
                Some(Arc::new(coord))
            }
            None => None,
        };
        let answered: Vec<(String, router::comments::ServerVersion)> = versions
            .iter()
            .filter_map(|(n, v)| {
                v.as_deref()
                    .map(|v| (n.clone(), router::comments::ServerVersion::parse(v)))
            })
            .collect();
        if let Some(reason) = xa_refused(&topology.load(), &answered) {
            return Err(std::io::Error::other(reason));
        }
        if let Some(coord) = &xa {
            tokio::spawn(crate::xa::recovery::run(coord.clone(), topology.clone()));
        }
        let admin = match &settings.admin_listen {
            Some(_) => {
                let plane = crate::admin_plane::AdminPlane::open(
                    settings.data_dir.as_deref(),
                    topology.clone(),
                    settings
                        .config_file
                        .clone()
                        .or_else(|| settings.data_dir.as_ref().map(|d| d.join("shardgate.toml"))),
                    crate::config::document::fresh_file(&settings),
                    settings.pool.connect_timeout,
                )
                .map_err(|e| std::io::Error::other(format!("the admin database: {e}")))?;
                Some(Arc::new(plane))
            }
            None => None,
        };
        tokio::spawn(health::run(round, settings.health_interval));
        tokio::spawn(crate::admin_plane::periods::keep_ahead(
            topology.clone(),
            settings.pool.connect_timeout,
        ));
        tokio::spawn(crate::promotion::follow(
            topology.clone(),
            settings.health_interval,
        ));
        Ok(Arc::new(Shared {
            xa,
            admin,
            stats: crate::stats::Stats::new(settings.slow_query),
            ids: crate::ids::IdGenerator::default(),
            sessions: crate::control::Sessions::default(),
            sha2_cache: crate::control::Sha2Cache::default(),
            user_writes: Default::default(),
            connections: Arc::new(Semaphore::new(settings.max_connections)),
            user_slots: Arc::default(),
            hosts: [true, false]
                .map(|blocks| crate::host_guard::HostGuard::new(settings.login_policy, blocks)),
            handshakes: Arc::new(Semaphore::new(settings.max_unauthenticated)),
            next_connection_id: AtomicU32::new(1),
            shutdown: tokio::sync::watch::channel(false).0,
            topology,
            server_version,
            backend_version,
            settings,
        }))
    }

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

/// Why XA mode cannot be used with these backends: a prepared branch must outlive
/// its connection (a crash of shardgate), which MariaDB does from 10.5 (MySQL from
/// 5.7.7). `versions`: each node's primary that answered at start. `None`: fine, or no
/// transaction uses XA.
fn xa_refused(
    topology: &crate::topology::Topology,
    versions: &[(String, router::comments::ServerVersion)],
) -> Option<String> {
    if topology.nodes().len() < 2 || !topology.uses_xa() {
        return None;
    }
    too_old_for_xa(versions)
}

fn too_old_for_xa(versions: &[(String, router::comments::ServerVersion)]) -> Option<String> {
    let old: Vec<&str> = versions
        .iter()
        .filter(|(_, v)| {
            if v.mariadb {
                v.id < 100500
            } else {
                v.id < 50707
            }
        })
        .map(|(n, _)| n.as_str())
        .collect();
    (!old.is_empty()).then(|| {
        format!(
            "transactions.mode = \"xa\" needs MariaDB 10.5 or later (MySQL 5.7.7 or later) on every node, and \
             {} runs an older one: older servers roll a prepared XA branch back when its connection ends. \
             Upgrade the backends, or set transactions.mode = \"best_effort\" (and remove \
             `transactions = \"xa\"` from users and schemas)",
            old.join(", ")
        )
    })
}

/// Each node's primary's version, from those that answer at start.
async fn discover_versions(topology: &crate::topology::Topology) -> Vec<(String, Option<String>)> {
    let asks = topology.nodes().iter().map(|node| async move {
        let pool = &node.primary;
        let conn = BackendConn::connect(
            &pool.target,
            Flavor::default(),
            None,
            pool.settings.connect_timeout,
        )
        .await;
        match conn {
            Ok(c) => (node.name.clone(), Some(c.server_version)),
            Err(e) => {
                tracing::warn!(backend = %pool.target.label, address = %pool.target.address, error = %e, "primary not reachable at start");
                (node.name.clone(), None)
            }
        }
    });
    futures_util::future::join_all(asks).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use router::comments::ServerVersion;

    #[test]
    fn xa_needs_servers_that_keep_prepared_branches() {
        let v = |n: &str, s: &str| (n.to_string(), ServerVersion::parse(s));
        assert!(too_old_for_xa(&[v("dn1", "10.11.19-MariaDB"), v("dn2", "8.0.36")]).is_none());
        let e = too_old_for_xa(&[v("dn1", "10.11.19-MariaDB"), v("dn2", "10.4.32-MariaDB")]);
        assert!(e.is_some_and(|e| e.contains("dn2 runs an older one")));
        assert!(too_old_for_xa(&[v("dn1", "5.7.6")]).is_some());
    }
}
