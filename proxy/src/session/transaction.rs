//! Transaction control that shardgate answers itself: a deferred `BEGIN` and its
//! savepoints, and a transaction lost with its backend connection.

use router::{Statement, TxnOp};
use rules::NodeId;

use super::{CommandError, Flow, Reply, Session};
use crate::wire::{SqlError, WireError};

impl Session {
    /// Transaction control that needs no backend yet: `BEGIN` is held back until the
    /// transaction's first statement on data, and savepoints, `COMMIT` and
    /// `ROLLBACK` of a transaction that has not touched data yet are answered here.
    pub(super) async fn deferred_transaction(
        &mut self,
        stmt: &Statement,
        sql: &[u8],
        seq: u8,
    ) -> Result<Option<Flow>, CommandError> {
        if stmt.hints.node.is_some() {
            return Ok(None);
        }
        if self.lease.global.is_some() {
            if let Some(flow) = self.in_open_transaction(stmt, sql, seq).await? {
                return Ok(Some(flow));
            }
        }
        let pending = !self.lease.pending_txn.is_empty();
        match stmt.transaction {
            // WITH CONSISTENT SNAPSHOT takes its snapshot at START, as the client
            // expects: opened at once, on the session's own node.
            Some(TxnOp::Begin)
                if router::classify::takes_snapshot(sql)
                    && ((pending && self.lease.pins.is_empty()) || !self.lease.must_keep()) =>
            {
                self.release_held().await;
                self.lease.pending_txn.clear();
                self.lease.savepoints.clear();
                self.lease.snapshot = Some(sql.to_vec());
                return Ok(None);
            }
            Some(TxnOp::Begin)
                if (pending && self.lease.pins.is_empty()) || !self.lease.must_keep() =>
            {
                // A BEGIN ends the transaction before it; one that touched no data
                // has nothing to commit.
                self.release_held().await;
                self.lease.pending_txn = std::mem::take(&mut self.lease.next_txn);
                self.lease.pending_txn.push(sql.to_vec());
                self.lease.savepoints.clear();
            }
            Some(TxnOp::Commit | TxnOp::Rollback) if pending => {
                let chain = super::global::chain_of(&self.lease.pending_txn);
                self.lease.pending_txn.clear();
                self.lease.savepoints.clear();
                return self.after_ending(sql, chain, seq).await.map(Some);
            }
            Some(op @ (TxnOp::Savepoint | TxnOp::ReleaseSavepoint | TxnOp::RollbackTo))
                if pending =>
            {
                let name = stmt.savepoint.clone().unwrap_or_default();
                note_savepoint(&mut self.lease.savepoints, op, &name)?;
                self.lease.pending_txn.push(sql.to_vec());
            }
            _ => return Ok(None),
        }
        self.send_ok(seq).await?;
        Ok(Some(Flow::Continue))
    }

    /// Transaction control while the session's transaction is open on some node.
    /// One plain branch: the server answers, as without shardgate. Several, or XA:
    /// shardgate ends the transaction on every branch, and savepoints are set and
    /// rolled back to on every branch. `None`: go on as usual.
    async fn in_open_transaction(
        &mut self,
        stmt: &Statement,
        sql: &[u8],
        seq: u8,
    ) -> Result<Option<Flow>, CommandError> {
        let Some(op) = stmt.transaction else {
            return Ok(None);
        };
        // Pins do not matter here: they keep the last connection after the end.
        let ours = self.lease.owns_transaction();
        match op {
            TxnOp::Commit | TxnOp::Rollback if !ours => {
                // The server ends it, on the one connection.
                self.lease.global = None;
                self.lease.savepoints.clear();
                Ok(None)
            }
            TxnOp::Commit | TxnOp::Rollback => {
                let chain = self
                    .lease
                    .global
                    .as_ref()
                    .map(|g| g.chain.clone())
                    .unwrap_or_default();
                self.end_transaction(op == TxnOp::Commit).await?;
                self.after_ending(sql, chain, seq).await.map(Some)
            }
            // BEGIN commits the transaction before it.
            TxnOp::Begin if ours => {
                self.end_transaction(true).await?;
                Ok(None)
            }
            TxnOp::Begin => {
                self.lease.global = None;
                self.lease.savepoints.clear();
                Ok(None)
            }
            TxnOp::Savepoint | TxnOp::ReleaseSavepoint | TxnOp::RollbackTo => {
                let name = stmt.savepoint.clone().unwrap_or_default();
                note_savepoint(&mut self.lease.savepoints, op, &name)?;
                if !ours {
                    return Ok(None);
                }
                let mut failure = None;
                let conns = self
                    .lease
                    .held
                    .iter_mut()
                    .chain(self.lease.branches.iter_mut());
                for h in conns {
                    if let Err(e) = h.conn.execute_ok(sql).await {
                        failure.get_or_insert(e.to_client("(on a savepoint)"));
                    }
                }
                if let Some(mut e) = failure {
                    // Done on some branches only, the nodes would now disagree about
                    // what the transaction holds: it ends here, on every node.
                    let _ = self.end_transaction(false).await;
                    e.message.push_str(
                        " (shardgate rolled the transaction back on every node: the savepoint statement \
                         did not run on all of them)",
                    );
                    return Err(e.into());
                }
                self.send_ok(seq).await?;
                Ok(Some(Flow::Continue))
            }
            _ => Ok(None),
        }
    }

    /// Answers a COMMIT or ROLLBACK that shardgate carried out. `AND CHAIN` begins the
    /// next transaction (deferred, like any BEGIN) with the ended one's isolation level
    /// and access mode, as the server would.
    async fn after_ending(&mut self, sql: &[u8], chain: Vec<Vec<u8>>, seq: u8) -> Reply {
        if router::classify::chains(sql) {
            self.lease.pending_txn = chain;
        }
        self.send_ok(seq).await?;
        Ok(Flow::Continue)
    }

    /// The session's transaction died with its backend connection: `ROLLBACK` ends
    /// it, `COMMIT` ends it with an error (nothing was committed), and every other
    /// statement fails, so nothing runs as if the transaction were still there.
    pub(super) async fn after_lost_transaction(&mut self, op: Option<TxnOp>, seq: u8) -> Reply {
        match op {
            Some(TxnOp::Rollback) => {
                self.lease.lost_txn = false;
                self.send_ok(seq).await?;
            }
            // BEGIN would commit the transaction first, as COMMIT does: the client
            // learns it is gone, and its next BEGIN starts afresh (drivers and
            // sysbench retry a failed transaction from its BEGIN).
            Some(TxnOp::Commit | TxnOp::Begin) => {
                self.lease.lost_txn = false;
                return Err(transaction_lost(true).into());
            }
            _ => return Err(transaction_lost(false).into()),
        }
        Ok(Flow::Continue)
    }
}

/// `SET TRANSACTION` while a transaction is open (MariaDB's ER_CANT_CHANGE_TX_CHARACTERISTICS).
pub(super) fn transaction_characteristics() -> SqlError {
    SqlError::new(
        1568,
        "25001",
        "Transaction characteristics can't be changed while a transaction is in progress",
    )
}

/// Keeps the list of savepoints as the server would after `op` on `name`, or fails
/// as it would: a new branch gets them all, so that `ROLLBACK TO` works there too.
fn note_savepoint(savepoints: &mut Vec<String>, op: TxnOp, name: &str) -> Result<(), SqlError> {
    let at = savepoints.iter().position(|s| s.eq_ignore_ascii_case(name));
    match (op, at) {
        (TxnOp::Savepoint, at) => {
            if let Some(i) = at {
                savepoints.remove(i);
            }
            savepoints.push(name.to_string());
        }
        (_, None) => return Err(savepoint_missing(name)),
        (TxnOp::RollbackTo, Some(i)) => savepoints.truncate(i + 1),
        (_, Some(i)) => savepoints.truncate(i),
    }
    Ok(())
}

fn savepoint_missing(name: &str) -> SqlError {
    SqlError::new(1305, "42000", format!("SAVEPOINT {name} does not exist"))
}

pub(super) fn transaction_lost(commit: bool) -> SqlError {
    let mut msg = String::from(
        "shardgate: this transaction's backend connection was lost, and the server rolled the transaction back; \
         nothing of it was committed",
    );
    msg.push_str(if commit {
        ". The transaction is now ended; run it again"
    } else {
        ". Send ROLLBACK to end it, then run it again"
    });
    SqlError::connection_killed(msg)
}

impl Session {
    /// DDL in a transaction shardgate ends itself: the server commits before DDL
    /// only once the DDL parses, and XA branches refuse DDL outright; so the DDL is
    /// parsed first (prepared, not run), and one that does not parse fails with the
    /// transaction still open, as on the server.
    pub(super) async fn check_ddl_parses(&mut self, sql: &[u8]) -> Result<(), SqlError> {
        if !self.lease.owns_transaction() {
            return Ok(());
        }
        let Some(h) = self.lease.held.as_mut().or(self.lease.branches.first_mut()) else {
            return Ok(());
        };
        // The client's own bytes, as the statement itself goes to the server.
        match h.conn.check_parses(sql).await {
            Err(e @ WireError::Server { code: 1064, .. }) => Err(e.to_client("")),
            Ok(()) | Err(WireError::Server { .. }) => Ok(()),
            Err(e) => {
                self.lease.held = None;
                self.forget_connection_state();
                Err(e.to_client("(checking the DDL)"))
            }
        }
    }

    /// DDL commits the session's transaction before it runs, as the server does.
    /// On the transaction's own connection the server does it with the DDL (and not
    /// when the DDL does not parse); DDL that runs on any other node, or on several,
    /// commits the transaction here first, so that it may run at all. A transaction
    /// begun but not opened anywhere has nothing to commit.
    pub(super) async fn commit_before_ddl(&mut self, nodes: &[NodeId]) -> Result<(), SqlError> {
        if !self.ddl_commits {
            return Ok(());
        }
        if self.lease.owns_transaction() {
            // XA branches refuse DDL: the transaction is committed first, everywhere.
            return self.end_transaction(true).await;
        }
        if !self.lease.pins.is_empty() {
            return Ok(());
        }
        if !self.lease.in_transaction {
            return Ok(());
        }
        match &self.lease.held {
            Some(h) if !nodes.iter().all(|n| *n == h.node) => {}
            _ => return Ok(()),
        }
        let Some(mut held) = self.lease.held.take() else {
            return Ok(());
        };
        match held.conn.execute_ok(b"COMMIT").await {
            Ok(ok) => {
                self.lease.note_status(Some(ok.status));
                self.lease.savepoints.clear();
                self.keep_or_release(held, ok.warnings).await;
                Ok(())
            }
            Err(e) => {
                if matches!(e, WireError::Server { .. }) {
                    self.lease.held = Some(held);
                } else {
                    self.forget_connection_state();
                }
                Err(e.to_client("(committing the transaction before DDL)"))
            }
        }
    }

    /// `SET autocommit = on`. The session keeps its autocommit itself, so that the
    /// setting never pins it: off, the next statement's connection gets
    /// `SET autocommit = 0` and holds the transaction it opens, as after BEGIN. Only
    /// turning it on with a connection held goes to the server, which commits there.
    /// `None`: run it on that connection.
    pub(super) async fn set_autocommit(
        &mut self,
        on: bool,
        seq: u8,
    ) -> Result<Option<Flow>, CommandError> {
        let spans = self.lease.owns_transaction();
        if on && !self.lease.autocommit && spans {
            // Turning autocommit on commits: everywhere, as the server would on one.
            self.end_transaction(true).await?;
        }
        if self.lease.held.is_some() && on != self.lease.autocommit {
            return Ok(None);
        }
        if self.lease.held.is_some() && !self.lease.in_transaction && self.lease.pins.is_empty() {
            // A connection kept only for warnings: SET clears them anyway.
            self.release_held().await;
        }
        if on && !self.lease.autocommit {
            // Nothing ran since autocommit went off: no transaction to commit.
            self.lease.pending_txn.clear();
            self.lease.savepoints.clear();
        }
        self.lease.autocommit = on;
        self.send_ok(seq).await?;
        Ok(Some(Flow::Continue))
    }
}
