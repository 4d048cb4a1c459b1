//! A backend's answer to a query, read as events: OK, ERR, or a result set's column
//! count, column definitions, rows and end.
//!
//! Where a result ends is decided here and nowhere else: an ERR, or the end-of-rows
//! marker (an EOF, or with CLIENT_DEPRECATE_EOF an OK starting 0xFE), never a row that
//! happens to start with 0xFE (a long string's length prefix). The reader also settles
//! the connection's bookkeeping (status, warnings, insert id) as the answer ends, so
//! the relay, the merge, catalog answers and internal queries cannot disagree about
//! the state a connection is left in. Packets are handed out as they arrive, never
//! gathered, and rows are not decoded: the caller forwards or parses them.

use bytes::Bytes;
use mysql_common::constants::StatusFlags;

use super::BackendConn;
use crate::wire::generic::{self, OkInfo};
use crate::wire::WireError;

/// One packet of an answer, by what it means.
#[derive(Debug)]
pub enum Event {
    /// The statement ended without a result set.
    Ok { info: Option<OkInfo>, payload: Bytes },
    /// The statement failed; the connection stays usable.
    Err(Bytes),
    /// A result set starts with this many columns.
    Columns { count: u64, payload: Bytes },
    ColumnDef(Bytes),
    /// The EOF after the column definitions (clients without CLIENT_DEPRECATE_EOF).
    ColumnsEnd(Bytes),
    Row(Bytes),
    /// The rows are over.
    End {
        status: Option<StatusFlags>,
        warnings: u16,
        payload: Bytes,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Definitions(u64),
    DefinitionsEnd,
    Rows,
}

/// Reads one answer (or, after an end whose status says more results follow, the
/// next one) from a connection.
#[derive(Debug)]
pub struct ResultReader {
    phase: Phase,
}

impl Default for ResultReader {
    fn default() -> Self {
        ResultReader { phase: Phase::Head }
    }
}

impl ResultReader {
    pub async fn next(&mut self, conn: &mut BackendConn) -> Result<Event, WireError> {
        let payload = conn.read_packet().await?.payload;
        self.classify(conn, payload)
    }

    fn classify(&mut self, conn: &mut BackendConn, payload: Bytes) -> Result<Event, WireError> {
        match self.phase {
            Phase::Head => match payload.first() {
                Some(&generic::ERR) => {
                    conn.settle(None);
                    Ok(Event::Err(payload))
                }
                Some(&generic::OK) => {
                    let info = generic::parse_ok(&payload);
                    conn.settle(info.map(|o| o.status));
                    conn.note_insert_id(info.map_or(0, |o| o.last_insert_id));
                    conn.note_warnings(info.map_or(0, |o| o.warnings));
                    Ok(Event::Ok { info, payload })
                }
                Some(0xFB) => Err(WireError::Protocol(
                    "unexpected LOCAL INFILE request from a backend",
                )),
                _ => match crate::wire::lenenc::read_int(&payload) {
                    Some((count, _)) if count > 0 => {
                        self.phase = Phase::Definitions(count);
                        Ok(Event::Columns { count, payload })
                    }
                    _ => Err(WireError::Protocol("bad column count")),
                },
            },
            Phase::Definitions(left) => {
                self.phase = match left {
                    1 if conn.flavor.deprecate_eof() => Phase::Rows,
                    1 => Phase::DefinitionsEnd,
                    n => Phase::Definitions(n - 1),
                };
                Ok(Event::ColumnDef(payload))
            }
            Phase::DefinitionsEnd => {
                self.phase = Phase::Rows;
                Ok(Event::ColumnsEnd(payload))
            }
            Phase::Rows => match payload.first() {
                Some(&generic::ERR) => {
                    conn.settle(None);
                    self.phase = Phase::Head;
                    Ok(Event::Err(payload))
                }
                Some(&generic::EOF) if conn.is_end_marker(&payload) => {
                    let (status, warnings) = if conn.flavor.deprecate_eof() {
                        generic::parse_ok(&payload).map_or((None, 0), |o| (Some(o.status), o.warnings))
                    } else {
                        generic::parse_eof(&payload).map_or((None, 0), |(w, s)| (Some(s), w))
                    };
                    conn.settle(status);
                    conn.note_warnings(warnings);
                    self.phase = Phase::Head;
                    Ok(Event::End {
                        status,
                        warnings,
                        payload,
                    })
                }
                _ => Ok(Event::Row(payload)),
            },
        }
    }

    /// The answer is over (and no more results follow it).
    pub fn at_start(&self) -> bool {
        self.phase == Phase::Head
    }
}
