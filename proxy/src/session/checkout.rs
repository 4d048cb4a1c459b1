//! Lending a backend connection to a statement, and taking it back: the session's
//! settings, autocommit, insert id and deferred transaction are made true on the
//! connection before use; after use it is kept while the session's state lives there,
//! else given back through the pool's one release path.

use rules::NodeId;

use super::{Held, Session};
use crate::backend::Role;
use crate::wire::{SqlError, WireError};

impl Session {
    /// A connection for a statement on `node`: the held one when the session's state
    /// lives there, else a replica for reads (weighted, skipping ones that are down),
    /// else the primary. Whatever the session expects of a connection (its settings,
    /// autocommit, its last insert id, a transaction it has begun) is made true on it
    /// before it is returned.
    pub(super) async fn checkout(
        &mut self,
        node: NodeId,
        read_only: bool,
        needs_previous: bool,
    ) -> Result<Held, SqlError> {
        self.notice_lost_branch(node);
        if self.lease.lost_txn {
            return Err(super::transaction::transaction_lost(false));
        }
        self.commit_before_ddl(&[node]).await?;
        self.check_atomic_write(node)?;
        if let Some(h) = self.lease.held.take() {
            if h.node == node && (self.lease.must_keep() || needs_previous) {
                self.control.set_running(self.running_on(&h));
                return self.ready(h, false).await;
            }
            // Kept only for SHOW WARNINGS while a BEGIN waits for its first
            // statement: no part of any transaction.
            let idle = self.lease.global.is_none() && !h.conn.in_transaction();
            if self.lease.must_keep() && !(idle && self.lease.pins.is_empty()) {
                if !self.lease.may_branch() {
                    let names = (self.node_name(h.node), self.node_name(node));
                    self.lease.held = Some(h);
                    return Err(SqlError::unsupported(format!(
                        "not supported by shardgate yet: this session's state (temporary tables, locks, \
                         user variables or cursors) lives on data node {}, and the statement runs on {}; \
                         reset the connection, or keep the statements on one node",
                        names.0, names.1
                    )));
                }
                // Another node's turn: this branch waits for the transaction's next
                // statement on its node, or its end.
                self.ensure_global(h.node);
                self.lease.branches.push(h);
                self.check_atomic_write(node)?;
            } else {
                self.give_back(h).await;
            }
        }
        if let Some(i) = self.lease.branches.iter().position(|b| b.node == node) {
            let h = self.lease.branches.swap_remove(i);
            self.control.set_running(self.running_on(&h));
            // SETs the session ran since this branch last served it.
            let current = Some((self.id, self.lease.replay_gen));
            let h = if h.conn.session_state != current && !self.lease.replay.is_empty() {
                self.restore(h, Vec::new()).await?
            } else {
                h
            };
            return self.ready(h, false).await;
        }
        let branch = self.lease.global.is_some();
        let held = self.fresh_connection(node, read_only).await?;
        self.control.set_running(self.running_on(&held));
        let mut opening: Vec<Vec<u8>> = Vec::new();
        if !self.lease.autocommit && held.conn.autocommit() {
            opening.push(b"SET autocommit = 0".to_vec());
        }
        if let (true, Some(g)) = (branch, &self.lease.global) {
            let name = self.node_name(node);
            opening.extend(g.open_on(&name, &self.lease.savepoints));
        }
        let held = self.restore(held, opening).await?;
        self.ready(held, branch).await
    }

    /// Makes the session's settings true on `held` (those it has not seen), then
    /// runs `then` (autocommit, a branch's opening), and makes a connection that must
    /// refuse writes refuse them.
    async fn restore(&mut self, held: Held, then: Vec<Vec<u8>>) -> Result<Held, SqlError> {
        let current = Some((self.id, self.lease.replay_gen));
        let mut setup = self.lease.replay_missing(held.conn.session_state, self.id);
        setup.extend(then);
        let mut held = self
            .run_setup(
                held,
                &setup,
                "while restoring this session's settings on another connection",
            )
            .await?;
        if !self.lease.replay.is_empty() {
            held.conn.session_state = current;
        }
        // Replicas, and every connection of a user without the write right, refuse
        // writes in the session itself: a stored function that writes (called from a
        // SELECT, DO or SET) fails instead of writing. Last, so that no replayed
        // setting turns it off.
        let replica = matches!(held.role, Role::Replica(_));
        if (replica || !self.may_write()) && (!held.conn.refuses_writes || !setup.is_empty()) {
            if let Err(e) = held.conn.refuse_writes().await {
                return Err(e.to_client("(making a connection refuse writes)"));
            }
            // A primary connection must be reset before a session that may write
            // gets it.
            held.conn.dirty |= !replica;
        }
        Ok(held)
    }

    /// Makes the state that travels with the next statement true on `held`: the
    /// session's last insert id (when the statement reads it), and the opening of
    /// the session's transaction when this statement opens it (a deferred `BEGIN`
    /// with its savepoints, or `XA START`). `joined`: `held` was just made a branch
    /// of the open transaction.
    async fn ready(&mut self, held: Held, joined: bool) -> Result<Held, SqlError> {
        let mut setup: Vec<Vec<u8>> = Vec::new();
        if self.wants_insert_id && held.conn.insert_id != self.last_insert_id {
            setup.push(format!("SET @@last_insert_id = {}", self.last_insert_id).into_bytes());
        }
        if let (Some(begin), None) = (self.lease.snapshot.take(), &self.lease.global) {
            // The snapshot's BEGIN itself: it writes nothing.
            let mut g = super::global::Global::new(vec![begin], None, self.transaction_mode());
            g.opened.push(held.node);
            self.lease.global = Some(g);
            self.lease.writes_now = false;
        }
        // With autocommit off a statement opens the transaction, but not one that
        // commits first (DDL) or ends it: after them the server has none open.
        let opens = self.lease.global.is_none()
            && (!self.lease.pending_txn.is_empty()
                || (!self.lease.autocommit
                    && !self.ddl_commits
                    && !self.ends_transaction
                    && !held.conn.in_transaction()
                    && self.lease.pins.is_empty()
                    && self.xa_wanted(None)));
        if opens {
            let name = self.node_name(held.node);
            let global = self.open_global();
            setup.extend(global.open_on(&name, &self.lease.savepoints));
            self.lease.global = Some(global);
            self.lease.pending_txn.clear();
        } else {
            setup.append(&mut self.lease.next_txn);
        }
        if let Some(g) = &mut self.lease.global {
            if opens || joined {
                g.opened.push(held.node);
            }
            if self.lease.writes_now {
                g.note_write(held.node);
            }
        }
        let ran = self
            .run_setup(
                held,
                &setup,
                "while preparing the connection for this statement",
            )
            .await;
        if ran.is_err() && (opens || joined) {
            // The client's BEGIN did not take (here, or on this branch): its
            // transaction must not quietly become autocommit statements, nor commit
            // on the other nodes.
            self.forget_connection_state();
            self.lease.lost_txn = true;
        }
        let mut held = ran?;
        if self.wants_insert_id {
            held.conn.insert_id = self.last_insert_id;
        }
        Ok(held)
    }

    /// Runs shardgate's own statements on `held` before the client's statement. The
    /// connection is then dirty (reset before another session gets it), and the
    /// session's status follows the server's flags.
    async fn run_setup(
        &mut self,
        mut held: Held,
        setup: &[Vec<u8>],
        what: &str,
    ) -> Result<Held, SqlError> {
        if setup.is_empty() {
            return Ok(held);
        }
        held.conn.dirty = true;
        for sql in setup {
            match held.conn.execute_ok(sql).await {
                Ok(ok) => self.lease.note_status(Some(ok.status)),
                Err(e) => {
                    // What the session expected of this connection is not there: a
                    // transaction it began (or was in) is lost, and says so until the
                    // client ends it.
                    let in_txn = self.lease.in_transaction || held.conn.in_transaction();
                    if matches!(e, WireError::Server { .. }) && !in_txn {
                        self.give_back(held).await;
                    } else {
                        drop(held);
                        self.lease.in_transaction |= in_txn;
                        self.forget_connection_state();
                    }
                    return Err(e.to_client(&format!("{what} (the statement was not run)")));
                }
            }
        }
        metrics::counter!("shardgate_session_state_replays_total").increment(1);
        Ok(held)
    }

    /// A pooled connection: a replica for reads (weighted, skipping ones that are
    /// down, too far behind, or not yet at the session's writes), else the primary.
    async fn fresh_connection(&mut self, node: NodeId, read_only: bool) -> Result<Held, SqlError> {
        // With autocommit off every statement on data opens a transaction: never on
        // a replica.
        let read_only = read_only && self.lease.autocommit;
        let pools = self.lease.topo.node(node).clone();
        if read_only {
            if let Some(held) = self.replica_for_read(node, &pools).await {
                return Ok(held);
            }
        }
        match pools.primary.get_for(self.flavor, self.db.is_none()).await {
            Ok(mut conn) => {
                // The GTIDs of what it writes go where this session's reads look;
                // a primary that cannot report them sends those reads to itself.
                if pools.primary.target.track_gtid {
                    let written = self.written_on(&pools.name);
                    if !conn.tracks_gtid() {
                        written.mark_unknown();
                    }
                    conn.written = Some(written);
                }
                Ok(Held {
                    node,
                    role: Role::Primary,
                    conn,
                })
            }
            Err(e) => Err(SqlError::backend_unavailable(format!(
                "shardgate: data node {} has no usable primary: {e}; the statement was not run",
                pools.name
            ))),
        }
    }

    /// A connection of `node`'s primary pool that is not the session's: the session's
    /// settings are replayed on it alone (none of its state, autocommit or a
    /// transaction, becomes the session's), and it is marked dirty, so that the pool
    /// resets it before lending it again. `why` ends the errors.
    pub(super) async fn detached_primary(
        &mut self,
        node: NodeId,
        why: &str,
    ) -> Result<Held, SqlError> {
        let mut held = self.pooled_primary(node, why).await?;
        held.conn.dirty = true;
        if held.conn.refuses_writes {
            held.conn
                .reset()
                .await
                .map_err(|e| e.to_client(&format!("(preparing a connection {why})")))?;
            held.conn.dirty = true;
        }
        for sql in self.lease.replay_missing(held.conn.session_state, self.id) {
            if let Err(e) = held.conn.execute_ok(&sql).await {
                if matches!(e, WireError::Server { .. }) {
                    self.give_back(held).await;
                }
                return Err(e.to_client(&format!("(restoring this session's settings {why})")));
            }
        }
        Ok(held)
    }

    /// A connection of `node`'s primary pool as the pool lends it, for shardgate's
    /// own reads that leave nothing behind (a catalog query): nothing is replayed,
    /// and it goes back without a reset.
    pub(super) async fn pooled_primary(
        &mut self,
        node: NodeId,
        why: &str,
    ) -> Result<Held, SqlError> {
        let pools = self.lease.topo.node(node).clone();
        let conn = pools
            .primary
            .get_for(self.flavor, false)
            .await
            .map_err(|e| {
                SqlError::backend_unavailable(format!(
                    "shardgate: data node {} has no usable primary {why}: {e}",
                    pools.name
                ))
            })?;
        Ok(Held {
            node,
            role: Role::Primary,
            conn,
        })
    }

    /// Returns a connection to its pool: the one way a session lets one go. The pool
    /// is the one that lent it, even when a layout change has moved its node since.
    pub(super) async fn give_back(&mut self, held: Held) {
        self.control.clear_if(self.running_on(&held));
        let pool = held.conn.pool().clone();
        pool.put(held.conn).await;
    }

    /// Keeps `held` when the session's state needs it (or the client may ask about its
    /// warnings next), else returns it to its pool.
    pub(super) async fn keep_or_release(&mut self, mut held: Held, warnings: u16) {
        if held.conn.is_discarded() {
            // It holds a prepared XA branch for recovery: closed, never kept. State
            // the session had there (pins) is gone, as after a reconnect.
            if !self.lease.pins.is_empty() {
                tracing::warn!(conn = self.id, pins = ?self.lease.pins, "session state lost with a connection closed after a failed XA commit");
                self.lease.pins.clear();
                self.control.set_pins(Vec::new());
            }
            self.give_back(held).await;
            return;
        }
        if held.conn.take_rolled_back() && self.lease.global.is_some() {
            self.lease.rolled_back = true;
        }
        // A plain transaction on one connection that the server ended by itself (DDL,
        // `SET autocommit = 1`, a deadlock): the server's flags say so.
        let ended = self.lease.global.as_ref().is_some_and(|g| g.xa.is_none())
            && self.lease.branches.is_empty()
            && self.lease.held.is_none()
            && !held.conn.in_transaction();
        if ended {
            self.lease.global = None;
            self.lease.savepoints.clear();
        }
        if self.lease.must_keep() || warnings > 0 {
            match self.lease.held.take() {
                // Parts of one statement on several nodes come back one by one: the
                // last one back is the one held, the others wait as branches.
                Some(other) if other.node != held.node && self.lease.global.is_some() => {
                    self.lease.branches.push(other);
                }
                // A connection kept only for SHOW WARNINGS: the newer answer counts.
                Some(other) => self.give_back(other).await,
                None => {}
            }
            self.lease.held = Some(held);
        } else {
            self.give_back(held).await;
        }
    }

    /// The held connection died: whatever state it carried is gone. An open
    /// transaction is remembered as lost, so that no later statement (least of all
    /// COMMIT) is answered as if it were still there. Autocommit stays as the client
    /// set it: the next connection gets it again.
    pub(super) fn forget_connection_state(&mut self) {
        if self.lease.must_keep() {
            tracing::warn!(conn = self.id, pins = ?self.lease.pins, in_transaction = self.lease.in_transaction, "backend connection with session state lost");
        }
        if self.lease.in_transaction || self.lease.global.is_some() {
            self.lease.lost_txn = true;
        }
        // The transaction's other branches go with it: closed, so that their servers
        // roll them back (none is prepared before the decision to commit).
        self.lease.branches.clear();
        self.lease.global = None;
        self.lease.savepoints.clear();
        self.lease.pins.clear();
        self.control.set_pins(Vec::new());
        self.lease.in_transaction = false;
        // Cursors lived on that connection; their ids mean nothing on another.
        self.routed.cursors.clear();
    }

    /// Whatever path ended a statement may have dropped the connection that held the
    /// session's transaction or state (an error path closes a connection whose state
    /// it cannot know). Noticed before the next command and at every checkout: a lost
    /// transaction then fails every statement until the client ends it; lost pins
    /// (temporary tables, locks, user variables) are gone, as after a reconnect.
    pub(super) fn notice_dropped_connection(&mut self) {
        let state =
            self.lease.in_transaction || !self.lease.pins.is_empty() || self.lease.global.is_some();
        if self.lease.held.is_none() && self.lease.branches.is_empty() && state {
            self.forget_connection_state();
            return;
        }
        // Between commands every branch is held or parked: one that is neither died.
        if let Some(g) = &self.lease.global {
            let present = |n: &NodeId| {
                self.lease
                    .held
                    .iter()
                    .chain(&self.lease.branches)
                    .any(|h| h.node == *n)
            };
            if !g.opened.iter().all(present) {
                self.forget_connection_state();
            }
        }
    }

    /// At a checkout for `node`, while other parts of the statement may hold their
    /// connections: a node where the transaction opened a branch and whose connection
    /// is neither held nor parked lost it (nothing else takes a branch's connection
    /// for longer than a statement on its node).
    fn notice_lost_branch(&mut self, node: NodeId) {
        let Some(g) = &self.lease.global else {
            self.notice_dropped_connection();
            return;
        };
        let here = |h: &Held| h.node == node;
        let present =
            self.lease.held.as_ref().is_some_and(here) || self.lease.branches.iter().any(here);
        if g.opened.contains(&node) && !present {
            self.forget_connection_state();
        }
    }
}
