//! The backend side of a session: the connection it holds between statements, what
//! ties it there (a transaction, pins and why), the transaction state as the server
//! reports it, the settings replayed on every connection, and the topology snapshot
//! its node ids belong to. The client side (I/O, dispatch, replies) lives in
//! [`super::Session`]; statements over several connections in [`super::fanout`].

use std::collections::BTreeSet;
use std::sync::Arc;

use mysql_common::constants::StatusFlags;
use router::PinReason;

use super::Held;
use crate::topology::Topology;

/// See the module comment.
pub(super) struct Lease {
    pub(super) held: Option<Held>,
    /// The connections of the session's transaction on its other nodes, between
    /// the statements that use them.
    pub(super) branches: Vec<Held>,
    /// The session's transaction as a whole, once opened on a node (see
    /// [`super::global`]). Plain single-node transactions that autocommit-off
    /// statements open implicitly go without one until they touch a second node.
    pub(super) global: Option<super::global::Global>,
    /// The statement being run may write (its node's branch then counts as written).
    pub(super) writes_now: bool,
    /// A `START TRANSACTION WITH CONSISTENT SNAPSHOT` on its way to its node (it
    /// opens there at once, to take the snapshot): the connection that runs it is
    /// the transaction's first branch.
    pub(super) snapshot: Option<Vec<u8>>,
    /// A branch's server rolled the transaction back (a deadlock): the rest of it is
    /// rolled back when the statement ends, as one server would have.
    pub(super) rolled_back: bool,
    /// Connection state that ties the session to `held`; shown in logs and metrics.
    pub(super) pins: BTreeSet<PinReason>,
    pub(super) in_transaction: bool,
    pub(super) autocommit: bool,
    /// A `BEGIN` not yet sent, and the savepoints set after it: they open the
    /// transaction on the node of its first statement that touches data, so that
    /// node need not be known at `BEGIN`. Empty when no transaction is pending.
    pub(super) pending_txn: Vec<Vec<u8>>,
    /// `pending_txn` is held aside while a statement that must not open it runs: the
    /// client is still told a transaction is open.
    pub(super) pending_aside: bool,
    /// `SET TRANSACTION …` statements (no SESSION): they apply to the next
    /// transaction only, so they run again on that transaction's connection.
    pub(super) next_txn: Vec<Vec<u8>>,
    /// The backend connection of the session's transaction was lost: every statement
    /// fails until the client ends the transaction, so nothing after the loss can be
    /// mistaken for part of a transaction that is gone.
    pub(super) lost_txn: bool,
    /// Savepoints of the pending transaction, so that a `ROLLBACK TO` or `RELEASE`
    /// of one that does not exist fails at once, as on MariaDB.
    pub(super) savepoints: Vec<String>,
    /// Session `SET`s, repeated on each connection that runs the session's statements.
    pub(super) replay: Vec<Vec<u8>>,
    /// Changes whenever `replay` does, so a connection knows whether it is current.
    pub(super) replay_gen: u64,
    /// The session's sql_mode has NO_BACKSLASH_ESCAPES: the status flags say so.
    pub(super) no_backslash_escapes: bool,
    /// The layout the session's statement runs against: the current one, loaded as
    /// each command starts, except while the session holds a backend connection
    /// (a transaction, a pin), whose node ids belong to the snapshot it came from.
    pub(super) topo: Arc<Topology>,
}

impl Lease {
    pub(super) fn new(topo: Arc<Topology>) -> Lease {
        Lease {
            topo,
            held: None,
            branches: Vec::new(),
            global: None,
            writes_now: true,
            rolled_back: false,
            snapshot: None,
            pins: BTreeSet::new(),
            in_transaction: false,
            autocommit: true,
            pending_txn: Vec::new(),
            pending_aside: false,
            next_txn: Vec::new(),
            lost_txn: false,
            savepoints: Vec::new(),
            replay: Vec::new(),
            replay_gen: 0,
            no_backslash_escapes: false,
        }
    }

    /// The session `SET`s a connection has not run: all of them for another
    /// session's connection or a new one; for one of this session's (a transaction's
    /// branch, parked while later SETs ran elsewhere) only those after the last it ran,
    /// since some SETs cannot run twice inside a transaction.
    pub(super) fn replay_missing(&self, state: Option<(u32, u64)>, session: u32) -> Vec<Vec<u8>> {
        missing_sets(&self.replay, self.replay_gen, state, session).to_vec()
    }

    /// Forgets every piece of session state (COM_RESET_CONNECTION), once the held
    /// connection is given back. Connections that replayed the old settings are
    /// out of date from now on.
    pub(super) fn reset(&mut self) {
        debug_assert!(self.held.is_none() && self.branches.is_empty() && self.global.is_none());
        let replay_gen = self.replay_gen + 1;
        *self = Lease {
            replay_gen,
            ..Lease::new(self.topo.clone())
        };
    }

    /// Moves to `current` unless a held connection belongs to the snapshot in use.
    /// Runs before every command: it loads the snapshot only when a new one is in
    /// effect.
    pub(super) fn follow(&mut self, current: &crate::topology::Current) {
        if self.held.is_none()
            && self.branches.is_empty()
            && current.generation() != self.topo.generation
        {
            self.topo = current.load();
        }
    }

    /// The transaction, autocommit and NO_BACKSLASH_ESCAPES flags the client is told.
    pub(super) fn status(&self) -> StatusFlags {
        let mut s = StatusFlags::empty();
        if self.autocommit {
            s |= StatusFlags::SERVER_STATUS_AUTOCOMMIT;
        }
        if self.in_transaction
            || self.global.is_some()
            || !self.pending_txn.is_empty()
            || self.pending_aside
            || self.lost_txn
        {
            s |= StatusFlags::SERVER_STATUS_IN_TRANS;
        }
        // Drivers choose how to escape strings from this flag.
        if self.no_backslash_escapes {
            s |= StatusFlags::SERVER_STATUS_NO_BACKSLASH_ESCAPES;
        }
        s
    }

    /// IN_TRANS while the session's transaction is begun but not opened on a node: a
    /// statement that runs meanwhile (on a connection with no transaction) still tells
    /// the client it is in one, as MySQL would.
    pub(super) fn unopened_transaction(&self) -> StatusFlags {
        if self.pending_aside || !self.pending_txn.is_empty() {
            StatusFlags::SERVER_STATUS_IN_TRANS
        } else {
            StatusFlags::empty()
        }
    }

    /// Takes transaction and autocommit state from a backend's status flags.
    pub(super) fn note_status(&mut self, status: Option<StatusFlags>) {
        if let Some(s) = status {
            self.in_transaction = s.contains(StatusFlags::SERVER_STATUS_IN_TRANS);
            self.autocommit = s.contains(StatusFlags::SERVER_STATUS_AUTOCOMMIT);
        }
    }

    /// The client's transaction is open, about to open (a deferred BEGIN), or
    /// autocommit is off: a statement now belongs to it.
    pub(super) fn in_client_transaction(&self) -> bool {
        self.in_transaction || !self.autocommit || !self.pending_txn.is_empty()
    }

    /// The session's state lives on its held connection. With autocommit off, the
    /// transaction its next statement opens is what it keeps (the server's IN_TRANS
    /// says so); between such transactions it may move.
    pub(super) fn must_keep(&self) -> bool {
        !self.pins.is_empty()
            || self.in_transaction
            || self.global.is_some()
            || !self.pending_txn.is_empty()
    }

    /// The session's transaction is shardgate's to end, not the server's: its
    /// branches are XA branches, or there are several.
    pub(super) fn owns_transaction(&self) -> bool {
        self.global
            .as_ref()
            .is_some_and(|g| g.xa.is_some() || !self.branches.is_empty())
    }

    /// The session's transaction may take a branch on another node: it has no pins
    /// (temporary tables, locks, cursors live on one connection only).
    pub(super) fn may_branch(&self) -> bool {
        self.pins.is_empty()
            && (self.global.is_some() || self.in_transaction || !self.pending_txn.is_empty())
    }

    /// Takes a begun-but-unopened transaction aside while a statement that must not
    /// open it on its node runs (metadata, statements without tables).
    pub(super) fn set_pending_aside(&mut self) -> Vec<Vec<u8>> {
        self.pending_aside = !self.pending_txn.is_empty();
        std::mem::take(&mut self.pending_txn)
    }

    pub(super) fn restore_pending(&mut self, pending: Vec<Vec<u8>>) {
        self.pending_txn.splice(0..0, pending);
        self.pending_aside = false;
    }
}

/// See [`Lease::replay_missing`]. Each remembered SET moves `replay_gen` on by one,
/// and a reset moves it past every connection that saw the old list.
fn missing_sets(
    replay: &[Vec<u8>],
    replay_gen: u64,
    state: Option<(u32, u64)>,
    session: u32,
) -> &[Vec<u8>] {
    let missing = match state {
        Some((id, gen)) if id == session && gen <= replay_gen => {
            usize::try_from(replay_gen - gen).ok()
        }
        _ => None,
    };
    match missing {
        Some(m) if m <= replay.len() => &replay[replay.len() - m..],
        _ => replay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_branch_gets_only_the_sets_it_missed() {
        let sets: Vec<Vec<u8>> = ["SET a = 1", "SET b = 2", "SET c = 3"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        // The list is at generation 3; a connection of session 7 ran up to the first.
        assert_eq!(missing_sets(&sets, 3, Some((7, 1)), 7), &sets[1..]);
        assert!(missing_sets(&sets, 3, Some((7, 3)), 7).is_empty());
        // Another session's connection, or a new one: every SET.
        assert_eq!(missing_sets(&sets, 3, Some((8, 1)), 7), &sets[..]);
        assert_eq!(missing_sets(&sets, 3, None, 7), &sets[..]);
        // After a reset (generation 4, then one SET: 5), a connection that saw the old
        // list gets the whole new one.
        let after = vec![b"SET d = 4".to_vec()];
        assert_eq!(missing_sets(&after, 5, Some((7, 3)), 7), &after[..]);
    }
}
