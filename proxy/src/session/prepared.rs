//! Server-side prepared statements (binary protocol). For now the session is pinned to
//! the primary connection that prepared them, so statement ids stay valid; routing each
//! EXECUTE by its parameters comes with the router.

use router::PinReason;

use super::{Flow, Session};
use crate::wire::command::*;
use crate::wire::response::Mode;
use crate::wire::SqlError;

impl Session {
    pub(super) async fn prepared(
        &mut self,
        cmd: u8,
        payload: &[u8],
        seq: u8,
    ) -> std::io::Result<Flow> {
        let has_statements =
            self.pins.contains(&PinReason::PreparedStatement) && self.held.is_some();
        let mode = match cmd {
            COM_STMT_PREPARE => Mode::Prepare,
            COM_STMT_EXECUTE => Mode::Query,
            COM_STMT_FETCH => Mode::Fetch,
            COM_STMT_RESET => Mode::Single,
            _ => {
                // CLOSE and SEND_LONG_DATA have no response.
                if has_statements {
                    if let Some(h) = &mut self.held {
                        if h.conn.send_command(payload).await.is_err() {
                            self.held = None;
                        }
                    }
                }
                return Ok(Flow::Continue);
            }
        };
        if cmd != COM_STMT_PREPARE && !has_statements {
            let id = payload
                .get(1..5)
                .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            let e = SqlError::new(
                1243,
                "HY000",
                format!("Unknown prepared statement handler ({id}) given to shardgate"),
            );
            self.send_err(seq, &e).await?;
            return Ok(Flow::Continue);
        }
        if cmd == COM_STMT_PREPARE {
            if let Some(db) = &self.db {
                let rt = self.shared.runtime.load();
                if let Some(schema) = rt.schemas.get(db) {
                    if router::plan::mentions_configured_table(&payload[1..], schema) {
                        let e = SqlError::unsupported(
                            "not supported by shardgate yet: server-side prepared statements on sharded, broadcast or \
                             single tables; use the text protocol (e.g. useServerPrepStmts=false, --db-ps-mode=disable)",
                        );
                        drop(rt);
                        self.send_err(seq, &e).await?;
                        return Ok(Flow::Continue);
                    }
                }
            }
        }
        self.forward_pinned(payload, seq, mode, Some(PinReason::PreparedStatement))
            .await
    }
}
