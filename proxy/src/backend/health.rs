//! Background upkeep of every pool: health checks of backends marked down (so replicas
//! come back into rotation by themselves), replication probes (each replica's applied
//! position and lag, against its primary's recent positions), and idle-connection
//! maintenance.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::gtid::GtidPos;
use super::replication::Seen;
use super::{BackendConn, Flavor, NodePools, Pool};

/// What one round looks after: the nodes in use, and how far a replica may lag.
pub struct Round {
    pub nodes: Vec<Arc<NodePools>>,
    pub max_replica_lag: Duration,
}

/// Runs forever; spawn it once. `round` gives the nodes in use at each round, so a
/// layout change is followed without telling this task.
pub async fn run(round: impl Fn() -> Round, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Round {
            nodes,
            max_replica_lag,
        } = round();
        for node in &nodes {
            for pool in node.all_pools() {
                check(pool).await;
            }
            if !node.replicas.is_empty() {
                probe_replication(node, max_replica_lag).await;
            }
            for pool in node.all_pools() {
                pool.learn_size().await;
                pool.maintain().await;
            }
        }
    }
}

/// A backend marked down, or never heard from, is tried; one that answers is up.
async fn check(pool: &Arc<Pool>) {
    if pool.is_healthy() && pool.has_answered() {
        return;
    }
    let connected = BackendConn::connect(
        &pool.target,
        Flavor::default(),
        None,
        pool.settings.connect_timeout,
    )
    .await;
    match connected {
        Ok(mut c) => match c.ping().await {
            Ok(()) => pool.set_healthy(true),
            Err(e) => pool.mark_down(&e),
        },
        // Why, in the log: a refused certificate, a refused connection …
        Err(e) => pool.mark_down(&e),
    }
}

/// Samples the primary's position, then asks each replica where it stands.
async fn probe_replication(node: &NodePools, max_lag: Duration) {
    if node.primary.is_healthy() {
        match node.primary.probe_value(b"SELECT @@gtid_binlog_pos").await {
            Ok(value) => {
                let pos = value.as_deref().and_then(GtidPos::parse);
                node.primary
                    .history
                    .record(Instant::now(), pos.unwrap_or_default());
            }
            Err(e) => {
                tracing::debug!(backend = %node.primary.target.label, error = %e, "could not read the primary's position")
            }
        }
    }
    for replica in &node.replicas {
        if !replica.is_healthy() {
            continue;
        }
        let seen = match replica.probe_rows(b"SHOW SLAVE STATUS").await {
            Ok((names, rows)) => match Seen::from_status(&names, &rows) {
                Some(seen) => applied(replica, seen).await,
                // A replica that replicates from nothing falls behind its primary's
                // every write (an old primary after a promotion, before it is made a
                // replica of the new one).
                None => {
                    own_position(replica, Some("not replicating: SHOW SLAVE STATUS is empty")).await
                }
            },
            // Not allowed to see the replication status: its position still tells.
            Err(e @ crate::wire::WireError::Server { .. }) => {
                tracing::debug!(backend = %replica.target.label, error = %e, "SHOW SLAVE STATUS refused; reading @@gtid_slave_pos");
                own_position(replica, None).await
            }
            Err(e) => Err(e),
        };
        match seen {
            Ok(seen) => replica.replication.observe(
                &replica.target.label,
                seen,
                &node.primary.history,
                max_lag,
            ),
            // A server that answers with an error (a MySQL replica has no
            // @@gtid_slave_pos) keeps what was known of it.
            Err(e @ crate::wire::WireError::Server { .. }) => {
                tracing::debug!(backend = %replica.target.label, error = %e, "replication probe refused")
            }
            // A replica that does not answer its probe serves no reads until it does
            // (the next rounds try it again).
            Err(e) => {
                tracing::warn!(backend = %replica.target.label, error = %e, "replication probe failed; the replica leaves the read rotation");
                replica.mark_down(&e);
            }
        }
    }
}

/// What a replicating server has applied (`@@gtid_slave_pos`; SHOW SLAVE STATUS
/// shows only what it received).
async fn applied(pool: &Pool, mut seen: Seen) -> Result<Seen, crate::wire::WireError> {
    let value = pool.probe_value(b"SELECT @@gtid_slave_pos").await?;
    seen.applied = value
        .as_deref()
        .and_then(GtidPos::parse)
        .unwrap_or_default();
    Ok(seen)
}

/// The position of a server whose replication status is not known, and why it does
/// not serve reads, if it does not.
async fn own_position(pool: &Pool, stopped: Option<&str>) -> Result<Seen, crate::wire::WireError> {
    let value = pool.probe_value(b"SELECT @@gtid_current_pos").await?;
    Ok(Seen {
        applied: value
            .as_deref()
            .and_then(GtidPos::parse)
            .unwrap_or_default(),
        stopped: stopped.map(str::to_string),
        ..Seen::default()
    })
}
