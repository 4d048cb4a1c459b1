//! A session's transaction as a whole: the branches it opened on each node, which of
//! them wrote, and how it commits. A transaction is opened on its first node as the
//! client began it; each further node it touches gets a branch opened the same way,
//! with the savepoints set so far, so that a `ROLLBACK TO` means the same on every
//! node.
//!
//! In `xa` mode (on a layout with more than one node) every branch is an XA branch
//! from its start, the first one included: a transaction cannot know at BEGIN
//! whether it will write on a second node, and a plain transaction cannot be made
//! part of a two-phase commit afterwards (it has no PREPARE). The cost for one that
//! stays on one node is `XA END` and `XA COMMIT … ONE PHASE` sent together instead
//! of `COMMIT`: the same round trips. `START TRANSACTION READ ONLY` never writes,
//! and `WITH CONSISTENT SNAPSHOT` has no XA form: both open plain branches.

use std::sync::Arc;

use rules::{NodeId, TransactionMode};
use smallvec::SmallVec;

use crate::xa::{xid, Coordinator};

/// A global transaction id this session is using; dropping it tells recovery the
/// session is done with it, whatever path ends the transaction.
pub(super) struct Flight {
    pub(super) gtrid: String,
    coord: Arc<Coordinator>,
}

impl Flight {
    pub(super) fn new(coord: &Arc<Coordinator>) -> Flight {
        Flight {
            gtrid: coord.begin(),
            coord: coord.clone(),
        }
    }

    /// `XA … <xid>` of this transaction's branch on `node`.
    pub(super) fn xid(&self, node: &str) -> String {
        xid::literal(&self.gtrid, node.as_bytes())
    }

    pub(super) fn coordinator(&self) -> &Arc<Coordinator> {
        &self.coord
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.coord.settled(&self.gtrid);
    }
}

/// See the module comment.
pub(super) struct Global {
    /// The XA id of its branches; `None`: plain branches.
    pub(super) xa: Option<Flight>,
    /// What opens a plain branch: the one-shot `SET TRANSACTION`s and the client's
    /// own `BEGIN`. For XA branches the `SET TRANSACTION`s, then `XA START`.
    opening: Vec<Vec<u8>>,
    /// Nodes where a statement that may write ran.
    pub(super) written: SmallVec<[NodeId; 4]>,
    /// Nodes where a branch was opened: each must still have its connection at the
    /// end, or the transaction was lost with it.
    pub(super) opened: SmallVec<[NodeId; 4]>,
    pub(super) mode: TransactionMode,
    /// What begins the transaction `COMMIT AND CHAIN` starts after this one.
    pub(super) chain: Vec<Vec<u8>>,
}

impl Global {
    /// A transaction the client began with `opening` (`SET TRANSACTION`s, then its
    /// `BEGIN`; empty when autocommit is off). `xa`: its branches are XA.
    pub(super) fn new(
        mut opening: Vec<Vec<u8>>,
        xa: Option<Flight>,
        mode: TransactionMode,
    ) -> Global {
        let chain = chain_of(&opening);
        if xa.is_some() {
            // XA START stands for the BEGIN.
            opening.retain(|s| !is_begin(s));
        }
        Global {
            xa,
            opening,
            written: SmallVec::new(),
            opened: SmallVec::new(),
            mode,
            chain,
        }
    }

    /// What opens this transaction's branch on `node` (named `name`), with the
    /// savepoints set so far.
    pub(super) fn open_on(&self, name: &str, savepoints: &[String]) -> Vec<Vec<u8>> {
        let mut out = self.opening.clone();
        if let Some(f) = &self.xa {
            out.push(format!("XA START {}", f.xid(name)).into_bytes());
        }
        if out.is_empty() && !savepoints.is_empty() {
            // Autocommit off, plain: the first statement would open it; a savepoint
            // needs it open.
            out.push(b"BEGIN".to_vec());
        }
        for s in savepoints {
            out.push(format!("SAVEPOINT `{}`", s.replace('`', "``")).into_bytes());
        }
        out
    }

    pub(super) fn note_write(&mut self, node: NodeId) {
        if !self.written.contains(&node) {
            self.written.push(node);
        }
    }
}

/// What begins a chained transaction after one begun with `opening` (the one-shot
/// `SET TRANSACTION`s, then a `BEGIN`): the same isolation level and access mode, as
/// the server keeps them, but no new consistent snapshot (the server takes none).
pub(super) fn chain_of(opening: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut chain: Vec<Vec<u8>> = opening.iter().filter(|s| !is_begin(s)).cloned().collect();
    let read_only = opening
        .iter()
        .any(|s| is_begin(s) && router::classify::starts_read_only(s));
    chain.push(if read_only {
        b"START TRANSACTION READ ONLY".to_vec()
    } else {
        b"START TRANSACTION".to_vec()
    });
    chain
}

fn is_begin(sql: &[u8]) -> bool {
    matches!(
        router::classify::classify(sql).map(|s| s.transaction),
        Ok(Some(router::TxnOp::Begin))
    )
}

/// Whether a transaction begun with `begin` (`None`: autocommit off) gets XA
/// branches.
pub(super) fn wants_xa(mode: TransactionMode, nodes: usize, begin: Option<&[u8]>) -> bool {
    mode == TransactionMode::Xa
        && nodes > 1
        && !begin.is_some_and(|b| {
            router::classify::takes_snapshot(b) || router::classify::starts_read_only(b)
        })
}

impl super::Session {
    /// The commit protocol of transactions begun in the current schema: its own
    /// setting, else the user's, else `transactions.mode`.
    pub(super) fn transaction_mode(&self) -> TransactionMode {
        self.layered(
            |s| s.transactions,
            |u| u.transactions,
            |rt| rt.transactions.mode,
        )
    }

    /// A transaction begun with `begin` (`None`: autocommit off) would use XA.
    pub(super) fn xa_wanted(&self, begin: Option<&[u8]>) -> bool {
        self.shared.xa.is_some()
            && wants_xa(
                self.transaction_mode(),
                self.lease.topo.nodes().len(),
                begin,
            )
    }

    /// The transaction the statement about to run opens: the deferred `BEGIN` (and
    /// the `SET TRANSACTION`s before it) become its opening; with autocommit off,
    /// the one-shot `SET TRANSACTION`s.
    pub(super) fn open_global(&mut self) -> Global {
        let begin_at = self.lease.pending_txn.iter().position(|s| is_begin(s));
        let opening: Vec<Vec<u8>> = match begin_at {
            Some(i) => self.lease.pending_txn.drain(..=i).collect(),
            None => std::mem::take(&mut self.lease.next_txn),
        };
        let begin = begin_at.and(opening.last()).map(Vec::as_slice);
        let xa = if self.xa_wanted(begin) {
            self.shared.xa.as_ref().map(Flight::new)
        } else {
            None
        };
        Global::new(opening, xa, self.transaction_mode())
    }

    /// A transaction the server opened on its own (autocommit off, or begun where
    /// shardgate passes `BEGIN` through) is about to touch a second node: it becomes
    /// a plain global transaction. What it did on `node` so far is unknown: counted
    /// as a write.
    pub(super) fn ensure_global(&mut self, node: NodeId) {
        if self.lease.global.is_some() {
            return;
        }
        let opening = if self.lease.autocommit {
            vec![b"START TRANSACTION".to_vec()]
        } else {
            Vec::new()
        };
        let mut g = Global::new(opening, None, self.transaction_mode());
        g.note_write(node);
        g.opened.push(node);
        self.lease.global = Some(g);
    }

    /// In `xa` mode, a transaction whose branches are plain (begun READ ONLY, WITH
    /// CONSISTENT SNAPSHOT, or opened by the server) writes on one node only: two
    /// plain commits cannot be made atomic.
    pub(super) fn check_atomic_write(&self, node: NodeId) -> Result<(), crate::wire::SqlError> {
        let Some(g) = &self.lease.global else {
            return Ok(());
        };
        if g.xa.is_some() || g.mode != TransactionMode::Xa || !self.lease.writes_now {
            return Ok(());
        }
        match g.written.iter().find(|n| **n != node) {
            None => Ok(()),
            Some(other) => Err(crate::wire::SqlError::unsupported(format!(
                "not supported by shardgate: this transaction wrote on data node {} and the statement writes on {}, \
                 but its branches are not XA branches (begun WITH CONSISTENT SNAPSHOT, or without BEGIN), so the two \
                 could not commit atomically; begin it with START TRANSACTION, or set transactions = \"best_effort\"",
                self.node_name(*other),
                self.node_name(node)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_branches_open_as_the_client_began_with_the_savepoints_so_far() {
        let g = Global::new(
            vec![
                b"SET TRANSACTION ISOLATION LEVEL READ COMMITTED".to_vec(),
                b"BEGIN".to_vec(),
            ],
            None,
            TransactionMode::BestEffort,
        );
        let open = g.open_on("dn2", &["a".into(), "b`c".into()]);
        let open: Vec<String> = open
            .into_iter()
            .map(|s| String::from_utf8(s).unwrap())
            .collect();
        assert_eq!(
            open,
            [
                "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
                "BEGIN",
                "SAVEPOINT `a`",
                "SAVEPOINT `b``c`"
            ]
        );
        let implicit = Global::new(Vec::new(), None, TransactionMode::BestEffort);
        assert!(implicit.open_on("dn2", &[]).is_empty());
    }

    #[test]
    fn xa_only_where_it_can_serve() {
        use TransactionMode::*;
        assert!(wants_xa(Xa, 2, Some(b"BEGIN")));
        assert!(wants_xa(Xa, 2, None));
        assert!(!wants_xa(Xa, 1, Some(b"BEGIN")));
        assert!(!wants_xa(BestEffort, 2, Some(b"BEGIN")));
        assert!(!wants_xa(Xa, 2, Some(b"START TRANSACTION READ ONLY")));
        assert!(!wants_xa(
            Xa,
            2,
            Some(b"start transaction with consistent snapshot")
        ));
    }
}
