//! A backend that fails after part of its answer reached the client. Among rows an
//! ERR can end the answer, as when a server's own statement is killed mid-result: the
//! client's statement fails and its session goes on. A client holding part of a
//! packet (a large BLOB cut mid-way), or part of a result's column definitions, has
//! to be disconnected to learn the answer ended.

use bytes::BytesMut;
use mysql_common::constants::StatusFlags;
use tokio::io::AsyncWriteExt;

use super::sharded::RelayError;
use super::{Flow, Session};
use crate::wire::response::Reached;
use crate::wire::{SqlError, WireError};

impl Session {
    /// The client's answer when a backend failed while answering: the error alone
    /// (sequence id `seq`) when nothing was sent, else what [`Reached`] allows. The
    /// session has forgotten the lost connection's state before this.
    pub(super) async fn answer_cut(
        &mut self,
        reached: Reached,
        seq: u8,
        mut err: SqlError,
    ) -> std::io::Result<Flow> {
        match reached {
            Reached::Nothing => {
                self.send_err(seq, &err).await?;
                Ok(Flow::Continue)
            }
            Reached::Resumable { seq, status } => {
                // An earlier statement of the answer (a batch, a procedure) told the
                // client a transaction is open: it was on the lost connection, and
                // the statements the client sends next must not run outside it.
                if let Some(s) = status {
                    // What the client was told (autocommit too) is the session's now.
                    self.lease.note_status(Some(s));
                    if s.contains(StatusFlags::SERVER_STATUS_IN_TRANS) {
                        self.forget_connection_state();
                        err.message
                            .push_str("; the transaction the answer opened is gone: ROLLBACK");
                    }
                }
                tracing::info!(conn = self.id, error = %err.message, "backend failed mid-answer; the answer ends with an error");
                self.send_err(seq, &err).await?;
                Ok(Flow::Continue)
            }
            Reached::Torn => {
                tracing::warn!(conn = self.id, error = %err.message, "backend failed inside a packet; closing client connection");
                Ok(Flow::Close)
            }
        }
    }

    /// For relays that rebuild an answer in `out` (whole packets, next sequence id
    /// `seq`). Nothing sent yet: the error is the answer. Else the rest of `out` goes
    /// out too, so that the client stands among whole rows where an ERR may follow;
    /// but a client left inside a result's header cannot be given one.
    pub(super) async fn cut_rows(
        &mut self,
        out: &mut BytesMut,
        seq: u8,
        sent: Sent,
        err: WireError,
    ) -> RelayError {
        if !sent.flushed {
            return RelayError::Backend(err, Reached::Nothing);
        }
        if !sent.among_rows {
            return RelayError::Backend(err, Reached::Torn);
        }
        match self.stream.write_all(out).await {
            Ok(()) => {
                out.clear();
                let status = sent.status;
                RelayError::Backend(err, Reached::Resumable { seq, status })
            }
            Err(e) => RelayError::Client(e),
        }
    }
}

/// How far a rebuilt answer got: some of it went to the client (`flushed`), what is
/// buffered ends among rows or between results (`among_rows`: not inside a result's
/// column definitions), and the last status flags it carries.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Sent {
    pub flushed: bool,
    pub among_rows: bool,
    pub status: Option<StatusFlags>,
}

impl Sent {
    /// A part whose header the client already has: only rows follow.
    pub fn rows(flushed: bool) -> Sent {
        Sent {
            flushed,
            among_rows: true,
            status: None,
        }
    }
}
