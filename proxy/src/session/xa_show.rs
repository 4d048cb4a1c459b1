//! `SHOW SHARDGATE XA`: the XA branches this instance left prepared on the nodes
//! (in doubt until recovery resolves them), what recovery will do with each, and the
//! nodes it cannot ask. Asks the nodes now; changes nothing.

use super::{Reply, Session};
use crate::wire::resultset::LocalColumn;

impl Session {
    pub(super) async fn show_xa(&mut self, seq: u8) -> Reply {
        self.need_admin("SHOW SHARDGATE XA")?;
        let mut rows = Vec::new();
        if let Some(coord) = self.shared.xa.clone() {
            let round = crate::xa::recovery::round(&coord, &self.shared.topology, false).await;
            for b in round.branches.into_iter().chain(round.foreign) {
                rows.push(vec![
                    Some(b.node),
                    Some(b.gtrid),
                    Some(b.bqual),
                    Some(b.outcome.to_string()),
                    None,
                ]);
            }
            for (node, error) in round.unreachable {
                rows.push(vec![
                    Some(node),
                    None,
                    None,
                    Some("unknown: node unreachable".to_string()),
                    Some(error),
                ]);
            }
        }
        let columns = [
            LocalColumn::text("Node"),
            LocalColumn::text("Gtrid"),
            LocalColumn::text("Bqual"),
            LocalColumn::text("Recovery"),
            LocalColumn::text("Error"),
        ];
        self.send_result_set(seq, "", &columns, &rows).await
    }
}
