//! Operating verbs that change the layout or are audited without changing it:
//! `SWITCH PRIMARY`, and a note of any other admin action (a replica taken out of
//! rotation, a session killed, statistics reset).

use std::sync::Arc;

use super::{AdminPlane, Reply, Who};
use crate::config::document::document_of;
use crate::wire::SqlError;

impl AdminPlane {
    /// Puts a layout in effect where `node` writes to its replica `address`, and the
    /// old primary becomes a replica (shardgate only routes: making the server a
    /// primary, and the others replicate from it, is the DBA's).
    pub async fn switch_primary(
        self: &Arc<Self>,
        who: &Who,
        sql: &str,
        node: &str,
        address: &str,
    ) -> Result<Reply, SqlError> {
        let _one_at_a_time = self.one_at_a_time().await?;
        let topo = self.topology.load();
        let Some(n) = topo.cluster.nodes.get(node) else {
            return Err(SqlError::internal(format!(
                "there is no node `{node}`; SELECT name FROM runtime_nodes lists them"
            )));
        };
        let Some(i) = n.replicas.iter().position(|r| r.address() == address) else {
            let known: Vec<&str> = n.replicas.iter().map(|r| r.address()).collect();
            return Err(SqlError::internal(format!(
                "`{address}` is not a replica of {node} (its replicas: {}); add it to the replicas table first",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )));
        };
        let cluster = crate::promotion::promote(&topo.cluster, node, i);
        let doc = document_of(&cluster, &topo.users);
        self.blocking(|p, store| p.catch_up(store)).await?;
        self.apply(who, sql, doc, false, &format!("switch primary of {node}"))
            .await
    }

    /// Audits an admin action that changes no layout.
    pub async fn note(
        self: &Arc<Self>,
        who: &Who,
        sql: &str,
        outcome: &str,
    ) -> Result<(), SqlError> {
        let (who, sql, outcome) = (who.clone(), sql.to_string(), outcome.to_string());
        self.blocking(move |p, store| p.audit(store, &who, &sql, None, &outcome))
            .await
    }
}
