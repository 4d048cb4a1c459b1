//! Following a promotion made outside shardgate (an operator, orchestrator, or
//! MaxScale's monitor): for nodes with `auto_detect_primary`, each health round asks
//! the servers whether they are writable. When the primary says it is read-only, or has
//! not answered for `AWAY_ROUNDS` rounds, and exactly one replica is writable and has
//! no replication configured at all (`RESET SLAVE ALL`, as a promotion does: a replica
//! merely stopped for maintenance keeps its configuration), the layout is replaced with
//! that replica as the node's primary and the old primary as a replica. Statements in
//! flight finish where they began (the topology swap's rule); new ones write to the new
//! primary. Two writable candidates, or none, change nothing: shardgate never chooses a
//! primary itself, and one missed probe is not a failover.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rules::{ClusterConfig, ReplicaConfig};

use crate::backend::Pool;
use crate::topology::Current;

/// Rounds a primary must not answer before a promotion is followed.
const AWAY_ROUNDS: u32 = 3;

pub async fn follow(topology: Arc<Current>, interval: Duration) {
    let mut away: HashMap<String, u32> = HashMap::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let topo = topology.load();
        for (name, node) in &topo.cluster.nodes {
            if !node.auto_detect_primary {
                continue;
            }
            let Some(pools) = topo.nodes().iter().find(|n| &n.name == name) else {
                continue;
            };
            match writable(&pools.primary).await {
                Some(true) => {
                    away.remove(name);
                    continue;
                }
                Some(false) => {}
                None => {
                    let rounds = away.entry(name.clone()).or_default();
                    *rounds += 1;
                    if *rounds < AWAY_ROUNDS {
                        continue;
                    }
                }
            }
            let mut promoted = Vec::new();
            for (i, replica) in pools.replicas.iter().enumerate() {
                if writable(replica).await == Some(true) && no_replication(replica).await {
                    promoted.push(i);
                }
            }
            match promoted.as_slice() {
                [] => {}
                // The layout changed meanwhile (a reload): decide again on the new one.
                [_] if topology.generation() != topo.generation => {}
                [i] => {
                    away.remove(name);
                    let cluster = promote(&topo.cluster, name, *i);
                    let new_primary = pools.replicas[*i].target.address.clone();
                    // Over the layout it was decided on: an admin's LOAD meanwhile
                    // is not undone (the next round decides on that one).
                    match topology.replace_over(cluster, topo.users.clone(), topo.generation) {
                        Ok(None) => {}
                        Ok(Some(t)) => {
                            tracing::warn!(node = %name, primary = %new_primary, old = %pools.primary.target.address, generation = t.generation, "the primary changed: writes go to the promoted replica")
                        }
                        Err(e) => {
                            tracing::error!(node = %name, error = %e, "could not follow the promotion")
                        }
                    }
                }
                many => {
                    tracing::error!(node = %name, writable = many.len(), "several replicas are writable and replicate from nothing: no primary chosen")
                }
            }
        }
    }
}

/// `@@read_only` is off; `None` when the server does not answer.
async fn writable(pool: &Pool) -> Option<bool> {
    let v = pool.probe_value(b"SELECT @@read_only").await.ok()??;
    Some(v == b"0" || v.eq_ignore_ascii_case(b"off"))
}

/// The server has no replication configured (`SHOW SLAVE STATUS` is empty).
async fn no_replication(pool: &Pool) -> bool {
    // Cannot tell: not a candidate.
    pool.probe_rows(b"SHOW SLAVE STATUS")
        .await
        .is_ok_and(|(_, rows)| rows.is_empty())
}

/// `cluster` with replica `i` of node `name` as its primary and the old primary last
/// among its replicas (it may be down).
pub fn promote(cluster: &ClusterConfig, name: &str, i: usize) -> ClusterConfig {
    let mut cluster = cluster.clone();
    if let Some(node) = cluster.nodes.get_mut(name) {
        if i < node.replicas.len() {
            let new = node.replicas.remove(i);
            let old = std::mem::replace(&mut node.primary, new.address().to_string());
            node.replicas.push(ReplicaConfig::Address(old));
        }
    }
    cluster
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_promotion_swaps_the_primary_and_the_replica() {
        let cluster: ClusterConfig = toml::from_str(
            "[nodes.dn1]\nprimary = \"10.0.0.1:3306\"\nreplicas = [\"10.0.0.2:3306\", \"10.0.0.3:3306\"]\n\
             user = \"u\"\nauto_detect_primary = true\n[schemas.s]\nnode = \"dn1\"\n",
        )
        .expect("cluster");
        let after = promote(&cluster, "dn1", 1);
        let node = &after.nodes["dn1"];
        assert_eq!(node.primary, "10.0.0.3:3306");
        let replicas: Vec<&str> = node.replicas.iter().map(|r| r.address()).collect();
        assert_eq!(replicas, ["10.0.0.2:3306", "10.0.0.1:3306"]);
        let built = rules::Runtime::build(&after);
        assert!(built.is_ok(), "{:?}", built.err());
    }
}
