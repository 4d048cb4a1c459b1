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
                self.give_back(h).await;
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
            match &global.xa {
                None => {
                    if h.conn.execute_ok(b"ROLLBACK").await.is_err() {
                        h.conn.dirty = true;
                    }
                }
                Some(f) => xa_rollback(h, &f.xid(name), false).await,
            }
        });
        join_all(ends).await;
        self.lease.in_transaction = false;
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
        let xids: Vec<String> = conns
            .iter()
            .map(|h| flight.xid(&self.node_name(h.node)))
            .collect();
        let wrote: Vec<bool> = conns
            .iter()
            .map(|h| global.written.contains(&h.node))
            .collect();
        if wrote.iter().filter(|w| **w).count() > 1 {
            return self.commit_two_phase(flight, conns, &xids, &wrote).await;
        }
        // One phase: the written branch's commit is the transaction's; the read-only
        // ones follow its outcome.
        if let Some(w) = wrote.iter().position(|w| *w) {
            let name = self.node_name(conns[w].node);
            match one_phase(&mut conns[w], &xids[w]).await {
                Ok(ok) => self.lease.note_status(Some(ok.status)),
                Err(e) => {
                    // The written branch too: a failed one-phase commit may leave it
                    // ended but not rolled back.
                    for (h, xid) in conns.iter_mut().zip(&xids) {
                        xa_rollback(h, xid, false).await;
                    }
                    return Err(match e {
                        WireError::Server { .. } => not_committed(&name, &e, "commit"),
                        _ => commit_unknown(&name, &e),
                    });
                }
            }
        }
        let rest = conns
            .iter_mut()
            .zip(&xids)
            .zip(&wrote)
            .filter(|(_, w)| !**w)
            .map(|((h, xid), _)| one_phase(h, xid));
        // Nothing was written there: an error loses nothing.
        for ok in join_all(rest).await.into_iter().flatten() {
            self.lease.note_status(Some(ok.status));
        }
        Ok(())
    }

    /// Several branches wrote: each prepares, the decision goes to the log, then each
    /// commits.
    pub(super) async fn commit_two_phase(
        &mut self,
        flight: &Flight,
        conns: &mut [Held],
        xids: &[String],
        wrote: &[bool],
    ) -> Result<(), SqlError> {
        // A node may have several branches (one per connection): each is told
        // apart by its place in `conns`.
        let prepares = conns
            .iter_mut()
            .zip(xids.iter().zip(wrote))
            .enumerate()
            .filter(|(_, (_, (_, w)))| **w)
            .map(|(i, (h, (xid, _)))| async move {
                let end = format!("XA END {xid}");
                let prepare = format!("XA PREPARE {xid}");
                let r = h
                    .conn
                    .execute_pipelined(&[end.as_bytes(), prepare.as_bytes()])
                    .await;
                (i, h.node, r)
            });
        let prepared: Vec<_> = join_all(prepares).await;
        if let Some((node, e)) = prepared
            .iter()
            .find_map(|(_, n, r)| r.as_ref().err().map(|e| (*n, e)))
        {
            let err = not_committed(&self.node_name(node), e, "prepare");
            let ok: Vec<usize> = prepared
                .iter()
                .filter(|(_, _, r)| r.is_ok())
                .map(|(i, _, _)| *i)
                .collect();
            for (i, (h, xid)) in conns.iter_mut().zip(xids).enumerate() {
                xa_rollback(h, xid, ok.contains(&i)).await;
            }
            return Err(err);
        }
        failpoint("xa_before_decision").await;
        let decision = Decision {
            gtrid: flight.gtrid.clone(),
            nodes: {
                let mut nodes: Vec<String> = conns
                    .iter()
                    .zip(wrote)
                    .filter(|(_, w)| **w)
                    .map(|(h, _)| self.node_name(h.node))
                    .collect();
                nodes.sort();
                nodes.dedup();
                nodes
            },
            decided_at: crate::xa::unix_seconds(),
        };
        let mut logged = flight.coordinator().log.commit(decision.clone()).await;
        for pause in [50, 200, 1000] {
            if logged.is_ok() {
                break;
            }
            // Writing the same decision again does no harm.
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            logged = flight.coordinator().log.commit(decision.clone()).await;
        }
        if let Err(e) = logged {
            flight.coordinator().leave_undecided(&flight.gtrid);
            // Whether the decision reached the disk is unknown (a failed fsync may
            // still have written it): the prepared branches stay for recovery, which
            // follows what the log holds once it can be read.
            for (h, w) in conns.iter_mut().zip(wrote) {
                if *w {
                    h.conn.discard();
                }
            }
            return Err(SqlError::new(
                1430,
                "HY000",
                format!(
                    "shardgate could not write the commit decision of this transaction ({e}); it may or may not \
                     have committed, on every node alike: its branches stay prepared until shardgate restarts and \
                     finishes them from the decision log (SHOW SHARDGATE XA lists them)"
                ),
            ));
        }
        failpoint("xa_after_decision").await;
        let seconds =
            conns
                .iter_mut()
                .zip(xids.iter().zip(wrote))
                .map(|(h, (xid, w))| async move {
                    let r = if *w {
                        h.conn
                            .execute_ok(format!("XA COMMIT {xid}").as_bytes())
                            .await
                    } else {
                        one_phase(h, xid).await
                    };
                    if r.is_err() && *w {
                        // Its branch stays prepared for recovery, away from the pool.
                        h.conn.discard();
                    }
                    (h.node, *w, r)
                });
        let mut all = true;
        for (node, w, r) in join_all(seconds).await {
            match r {
                Ok(ok) => self.lease.note_status(Some(ok.status)),
                Err(e) if w => {
                    all = false;
                    tracing::warn!(conn = self.id, node = %self.node_name(node), gtrid = %flight.gtrid, error = %e,
                        "XA COMMIT failed after the decision; recovery will commit the branch");
                }
                Err(_) => {}
            }
        }
        if all {
            flight.coordinator().log.forget(&flight.gtrid);
        }
        metrics::counter!("shardgate_xa_two_phase_commits_total").increment(1);
        Ok(())
    }
}

/// `XA END` and `XA COMMIT … ONE PHASE`, in one round trip.
async fn one_phase(h: &mut Held, xid: &str) -> Result<crate::wire::generic::OkInfo, WireError> {
    let end = format!("XA END {xid}");
    let commit = format!("XA COMMIT {xid} ONE PHASE");
    h.conn
        .execute_pipelined(&[end.as_bytes(), commit.as_bytes()])
        .await
}

/// Rolls back an XA branch: `prepared` ones need no `XA END`. A connection where it
/// fails is reset before reuse, or closed.
pub(super) async fn xa_rollback(h: &mut Held, xid: &str, prepared: bool) {
    let rollback = format!("XA ROLLBACK {xid}");
    let r = if prepared {
        h.conn.execute_ok(rollback.as_bytes()).await
    } else {
        let end = format!("XA END {xid}");
        h.conn
            .execute_pipelined(&[end.as_bytes(), rollback.as_bytes()])
            .await
    };
    if r.is_err() {
        if prepared {
            // Still prepared, perhaps: recovery's, on no session's connection.
            h.conn.discard();
        } else {
            h.conn.dirty = true;
        }
    }
}

/// The client's error for a transaction that did not commit: the node's own error
/// (code and state kept), and that every node rolled back.
fn not_committed(node: &str, e: &WireError, what: &str) -> SqlError {
    match e {
        WireError::Server { .. } => {
            let mut err = e.to_client("");
            err.message = format!(
                "{} (data node {node} could not {what} the transaction; shardgate rolled it back on every node)",
                err.message
            );
            err
        }
        // Before the decision, a branch whose connection died is rolled back by its
        // server (or, if it had prepared, by recovery): nothing commits.
        _ => SqlError::connection_killed(format!(
            "shardgate lost the connection to data node {node} before the transaction could {what} there ({e}); \
             shardgate rolled it back on every node, and nothing of it was committed"
        )),
    }
}

/// The connection died while its node committed in one phase: only that node knows.
fn commit_unknown(node: &str, e: &WireError) -> SqlError {
    SqlError::new(
        1430,
        "HY000",
        format!(
            "shardgate lost the connection to data node {node} while it committed the transaction ({e}); \
             it may or may not have committed there, and nothing was written on the other nodes"
        ),
    )
}
