//! Causal reads: a read sent to a replica sees the writes it must see. Each write's
//! GTID reaches the session's record, and through it its user's, from the OK packet
//! that acknowledged it (see `BackendConn::written`), whatever the mode; the mode
//! decides which record a read looks at (`session`: the session's, `global`: the
//! user's, `none`: neither). The read then goes to the rotation's next replica, and
//! waits there with `MASTER_GTID_WAIT` (up to `reads.causal_wait_ms`) unless that
//! replica is known to have applied the record, else to a replica known to, else to
//! the primary.

use std::collections::HashMap;
use std::sync::Arc;

use rules::{CausalReads, NodeId};

use super::{Held, Session};
use crate::backend::gtid::{GtidPos, Written};
use crate::backend::{NodePools, Pool, Role};

/// The session's own writes, by data node name.
#[derive(Default)]
pub(super) struct OwnWrites {
    by_node: HashMap<String, Arc<Written>>,
}

impl Session {
    /// Whose writes this session's reads must see now: the current schema's setting,
    /// else the user's, else `reads.causal_reads`.
    fn causal_mode(&self) -> CausalReads {
        self.layered(
            |s| s.causal_reads,
            |u| u.causal_reads,
            |rt| rt.reads.causal_reads,
        )
    }

    /// Where the GTIDs of this session's writes on data node `node` go (and from
    /// there to its user's record).
    pub(super) fn written_on(&mut self, node: &str) -> Arc<Written> {
        if let Some(w) = self.own_writes.by_node.get(node) {
            return w.clone();
        }
        let user = self.user.as_ref().map_or("", |u| u.name.as_str());
        let w = Arc::new(Written::for_session(self.shared.user_writes.of(user, node)));
        self.own_writes.by_node.insert(node.to_string(), w.clone());
        w
    }

    /// The record a read on `node` must find applied, by the mode now in effect.
    fn must_see(&mut self, node: &str) -> Option<Arc<Written>> {
        match self.causal_mode() {
            CausalReads::None => None,
            CausalReads::Session => Some(self.written_on(node)),
            CausalReads::Global => {
                let user = self.user.as_ref().map_or("", |u| u.name.as_str());
                Some(self.shared.user_writes.of(user, node))
            }
        }
    }

    /// A replica connection for a read on `node`, or `None` when the read must run
    /// on the primary. The read rotation's next replica serves it; when that one has
    /// not been seen at what the read must see, the read waits there (at most
    /// `causal_wait_ms`; the wait returns at once when the replica has it, and from
    /// then on the replica is known to), else takes a replica seen at the position,
    /// else the primary.
    pub(super) async fn replica_for_read(
        &mut self,
        node: NodeId,
        pools: &Arc<NodePools>,
    ) -> Option<Held> {
        let written = self.must_see(&pools.name);
        if written.as_ref().is_some_and(|w| w.unknown()) {
            return None;
        }
        let must_see = written.map(|w| w.get()).filter(|p| !p.is_empty());
        for _ in 0..pools.replicas.len() {
            let i = pools.pick_replica()?;
            let replica = pools.replicas[i].clone();
            let conn = match replica.get_for(self.flavor, self.db.is_none()).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(conn = self.id, error = %e, "replica unavailable; trying the next");
                    continue;
                }
            };
            let held = Held {
                node,
                role: Role::Replica(i),
                conn,
            };
            let Some(pos) = must_see
                .as_ref()
                .filter(|p| !replica.replication.has_applied(p))
            else {
                return Some(held);
            };
            return self.wait_or_elsewhere(held, &replica, pos, pools).await;
        }
        None
    }

    /// `held` is on a replica not seen at `pos`: waits there for it, else reads on
    /// another replica seen there, else (`None`) on the primary.
    async fn wait_or_elsewhere(
        &mut self,
        mut held: Held,
        replica: &Arc<Pool>,
        pos: &GtidPos,
        pools: &NodePools,
    ) -> Option<Held> {
        let wait_ms = self.lease.topo.runtime.reads.causal_wait_ms;
        if wait_ms > 0 && !replica.replication.known_behind(pos) {
            if wait_for(&mut held, pos, wait_ms).await {
                replica.replication.note_applied(pos);
                metrics::counter!("shardgate_causal_reads_total", "outcome" => "waited")
                    .increment(1);
                return Some(held);
            }
            replica.replication.note_behind(pos);
        }
        let node = held.node;
        replica.put(held.conn).await;
        tracing::debug!(conn = self.id, replica = %replica.target.label, position = %pos, "replica not at the session's writes; trying one that is, else the primary");
        let seen = pools
            .replicas
            .iter()
            .enumerate()
            .find(|(_, r)| r.serves_reads() && r.replication.has_applied(pos));
        if let Some((i, other)) = seen {
            if let Ok(conn) = other.get_for(self.flavor, self.db.is_none()).await {
                metrics::counter!("shardgate_causal_reads_total", "outcome" => "other_replica")
                    .increment(1);
                return Some(Held {
                    node,
                    role: Role::Replica(i),
                    conn,
                });
            }
        }
        metrics::counter!("shardgate_causal_reads_total", "outcome" => "primary").increment(1);
        None
    }
}

/// Waits on the replica until it has applied `pos`, for at most `wait_ms`. True when
/// it has.
async fn wait_for(held: &mut Held, pos: &GtidPos, wait_ms: u64) -> bool {
    let sql = format!(
        "SELECT MASTER_GTID_WAIT('{pos}', {}.{:03})",
        wait_ms / 1000,
        wait_ms % 1000
    );
    matches!(held.conn.query_value(sql.as_bytes()).await, Ok(Some(v)) if v == b"0")
}
