//! The cluster the router tests plan against: two nodes (dn2 with its own database
//! name), tables sharded by mod, month and range, a binding group, a broadcast and a
//! single table.

use rules::{ClusterConfig, Runtime};

/// Also the cluster the router fuzz target plans against (`proxy::fuzzing`).
pub const CONFIG: &str = include_str!("cluster.toml");

pub fn runtime() -> Runtime {
    let cfg: ClusterConfig = toml::from_str(CONFIG).unwrap();
    Runtime::build(&cfg).unwrap()
}
