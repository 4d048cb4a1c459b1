//! A backend that fails after part of its answer reached the client. Among rows an
//! ERR can end the answer, as when a server's own statement is killed mid-result: the
//! client's statement fails and its session goes on. Only a client holding part of a
//! packet (a large BLOB cut mid-way) has to be disconnected to learn the answer ended.

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::sharded::RelayError;
use super::{Flow, Session};
use crate::wire::response::Reached;
use crate::wire::{SqlError, WireError};

impl Session {
    /// The client's answer when a backend failed while answering: the error alone
    /// (sequence id `seq`) when nothing was sent, else what [`Reached`] allows.
    pub(super) async fn answer_cut(
        &mut self,
        reached: Reached,
        seq: u8,
        err: SqlError,
    ) -> std::io::Result<Flow> {
        match reached {
            Reached::Nothing => {
                self.send_err(seq, &err).await?;
                Ok(Flow::Continue)
            }
            Reached::Resumable { seq } => {
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
    /// `seq`): when some of it was already sent (`flushed`) the rest goes out too, so
    /// that the client stands among whole rows where an ERR may follow.
    pub(super) async fn cut_rows(
        &mut self,
        out: &mut BytesMut,
        seq: u8,
        flushed: bool,
        err: WireError,
    ) -> RelayError {
        if !flushed {
            return RelayError::Backend(err, Reached::Nothing);
        }
        match self.stream.write_all(out).await {
            Ok(()) => {
                out.clear();
                RelayError::Backend(err, Reached::Resumable { seq })
            }
            Err(e) => RelayError::Client(e),
        }
    }
}
