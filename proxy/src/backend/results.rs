//! A backend's answer to a query, read as events: OK, ERR, or a result set's column
//! count, column definitions, rows and end.
//!
//! Where a result ends is decided here (the raw relay's tracker shares the one rule,
//! `generic::ends_rows`): an ERR, or the end-of-rows marker (an EOF, or with
//! CLIENT_DEPRECATE_EOF an OK starting 0xFE), never a row that happens to start with
//! 0xFE (a long string's length prefix). The reader also settles
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
    Ok {
        info: Option<OkInfo>,
        payload: Bytes,
    },
    /// The statement failed; the connection stays usable.
    Err(Bytes),
    /// A result set starts with this many columns.
    Columns {
        count: u64,
        payload: Bytes,
    },
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

impl Event {
    /// The status flags an OK or an end of rows carries.
    fn status(&self) -> Option<StatusFlags> {
        match self {
            Event::Ok { info, .. } => info.map(|o| o.status),
            Event::End { status, .. } => *status,
            _ => None,
        }
    }
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
        let mut event = self.classify(payload, conn.flavor.deprecate_eof())?;
        // What callers forward is what a client without session tracking reads.
        if let Event::Ok { payload, .. } | Event::End { payload, .. } = &mut event {
            *payload = conn.plain_ok(std::mem::take(payload));
        }
        match &event {
            Event::Err(_) => conn.settle(None),
            Event::Ok { info, .. } => {
                conn.note_insert_id(info.map_or(0, |o| o.last_insert_id));
                conn.note_warnings(info.map_or(0, |o| o.warnings));
            }
            Event::End { warnings, .. } => conn.note_warnings(*warnings),
            _ => {}
        }
        // While more results follow, the connection is still answering: a caller that
        // stops here leaves it unsettled, so it is closed rather than pooled.
        if matches!(event, Event::Ok { .. } | Event::End { .. }) && !Self::more_results(&event) {
            conn.settle(event.status());
        }
        Ok(event)
    }

    /// No answer is partly read: the last one ended (or none was read yet).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Head
    }

    /// The answer just read ended one result and another follows.
    pub fn more_results(event: &Event) -> bool {
        event
            .status()
            .is_some_and(|s| s.contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS))
    }

    /// What `payload` means where the answer stands.
    pub(crate) fn classify(
        &mut self,
        payload: Bytes,
        deprecate_eof: bool,
    ) -> Result<Event, WireError> {
        match self.phase {
            Phase::Head => match payload.first() {
                Some(&generic::ERR) => Ok(Event::Err(payload)),
                Some(&generic::OK) => Ok(Event::Ok {
                    info: generic::parse_ok(&payload),
                    payload,
                }),
                Some(&generic::LOCAL_INFILE) => Err(WireError::Protocol(
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
                    1 if deprecate_eof => Phase::Rows,
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
                    self.phase = Phase::Head;
                    Ok(Event::Err(payload))
                }
                Some(&generic::EOF) if generic::ends_rows(payload.len(), deprecate_eof) => {
                    let (status, warnings) = if deprecate_eof {
                        generic::parse_ok(&payload)
                            .map_or((None, 0), |o| (Some(o.status), o.warnings))
                    } else {
                        generic::parse_eof(&payload).map_or((None, 0), |(w, s)| (Some(s), w))
                    };
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::generic::{eof_payload, ok_payload};

    fn kinds(packets: &[Vec<u8>], deprecate: bool) -> Vec<&'static str> {
        let mut r = ResultReader::default();
        packets
            .iter()
            .map(|p| match r.classify(Bytes::from(p.clone()), deprecate) {
                Ok(Event::Ok { .. }) => "ok",
                Ok(Event::Err(_)) => "err",
                Ok(Event::Columns { .. }) => "columns",
                Ok(Event::ColumnDef(_)) => "def",
                Ok(Event::ColumnsEnd(_)) => "defs-end",
                Ok(Event::Row(_)) => "row",
                Ok(Event::End { .. }) => "end",
                Err(_) => "protocol error",
            })
            .collect()
    }

    #[test]
    fn a_row_starting_with_0xfe_is_a_row() {
        let more = StatusFlags::SERVER_MORE_RESULTS_EXISTS;
        // A one-column row whose value is 16 MiB long: its length prefix is 0xFE and
        // eight bytes, like an end marker's first byte.
        let mut long_row = vec![0xFE, 0, 0, 0, 1, 0, 0, 0, 0];
        long_row.resize(9 + (1 << 24), b'x');
        for deprecate in [false, true] {
            let mut packets = vec![vec![1u8], b"def".to_vec()];
            if !deprecate {
                packets.push(eof_payload(false, StatusFlags::empty(), 0).to_vec());
            }
            packets.push(long_row.clone());
            packets.push(vec![1, b'a']);
            packets.push(eof_payload(deprecate, more, 0).to_vec());
            // The next result of a multi-statement: an OK, then an error.
            packets.push(ok_payload(1, 0, StatusFlags::empty(), 0).to_vec());
            let mut expected = vec!["columns", "def"];
            if !deprecate {
                expected.push("defs-end");
            }
            expected.extend(["row", "row", "end", "ok"]);
            assert_eq!(
                kinds(&packets, deprecate),
                expected,
                "deprecate_eof {deprecate}"
            );
        }
    }

    #[test]
    fn errors_end_the_answer_wherever_they_come() {
        let err = vec![0xFF, 0x19, 0x04, b'#', b'4', b'2', b'0', b'0', b'0', b'x'];
        assert_eq!(kinds(std::slice::from_ref(&err), true), ["err"]);
        let rows = [
            vec![2u8],
            b"a".to_vec(),
            b"b".to_vec(),
            vec![1, b'1'],
            err.clone(),
            err,
        ];
        assert_eq!(
            kinds(&rows, true),
            ["columns", "def", "def", "row", "err", "err"]
        );
        assert_eq!(kinds(&[vec![0xFB]], true), ["protocol error"]);
        assert_eq!(
            kinds(&[vec![0x00, 0x00]], true),
            ["ok"],
            "a short OK still ends"
        );
    }
}
