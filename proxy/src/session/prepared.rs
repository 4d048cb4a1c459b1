//! Server-side prepared statements (binary protocol). Most are routed per execution
//! (see `routed`); those that leave state on their connection (user variables, locks)
//! and CALLs are passed through, and the session is pinned to the primary connection
//! that prepared them, so their ids stay valid.

use router::PinReason;

use super::{Flow, Reply, Session};
use crate::wire::command::*;
use crate::wire::response::Mode;
use crate::wire::SqlError;

impl Session {
    pub(super) async fn prepared(&mut self, cmd: u8, payload: &[u8], seq: u8) -> Reply {
        // information_schema reads narrowed to the user's databases, in the text the
        // statement is prepared with, wherever it runs.
        let resolved = if cmd == COM_STMT_PREPARE {
            self.resolve_comments(payload)
        } else {
            None
        };
        let payload = resolved.as_deref().unwrap_or(payload);
        // Prepared statements get shardgate's values of session functions too.
        let rewritten = if cmd == COM_STMT_PREPARE {
            self.with_session_values(payload, true)
        } else {
            None
        };
        let payload = rewritten.as_deref().unwrap_or(payload);
        let mut confined = None;
        if cmd == COM_STMT_PREPARE {
            let rt = self.lease.topo.runtime.clone();
            let admitted = self
                .check_access(&payload[1..], &rt, true)
                .and_then(|()| self.confine_catalog(payload, &rt));
            drop(rt);
            match admitted {
                Ok(c) => confined = c,
                Err(e) => {
                    return Err(e.into());
                }
            }
        }
        let payload = confined.as_deref().unwrap_or(payload);
        if cmd == COM_STMT_PREPARE {
            if let Some(flow) = self.prepare_routed(&payload[1..], seq).await? {
                return Ok(flow);
            }
        } else if crate::wire::stmt::statement_id(payload)
            .is_some_and(|id| self.routed.contains(id))
        {
            return self.routed_command(cmd, payload, seq).await;
        }
        let has_statements =
            self.lease.pins.contains(&PinReason::PreparedStatement) && self.lease.held.is_some();
        let mode = match cmd {
            COM_STMT_PREPARE => Mode::Prepare,
            COM_STMT_EXECUTE => Mode::Query,
            COM_STMT_FETCH => Mode::Fetch,
            COM_STMT_RESET => Mode::Single,
            _ => {
                // CLOSE and SEND_LONG_DATA have no response.
                if has_statements {
                    if let Some(h) = &mut self.lease.held {
                        if h.conn.send_unanswered(payload).await.is_err() {
                            self.lease.held = None;
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
            return Err(e.into());
        }
        // A pinned statement may read LAST_INSERT_ID(): its connection must hold the
        // session's value (a no-op when it ran the session's last INSERT itself).
        self.wants_insert_id =
            cmd == COM_STMT_EXECUTE && !self.lease.pins.contains(&PinReason::LastInsertId);
        self.forward_pinned(payload, seq, mode, Some(PinReason::PreparedStatement))
            .await
    }
}
