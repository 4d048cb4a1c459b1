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

/// How often histogram samples are folded into their buckets when no scrape does it.
/// Between two, the samples of that time are held (16 bytes per command).
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Installs the recorder, once per process (the playground's and the tests' several
/// starts share it).
pub fn install() {
    HANDLE.get_or_init(|| {
        let built = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(COMMAND_SECONDS.into()), LATENCY_BUCKETS)
            .map(PrometheusBuilder::install_recorder);
        match built {
            Ok(Ok(handle)) => {
                // The recorder keeps every histogram sample until an upkeep folds it
                // into the buckets; a scrape runs one, but nobody may scrape: without
                // this, memory grows by each command's sample for ever.
                let kept = handle.clone();
                let spawned = std::thread::Builder::new()
                    .name("metrics-upkeep".into())
                    .spawn(move || loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        kept.run_upkeep();
                    });
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "metrics upkeep not started: histograms grow until scraped");
                }
                Some(handle)
            }
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

/// Counters the data path bumps on every statement or read, registered once: a bump
/// is an atomic add, not a lookup by name.
pub struct Hot {
    pub bytes_received: metrics::Counter,
    pub bytes_sent: metrics::Counter,
    /// Shards a routed statement runs on.
    pub fan_out: metrics::Histogram,
    /// By [`STATEMENT_KINDS`] × (ok, error).
    statements: Vec<metrics::Counter>,
}

/// The first words statements are counted by; others are `other`.
pub const STATEMENT_KINDS: [&str; 12] = [
    "select", "insert", "update", "delete", "replace", "set", "show", "begin", "commit",
    "rollback", "call", "other",
];

impl Hot {
    /// Counts a statement by the first word of its digest, and whether it failed.
    pub fn statement(&self, digest: &[u8], failed: bool) {
        let word = digest.split(|&b| b == b' ').next().unwrap_or_default();
        let kind = STATEMENT_KINDS
            .iter()
            .position(|k| k.as_bytes() == word)
            .unwrap_or(STATEMENT_KINDS.len() - 1);
        if let Some(c) = self.statements.get(kind * 2 + usize::from(failed)) {
            c.increment(1);
        }
    }
}

/// The hot counters; registered with the recorder on first use (after [`install`]).
pub fn hot() -> &'static Hot {
    static HOT: OnceLock<Hot> = OnceLock::new();
    HOT.get_or_init(|| Hot {
        bytes_received: metrics::counter!("shardgate_client_bytes_total", "direction" => "received"),
        bytes_sent: metrics::counter!("shardgate_client_bytes_total", "direction" => "sent"),
        fan_out: metrics::histogram!("shardgate_fanout_shards"),
        statements: STATEMENT_KINDS
            .iter()
            .flat_map(|k| {
                ["ok", "error"].map(|r| {
                    metrics::counter!("shardgate_statements_total", "kind" => *k, "result" => r)
                })
            })
            .collect(),
    })
}

fn record_state(shared: &Shared) {
    let topo = shared.topology.load();
    metrics::gauge!("shardgate_layout_generation").set(topo.generation as f64);
    if let Some(admin) = &shared.admin {
        metrics::gauge!("shardgate_config_version").set(admin.version() as f64);
    }
    // Sessions pinned to their backend connection, by why; a reason seen once stays
    // listed (at 0 when no session has it now).
    static REASONS: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut counts: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for (_, c) in shared.sessions.list() {
        for p in c.pins() {
            *counts.entry(p).or_default() += 1;
        }
    }
    let mut reasons = REASONS.lock().unwrap_or_else(|p| p.into_inner());
    for r in counts.keys() {
        if !reasons.contains(r) {
            reasons.push(r);
        }
    }
    for r in reasons.iter() {
        let n = counts.get(r).copied().unwrap_or(0);
        metrics::gauge!("shardgate_sessions_pinned", "reason" => *r).set(n as f64);
    }
    drop(reasons);
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
