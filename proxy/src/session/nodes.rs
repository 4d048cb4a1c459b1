//! `SHOW SHARDGATE NODES`: every backend server of the layout in effect, as the read
//! routing sees it — role, up or down, whether it serves reads and why not, lag, the
//! GTID position it has applied, and its pool.

use router::privilege::Need;

use super::{Reply, Session};
use crate::backend::Pool;
use crate::wire::resultset::LocalColumn;
use crate::wire::SqlError;

impl Session {
    pub(super) async fn show_nodes(&mut self, seq: u8) -> Reply {
        // Addresses and health of every backend: for operators, as SHOW SLAVE STATUS is.
        self.need_admin("SHOW SHARDGATE NODES")?;
        let mut rows = Vec::new();
        for node in self.lease.topo.nodes() {
            rows.push(row(&node.name, "primary", &node.primary, None));
            for (i, replica) in node.replicas.iter().enumerate() {
                rows.push(row(
                    &node.name,
                    &format!("replica[{i}]"),
                    replica,
                    Some(replica),
                ));
            }
        }
        let columns = [
            LocalColumn::text("Node"),
            LocalColumn::text("Role"),
            LocalColumn::text("Address"),
            LocalColumn::text("State"),
            LocalColumn::text("Serves_reads"),
            LocalColumn::integer("Lag_ms"),
            LocalColumn::text("Gtid_position"),
            LocalColumn::text("Excluded_because"),
            LocalColumn::integer("Pool_in_use"),
            LocalColumn::integer("Pool_idle"),
            LocalColumn::integer("Pool_waiting"),
            LocalColumn::integer("Pool_max"),
        ];
        self.send_result_set(seq, "", &columns, &rows).await
    }
}

impl Session {
    /// Operators' views (backend addresses, health, transactions in doubt) need the
    /// `admin` privilege, as SHOW SLAVE STATUS needs SUPER on the server.
    pub(super) fn need_admin(&self, what: &str) -> Result<(), SqlError> {
        let allowed = self.port == super::Port::Admin
            || !self.shared.settings.enforce_privileges
            || self.user.as_ref().is_some_and(|u| u.may(Need::Admin));
        if allowed {
            Ok(())
        } else {
            Err(SqlError::specific_access_denied(format!(
                "Access denied; {what} needs the `admin` privilege (users.privileges)"
            )))
        }
    }
}

fn row(node: &str, role: &str, pool: &Pool, replica: Option<&Pool>) -> Vec<Option<String>> {
    let (open, idle, waiting) = pool.usage();
    let up = pool.is_healthy();
    let state = replica.map(|r| r.replication.snapshot());
    // A primary serves the reads that cannot go to a replica whenever it is up.
    let serves = replica.map_or(up, Pool::serves_reads);
    let excluded = match &state {
        _ if !up => Some("down: no connection".to_string()),
        Some(_) if pool.is_offline() => Some("offline: SET REPLICA … OFFLINE".to_string()),
        Some(s) => s.excluded.clone(),
        None => None,
    };
    vec![
        Some(node.to_string()),
        Some(role.to_string()),
        Some(pool.target.address.clone()),
        Some(if up { "up" } else { "down" }.to_string()),
        Some(if serves { "Yes" } else { "No" }.to_string()),
        state.as_ref().and_then(|s| s.lag_ms).map(|l| l.to_string()),
        match &state {
            Some(s) => s.probed.then(|| s.applied.to_string()),
            None => pool.history.latest().map(|p| p.to_string()),
        },
        excluded,
        Some(open.saturating_sub(idle).to_string()),
        Some(idle.to_string()),
        Some(waiting.to_string()),
        Some(pool.max_size().to_string()),
    ]
}
