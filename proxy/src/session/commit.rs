//! Ending a transaction over all its branches. Plain branches commit in turn:
//! read-only ones first, then the written ones (best effort: a failure between two
//! written commits is reported with where it committed). XA branches: when at most
//! one wrote, every branch commits in one phase, the written one last; when several
//! wrote, two-phase commit: every written branch prepares, the decision is written
//! to the durable log, then every branch commits. Once the decision is on disk the
//! client is told the transaction committed, even if a branch's node is gone
//! meanwhile: recovery commits that branch when the node answers again.

use futures_util::future::join_all;

use super::global::{Flight, Global};
use super::{Held, Session};
use crate::wire::{SqlError, WireError};
use crate::xa::{failpoint, Decision};

/// XA error codes that mean the branch was rolled back by the server (deadlock,
/// lock wait timeout, rollback only): the whole transaction ends with it.
const XA_ROLLED_BACK: [u16; 3] = [1402, 1613, 1614];

impl Session {
    /// Commits (or rolls back) the session's transaction on every node it touched,
    /// and gives the connections back. Nothing to do without one.
    pub(super) async fn end_transaction(&mut self, commit: bool) -> Result<(), SqlError> {
        let Some(global) = self.lease.global.take() else {
            return Ok(());
        };
        let last = self.lease.held.as_ref().map(|h| h.node);
        let mut conns: Vec<Held> = self.lease.held.take().into_iter().collect();
        conns.append(&mut self.lease.branches);
        self.lease.savepoints.clear();
        let result = self.finish_global(&global, &mut conns, commit).await;
        self.lease.in_transaction = false;
        for h in conns {
            if Some(h.node) == last {
                // Pins (a user variable set inside the transaction) stay with the
                // last connection used.
                self.keep_or_release(h, 0).await;
            } else {
                self.control.clear_if(self.running_on(&h));
                let pool = self.lease.topo.node(h.node).pool(h.role).clone();
                pool.put(h.conn).await;
            }
        }
        result
    }

    /// Commits or rolls back `global` on `conns`, its branches; the connections stay
    /// the caller's to give back.
    pub(super) async fn finish_global(
        &mut self,
        global: &Global,
        conns: &mut [Held],
        commit: bool,
    ) -> Result<(), SqlError> {
        let lost = global
            .opened
            .iter()
            .any(|n| !conns.iter().any(|h| h.node == *n));
        let result = match (&global.xa, commit) {
            // A branch's connection died: its server rolled it back, so must the rest.
            (_, true) if lost => {
                self.rollback_branches(global, conns).await;
                Err(super::transaction::transaction_lost(true))
            }
            (_, false) => {
                self.rollback_branches(global, conns).await;
                Ok(())
            }
            (None, true) => self.commit_plain(global, conns).await,
            (Some(flight), true) => self.commit_xa(global, flight, conns).await,
        };
        metrics::counter!(
            "shardgate_transactions_total",
            "protocol" => if global.xa.is_some() { "xa" } else { "plain" },
            "outcome" => match (&result, commit) {
                (Ok(()), true) => "commit",
                (Ok(()), false) => "rollback",
                (Err(_), _) => "failed",
            }
        )
        .increment(1);
        result
    }

    /// ROLLBACK everywhere; a branch that cannot be reached is rolled back by its
    /// server when the connection closes (a branch is never prepared before the
    /// decision to commit).
    async fn rollback_branches(&mut self, global: &Global, conns: &mut [Held]) {
        let names: Vec<String> = conns.iter().map(|h| self.node_name(h.node)).collect();
        let ends = conns.iter_mut().zip(&names).map(|(h, name)| async move {
            let end = match &global.xa {
                None => h.conn.execute_ok(b"ROLLBACK").await,
                Some(f) => {
                    let xid = f.xid(name);
                    let end = format!("XA END {xid}");
                    let rollback = format!("XA ROLLBACK {xid}");
                    h.conn
                        .execute_pipelined(&[end.as_bytes(), rollback.as_bytes()])
                        .await
                }
            };
            (h, end)
        });
        for (h, end) in join_all(ends).await {
            match end {
                Ok(ok) => self.lease.note_status(Some(ok.status)),
                // XA END of a branch the server rolled back already fails; the
                // rollback after it is what matters. A reset makes sure.
                Err(_) => h.conn.dirty = true,
            }
        }
    }

    async fn commit_plain(&mut self, global: &Global, conns: &mut [Held]) -> Result<(), SqlError> {
        conns.sort_by_key(|h| global.written.contains(&h.node));
        let mut committed: Vec<String> = Vec::new();
        let mut failure: Option<SqlError> = None;
        for h in conns.iter_mut() {
            let name = self.node_name(h.node);
            let wrote = global.written.contains(&h.node);
            if failure.is_some() {
                let _ = h.conn.execute_ok(b"ROLLBACK").await;
                continue;
            }
            match h.conn.execute_ok(b"COMMIT").await {
                Ok(ok) => {
                    self.lease.note_status(Some(ok.status));
                    if wrote {
                        committed.push(name);
                    }
                }
                Err(e) => {
                    let mut err = e.to_client("(committing the transaction)");
                    if !committed.is_empty() {
                        err = SqlError::new(
                            1180,
                            "HY000",
                            format!(
                                "shardgate: the transaction committed on {} but failed on {name}: {}; \
                                 the nodes now disagree (transactions = \"best_effort\"; \"xa\" makes this atomic)",
                                committed.join(", "),
                                err.message
                            ),
                        );
                    }
                    failure = Some(err);
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    async fn commit_xa(
        &mut self,
        global: &Global,
        flight: &Flight,
        conns: &mut [Held],
    ) -> Result<(), SqlError> {
        // Read-only branches first, then the written ones: with one written branch,
        // its one-phase commit is the transaction's.
        conns.sort_by_key(|h| global.written.contains(&h.node));
        let names: Vec<String> = conns.iter().map(|h| self.node_name(h.node)).collect();
        let wrote: Vec<bool> = conns
            .iter()
            .map(|h| global.written.contains(&h.node))
            .collect();
        let two_phase = wrote.iter().filter(|w| **w).count() > 1;
        // Phase one (or the whole commit): XA END with PREPARE, or with COMMIT ONE
        // PHASE, in one round trip per branch, every branch at once.
        let firsts =
            conns
                .iter_mut()
                .zip(names.iter().zip(&wrote))
                .map(|(h, (name, wrote))| async move {
                    let xid = flight.xid(name);
                    let end = format!("XA END {xid}");
                    let then = if two_phase && *wrote {
                        format!("XA PREPARE {xid}")
                    } else {
                        format!("XA COMMIT {xid} ONE PHASE")
                    };
                    h.conn
                        .execute_pipelined(&[end.as_bytes(), then.as_bytes()])
                        .await
                });
        let firsts = join_all(firsts).await;
        let failed = firsts
            .iter()
            .zip(&names)
            .zip(&wrote)
            .find_map(|((r, name), wrote)| match r {
                Err(e) if *wrote || XA_ROLLED_BACK.contains(&code(e)) => Some((name.clone(), e)),
                _ => None,
            });
        if let Some((name, e)) = failed {
            let err = prepare_failed(&name, e, two_phase);
            // Prepared branches (and written ones not yet ended) are rolled back;
            // one-phase branches that committed were read-only.
            for ((h, r), (n, w)) in conns.iter_mut().zip(&firsts).zip(names.iter().zip(&wrote)) {
                if *w && (two_phase || r.is_err()) {
                    let xid = flight.xid(n);
                    let end = format!("XA END {xid}");
                    let rollback = format!("XA ROLLBACK {xid}");
                    if h.conn
                        .execute_pipelined(&[end.as_bytes(), rollback.as_bytes()])
                        .await
                        .is_err()
                    {
                        h.conn.dirty = true;
                    }
                }
            }
            return Err(err);
        }
        for r in firsts.into_iter().flatten() {
            self.lease.note_status(Some(r.status));
        }
        if !two_phase {
            return Ok(());
        }
        failpoint("xa_before_decision").await;
        let decision = Decision {
            gtrid: flight.gtrid.clone(),
            nodes: names
                .iter()
                .zip(&wrote)
                .filter(|(_, w)| **w)
                .map(|(n, _)| n.clone())
                .collect(),
            decided_at: unix_now(),
        };
        if let Err(e) = flight.coordinator().log.commit(decision).await {
            // Not decided: presumed abort. Roll back what can be reached; recovery
            // rolls back the rest.
            for (h, (n, w)) in conns.iter_mut().zip(names.iter().zip(&wrote)) {
                if *w {
                    let sql = format!("XA ROLLBACK {}", flight.xid(n));
                    if h.conn.execute_ok(sql.as_bytes()).await.is_err() {
                        h.conn.dirty = true;
                    }
                }
            }
            return Err(SqlError::new(
                1180,
                "HY000",
                format!("shardgate rolled the transaction back on every node: its commit could not be logged: {e}"),
            ));
        }
        failpoint("xa_after_decision").await;
        let seconds = conns
            .iter_mut()
            .zip(names.iter().zip(&wrote))
            .filter(|(_, (_, w))| **w)
            .map(|(h, (n, _))| async move {
                let sql = format!("XA COMMIT {}", flight.xid(n));
                (n, h.conn.execute_ok(sql.as_bytes()).await)
            });
        let mut all = true;
        for (name, r) in join_all(seconds).await {
            match r {
                Ok(ok) => self.lease.note_status(Some(ok.status)),
                Err(e) => {
                    all = false;
                    tracing::warn!(conn = self.id, node = %name, gtrid = %flight.gtrid, error = %e,
                        "XA COMMIT failed after the decision; recovery will commit the branch");
                }
            }
        }
        if all {
            flight.coordinator().log.forget(&flight.gtrid);
        }
        metrics::counter!("shardgate_xa_two_phase_commits_total").increment(1);
        Ok(())
    }
}

fn code(e: &WireError) -> u16 {
    match e {
        WireError::Server { code, .. } => *code,
        _ => 0,
    }
}

/// The client's error for a transaction that could not commit: the node's own error
/// (code and state kept), and that every node rolled back.
fn prepare_failed(node: &str, e: &WireError, two_phase: bool) -> SqlError {
    let what = if two_phase { "prepare" } else { "commit" };
    let mut err = e.to_client(&format!("to data node {node} while committing"));
    err.message = format!(
        "{} (data node {node} could not {what} the transaction; shardgate rolled it back on every node)",
        err.message
    );
    err
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
