//! Finishing what a crash interrupted: branches this instance prepared and did not
//! see through. At start-up and then periodically, every node's primary is asked for
//! its prepared branches (`XA RECOVER`); one of ours is committed when the decision
//! log holds its commit, else rolled back (presumed abort). A node that does not
//! answer is asked again next round, for as long as it takes.
//!
//! The order of the steps is what makes this safe beside live sessions:
//! 1. the decisions are read, then the transactions in flight are noted: a decision
//!    read there whose transaction is not in flight was carried out (or abandoned) by
//!    its session before this round began, so every branch of it still prepared is
//!    listed by step 2, and the decision may be forgotten once those are committed;
//! 2. prepared branches are listed;
//! 3. the transactions in flight are noted again (their branches are left alone),
//!    then the decisions are read again: a transaction not in flight at this step had
//!    written its decision, if it had one, before it, and this read sees it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::{xid, Coordinator};
use crate::topology::Current;

/// A prepared branch of this instance found on a node.
#[derive(Debug, Clone)]
pub struct InDoubt {
    pub node: String,
    pub gtrid: String,
    pub bqual: String,
    /// What recovery does with it: `commit`, `rollback`, or `in flight` (a session
    /// of this run is finishing it).
    pub outcome: &'static str,
}

/// What one round saw and did.
#[derive(Debug, Default)]
pub struct Round {
    pub branches: Vec<InDoubt>,
    /// Prepared branches of other instances or applications: left alone, but shown
    /// (they hold locks).
    pub foreign: Vec<InDoubt>,
    /// Nodes that did not answer `XA RECOVER`, with why.
    pub unreachable: Vec<(String, String)>,
    /// Branches whose COMMIT or ROLLBACK failed, with why: tried again next round.
    pub failed: Vec<(String, String)>,
    pub resolved: usize,
}

/// Recovers once at start-up, then every `every`.
/// Rounds every `transactions.recovery_interval_ms` of the layout in effect (a LOAD
/// that changes it takes effect from the next round).
pub async fn run(coord: Arc<Coordinator>, topology: Arc<Current>) {
    loop {
        let round = round(&coord, &topology, true).await;
        if round.resolved > 0 || !round.failed.is_empty() {
            tracing::info!(
                resolved = round.resolved,
                failed = ?round.failed,
                unreachable = ?round.unreachable,
                "XA recovery round"
            );
        }
        let every = topology
            .load()
            .runtime
            .transactions
            .recovery_interval_ms
            .max(1);
        tokio::time::sleep(Duration::from_millis(every)).await;
    }
}

/// Lists this instance's prepared branches on every node and, when `act`, commits
/// or rolls back each one no session is finishing.
pub async fn round(coord: &Coordinator, topology: &Current, act: bool) -> Round {
    let topo = topology.load();
    let mut out = Round::default();
    let Some(before) = read_decisions(coord).await else {
        return out;
    };
    let settled_before: HashSet<String> = {
        let flying = coord.in_flight_ids();
        before
            .into_iter()
            .filter(|d| !flying.contains(&d.gtrid))
            .map(|d| d.gtrid)
            .collect()
    };
    let mut found: Vec<(usize, String, Vec<u8>)> = Vec::new();
    let mut answered: HashSet<String> = HashSet::new();
    for (i, node) in topo.nodes().iter().enumerate() {
        match node.primary.probe_rows(b"XA RECOVER").await {
            Ok((_, rows)) => {
                answered.insert(node.name.clone());
                for row in rows {
                    match xid::from_recover_row(&row) {
                        Some((gtrid, bqual)) if gtrid.starts_with(coord.prefix()) => {
                            found.push((i, gtrid, bqual));
                        }
                        other => out.foreign.push(InDoubt {
                            node: node.name.clone(),
                            gtrid: other.as_ref().map_or_else(
                                || {
                                    String::from_utf8_lossy(
                                        row.get(3).and_then(|d| d.as_deref()).unwrap_or_default(),
                                    )
                                    .into_owned()
                                },
                                |(g, _)| g.clone(),
                            ),
                            bqual: other
                                .map(|(_, b)| String::from_utf8_lossy(&b).into_owned())
                                .unwrap_or_default(),
                            outcome: "not this instance's: left alone",
                        }),
                    }
                }
            }
            Err(e) => out.unreachable.push((node.name.clone(), e.to_string())),
        }
    }
    let in_flight: HashSet<String> = found
        .iter()
        .filter(|(_, g, _)| !coord.is_recoverable(g))
        .map(|(_, g, _)| g.clone())
        .collect();
    let Some(decisions) = read_decisions(coord).await else {
        return out;
    };
    let decided: HashMap<&str, &super::Decision> =
        decisions.iter().map(|d| (d.gtrid.as_str(), d)).collect();
    let mut unfinished: HashSet<String> = HashSet::new();
    for (i, gtrid, bqual) in found {
        let node = &topo.nodes()[i];
        let outcome = if in_flight.contains(&gtrid) {
            "in flight"
        } else if decided.contains_key(gtrid.as_str()) {
            "commit"
        } else {
            "rollback"
        };
        if act && outcome != "in flight" {
            let verb = if outcome == "commit" {
                "COMMIT"
            } else {
                "ROLLBACK"
            };
            let sql = format!("XA {verb} {}", xid::literal(&gtrid, &bqual));
            match node.primary.probe_rows(sql.as_bytes()).await {
                Ok(_) => {
                    out.resolved += 1;
                    metrics::counter!("shardgate_xa_recovered_total", "outcome" => outcome)
                        .increment(1);
                    tracing::info!(node = %node.name, gtrid, outcome, "XA branch recovered");
                    continue;
                }
                Err(e) => {
                    out.failed
                        .push((format!("{} on {}", gtrid, node.name), e.to_string()));
                }
            }
        }
        unfinished.insert(gtrid.clone());
        out.branches.push(InDoubt {
            node: node.name.clone(),
            gtrid,
            bqual: String::from_utf8_lossy(&bqual).into_owned(),
            outcome,
        });
    }
    if act {
        // Forgotten only once every node it names answered and none holds a branch
        // of it any more; and only if it was settled before the round began (step 1).
        for d in &decisions {
            // Another instance id's decisions (the id changed) are never this
            // instance's to judge: their branches were not looked for.
            let done = d.gtrid.starts_with(coord.prefix())
                && settled_before.contains(&d.gtrid)
                && !unfinished.contains(&d.gtrid)
                && d.nodes.iter().all(|n| answered.contains(n));
            if done {
                coord.log.forget(&d.gtrid);
            }
        }
    }
    out
}

async fn read_decisions(coord: &Coordinator) -> Option<Vec<super::Decision>> {
    match coord.log.list().await {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::error!(error = %e, "XA recovery cannot read the decision log");
            None
        }
    }
}
