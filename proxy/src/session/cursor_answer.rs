//! The answer to a COM_STMT_EXECUTE that asked for a cursor, relayed: the column
//! definitions (names made logical) and the packet that ends them, which carries
//! SERVER_STATUS_CURSOR_EXISTS when the server opened one; or the rows, when it did
//! not; or an OK or ERR. The status flags the client sees are the server's as the
//! session means them (see [`Flags`]); the connection is left settled, so that it can
//! be pooled or used again.

use bytes::BytesMut;
use mysql_common::constants::StatusFlags;
use tokio::io::AsyncWriteExt;

use super::cut_answer::Sent;
use super::sharded::{RelayError, Renames};
use super::{Held, Session};
use crate::backend::results::{Event, ResultReader};
use crate::wire::generic::{self, eof_payload};
use crate::wire::packet::write_packet;
use crate::wire::WireError;

/// Another result follows (a CALL): the answer goes on.
fn more(status: Option<StatusFlags>) -> bool {
    status.is_some_and(|s| s.contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS))
}

/// How the server's status flags become the client's: `(server & keep) | add`.
#[derive(Clone, Copy)]
pub(super) struct Flags {
    pub(super) keep: StatusFlags,
    pub(super) add: StatusFlags,
}

impl Flags {
    fn apply(self, server: StatusFlags) -> StatusFlags {
        (server & self.keep) | self.add
    }

    /// The cursor's own flags from the server, the rest the session's: for a cursor
    /// on a connection that is not the session's.
    pub(super) fn cursor_only(session: StatusFlags) -> Flags {
        Flags {
            keep: StatusFlags::SERVER_STATUS_CURSOR_EXISTS
                | StatusFlags::SERVER_STATUS_LAST_ROW_SENT
                | StatusFlags::SERVER_STATUS_NO_INDEX_USED
                | StatusFlags::SERVER_STATUS_NO_GOOD_INDEX_USED,
            add: session,
        }
    }
}

/// What the server answered.
pub(super) struct CursorAnswer {
    /// The server's own status (none after an error).
    pub(super) status: Option<StatusFlags>,
    pub(super) warnings: u16,
    pub(super) failed: bool,
    pub(super) insert_id: u64,
}

impl CursorAnswer {
    pub(super) fn opened(&self) -> bool {
        self.status
            .is_some_and(|s| s.contains(StatusFlags::SERVER_STATUS_CURSOR_EXISTS))
    }
}

impl Session {
    pub(super) async fn relay_cursor_answer(
        &mut self,
        held: &mut Held,
        seq: u8,
        renames: &Renames<'_>,
        flags: Flags,
    ) -> Result<CursorAnswer, RelayError> {
        let deprecate_eof = self.deprecate_eof();
        let (mut out, mut seq) = (BytesMut::with_capacity(1024), seq);
        let mut reader = ResultReader::default();
        // Among rows until a result's column count is buffered, again after its end.
        let mut sent = Sent {
            among_rows: true,
            ..Sent::default()
        };
        let mut answer = CursorAnswer {
            status: None,
            warnings: 0,
            failed: false,
            insert_id: 0,
        };
        loop {
            let event = match reader.next(&mut held.conn).await {
                Ok(event) => event,
                Err(e) => return Err(self.cut_rows(&mut out, seq, sent, e).await),
            };
            match event {
                Event::Err(p) => {
                    write_packet(&mut out, &mut seq, &p);
                    answer.failed = true;
                    break;
                }
                Event::Ok { info, payload } => {
                    let mut p = payload.to_vec();
                    if let (Some(info), Some(at)) = (info, generic::ok_status_at(&p)) {
                        let client = flags.apply(info.status).bits().to_le_bytes();
                        p[at..at + 2].copy_from_slice(&client);
                        answer.status = Some(info.status);
                        answer.warnings = info.warnings;
                        answer.insert_id = info.last_insert_id;
                    }
                    write_packet(&mut out, &mut seq, &p);
                    sent.status = answer.status;
                    if more(answer.status) {
                        continue;
                    }
                    break;
                }
                Event::Columns { payload, .. } => {
                    sent.among_rows = false;
                    write_packet(&mut out, &mut seq, &payload);
                }
                Event::ColumnDef(p) => match renames.apply(&p) {
                    Some(renamed) => write_packet(&mut out, &mut seq, &renamed),
                    None => write_packet(&mut out, &mut seq, &p),
                },
                Event::ColumnsEnd(p) => {
                    let Some((warnings, status)) = generic::parse_eof(&p) else {
                        let e = WireError::Protocol("bad EOF");
                        return Err(self.cut_rows(&mut out, seq, sent, e).await);
                    };
                    let end = eof_payload(false, flags.apply(status), warnings);
                    write_packet(&mut out, &mut seq, &end);
                    sent.among_rows = true;
                    if status.contains(StatusFlags::SERVER_STATUS_CURSOR_EXISTS) {
                        // Its rows come with COM_STMT_FETCH.
                        held.conn.settle(Some(status));
                        answer.status = Some(status);
                        answer.warnings = warnings;
                        break;
                    }
                }
                Event::Row(p) => {
                    sent.among_rows = true;
                    sent.flushed |= self.pass_row(&mut out, &mut seq, &p).await?;
                }
                Event::End {
                    status, warnings, ..
                } => {
                    let server = status.unwrap_or(StatusFlags::empty());
                    let end = eof_payload(deprecate_eof, flags.apply(server), warnings);
                    write_packet(&mut out, &mut seq, &end);
                    answer.status = status;
                    answer.warnings = warnings;
                    sent.status = status;
                    if more(status) {
                        continue;
                    }
                    break;
                }
            }
        }
        self.stream
            .write_all(&out)
            .await
            .map_err(RelayError::Client)?;
        Ok(answer)
    }
}

impl Session {
    /// Relays the answer to a COM_STMT_FETCH just sent on `held`: binary rows, then
    /// the packet that ends them (its status flags as `flags` make them) or an ERR.
    /// The server's own status is returned (`None` after an error).
    pub(super) async fn relay_fetch(
        &mut self,
        held: &mut Held,
        flags: Flags,
    ) -> Result<Option<StatusFlags>, RelayError> {
        let deprecate_eof = self.deprecate_eof();
        let (mut out, mut seq) = (BytesMut::with_capacity(1024), 1u8);
        let mut forwarded = false;
        let status = loop {
            let p = match held.conn.read_packet().await {
                Ok(p) => p.payload,
                Err(e) => return Err(self.cut_rows(&mut out, seq, Sent::rows(forwarded), e).await),
            };
            match p.first() {
                Some(&generic::ERR) => {
                    write_packet(&mut out, &mut seq, &p);
                    held.conn.settle(None);
                    break None;
                }
                Some(&generic::EOF) if generic::ends_rows(p.len(), deprecate_eof) => {
                    let end = match deprecate_eof {
                        true => generic::parse_ok(&p).map(|o| (o.warnings, o.status)),
                        false => generic::parse_eof(&p),
                    };
                    let Some((warnings, status)) = end else {
                        let e = WireError::Protocol("bad end of rows");
                        return Err(self.cut_rows(&mut out, seq, Sent::rows(forwarded), e).await);
                    };
                    let end = eof_payload(deprecate_eof, flags.apply(status), warnings);
                    write_packet(&mut out, &mut seq, &end);
                    held.conn.settle(Some(status));
                    break Some(status);
                }
                _ => forwarded |= self.pass_row(&mut out, &mut seq, &p).await?,
            }
        };
        self.stream
            .write_all(&out)
            .await
            .map_err(RelayError::Client)?;
        Ok(status)
    }
}
