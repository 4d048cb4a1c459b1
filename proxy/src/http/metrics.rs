//! The Prometheus recorder every `metrics::` call in shardgate reports to, and the
//! gauges read at scrape time from the state they describe (pools, health, lag,
//! layout, transactions in doubt) rather than kept up to date on the data path.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::shared::Shared;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Buckets (seconds) of the command latency histogram: from a cached point select
/// to a long report.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The command latency histogram's name.
pub const COMMAND_SECONDS: &str = "shardgate_command_seconds";

/// Installs the recorder, once per process (the playground's and the tests' several
/// starts share it).
pub fn install() {
    HANDLE.get_or_init(|| {
        let built = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(COMMAND_SECONDS.into()), LATENCY_BUCKETS)
            .map(PrometheusBuilder::install_recorder);
        match built {
            Ok(Ok(handle)) => Some(handle),
            Ok(Err(e)) | Err(e) => {
                tracing::warn!(error = %e, "metrics are not recorded");
                None
            }
        }
    });
}

/// The text a scrape gets.
pub fn render(shared: &Shared) -> String {
    let Some(Some(handle)) = HANDLE.get() else {
        return String::new();
    };
    record_state(shared);
    handle.run_upkeep();
    handle.render()
}

fn record_state(shared: &Shared) {
    let topo = shared.topology.load();
    metrics::gauge!("shardgate_layout_generation").set(topo.generation as f64);
    if let Some(xa) = &shared.xa {
        metrics::gauge!("shardgate_xa_in_flight").set(xa.in_flight_ids().len() as f64);
    }
    for node in topo.nodes() {
        let roles = std::iter::once(("primary".to_string(), &node.primary)).chain(
            node.replicas
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("replica{i}"), r)),
        );
        for (role, pool) in roles {
            let labels = [("node", node.name.clone()), ("role", role.clone())];
            metrics::gauge!("shardgate_backend_up", &labels).set(f64::from(u8::from(pool.is_up())));
            let (open, idle, waiting) = pool.usage();
            for (state, n) in [
                ("in_use", open.saturating_sub(idle)),
                ("idle", idle),
                ("waiting", waiting),
            ] {
                metrics::gauge!(
                    "shardgate_pool_connections",
                    "node" => node.name.clone(),
                    "role" => role.clone(),
                    "state" => state
                )
                .set(n as f64);
            }
            if role != "primary" {
                if let Some(lag) = pool.replication.snapshot().lag_ms {
                    metrics::gauge!("shardgate_replica_lag_ms", &labels).set(lag as f64);
                }
            }
        }
    }
}
