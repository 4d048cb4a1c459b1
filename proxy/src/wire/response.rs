//! Finds where a backend's response to one command ends, while its bytes are forwarded
//! untouched. Only the first bytes of each packet are looked at (header byte, column
//! count, status flags); rows are never decoded, and a packet larger than the buffer
//! streams through in pieces. The one change: on a connection with session tracking,
//! an OK that carries session state is read whole and given back in the plain form
//! (see [`super::session_state`]).

use bytes::BytesMut;
use mysql_common::constants::StatusFlags;

use super::generic::{self, OkInfo, EOF, ERR, LOCAL_INFILE, OK};
use super::lenenc;
use super::packet::{payload_len, HEADER, MAX_PAYLOAD};
use super::WireError;

/// The shape of response the command that was sent expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// COM_QUERY and COM_STMT_EXECUTE: OK, ERR, LOCAL INFILE request, or result sets.
    Query,
    /// COM_STMT_PREPARE: statement OK, parameter and column definitions.
    Prepare,
    /// COM_STMT_FETCH: rows and an end marker.
    Fetch,
    /// COM_FIELD_LIST: column definitions and an end marker.
    FieldList,
    /// Commands answered by exactly one packet (COM_PING, COM_INIT_DB, COM_STATISTICS ...).
    Single,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Columns(u64),
    ColumnsEof,
    Rows,
    Params { params: u16, cols: u16 },
    ParamsEof { cols: u16 },
    PrepCols(u16),
    PrepColsEof,
}

/// How much of an answer a client holds when its backend fails mid-way: whether the
/// session can go on (an ERR ends the answer there) or the client's stream is torn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// Nothing of the answer was sent: the error is the whole answer.
    Nothing,
    /// Whole packets up to a place where an ERR may stand (among rows, or before a
    /// further result); the ERR takes sequence id `seq`. `status`: the last status
    /// flags the client was sent in this answer (an earlier statement of a batch may
    /// have opened a transaction the client now believes in).
    Resumable {
        seq: u8,
        status: Option<StatusFlags>,
    },
    /// Part of a packet, or a place no ERR may follow: only closing the client
    /// connection tells it the answer is over.
    Torn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    NeedMore,
    /// The response is complete.
    Done,
    /// The server asked for a local file (0xFB); the caller must relay the client's data.
    LocalInfile,
}

/// What the response said, for the session's bookkeeping.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Status flags of the last OK/EOF seen.
    pub status: Option<StatusFlags>,
    /// The last OK packet (affected rows, insert id, warnings).
    pub ok: Option<OkInfo>,
    /// The last non-zero insert id of any OK in the response (a batch's INSERT may
    /// be followed by other results).
    pub insert_id: u64,
    /// Warnings from the last end-of-rows marker or OK.
    pub warnings: u16,
    /// The error code, when the response (or its last result) was an ERR.
    pub error: Option<u16>,
    /// Result sets seen (0 for a plain OK).
    pub result_sets: u32,
    /// Rows of every result set seen (for the statement statistics).
    pub rows: u64,
    /// The response stopped at a LOCAL INFILE request: the client's file data must
    /// go to the backend, and the rest of the response follows.
    pub local_infile: bool,
    /// GTIDs (`last_gtid` values) that OKs reported since the caller last took them
    /// (connections with session tracking).
    pub gtids: Vec<Vec<u8>>,
}

#[derive(Debug)]
pub struct ResponseTracker {
    mode: Mode,
    deprecate_eof: bool,
    state: State,
    /// Payload bytes of the current physical packet still to pass.
    skip: usize,
    /// The physical packet being passed is 16 MiB - 1 long, so another follows.
    continued: bool,
    finish: Option<Progress>,
    pub summary: Summary,
    /// Flags added to every status the client sees (the backend's own stay in
    /// `summary`): IN_TRANS for a session whose transaction is begun but not yet
    /// opened on this connection.
    pub add_status: StatusFlags,
    /// Where, in the packet just inspected, its status flags start.
    status_at: Option<usize>,
    /// The connection reports session state in its OKs (CLIENT_SESSION_TRACK): they
    /// are rewritten before the client gets them.
    pub untrack: bool,
    /// Sequence id of the last packet passed.
    seq: u8,
}

/// Packets up to this size are passed whole, never in pieces: a backend failing
/// mid-answer then leaves the client at a packet boundary, where an ERR can end the
/// answer and the session go on. Larger packets (big BLOBs) still stream in pieces.
const WHOLE: usize = 16 * 1024;

/// Bytes of a packet inspected at most: enough for any OK/EOF status and column count.
const INSPECT: usize = 32;

impl ResponseTracker {
    pub fn new(mode: Mode, deprecate_eof: bool) -> Self {
        ResponseTracker {
            mode,
            deprecate_eof,
            state: State::Start,
            skip: 0,
            continued: false,
            finish: None,
            summary: Summary::default(),
            add_status: StatusFlags::empty(),
            status_at: None,
            untrack: false,
            seq: 0,
        }
    }

    /// Where the client stands if the backend fails now, having been sent everything
    /// fed so far (`forwarded`: anything at all).
    pub fn reached(&self, forwarded: bool) -> Reached {
        if !forwarded {
            return Reached::Nothing;
        }
        let boundary = self.skip == 0 && !self.continued && self.finish.is_none();
        let err_may_stand = match self.state {
            State::Rows | State::ColumnsEof => matches!(self.mode, Mode::Query | Mode::Fetch),
            // Only after a result that announced more: nothing was forwarded otherwise.
            State::Start => self.mode == Mode::Query,
            _ => false,
        };
        if boundary && err_may_stand {
            Reached::Resumable {
                seq: self.seq.wrapping_add(1),
                status: self.summary.status,
            }
        } else {
            Reached::Torn
        }
    }

    /// After a LOCAL INFILE exchange the server answers with OK or ERR.
    pub fn resume_after_infile(&mut self) {
        self.state = State::Start;
        self.finish = None;
    }

    /// Consumes complete-enough bytes from the front of `buf`. Returns how many bytes may
    /// be forwarded now and whether the response ended with them. Status flags in
    /// those bytes get `add_status`.
    pub fn feed(&mut self, buf: &mut BytesMut) -> Result<(usize, Progress), WireError> {
        let mut pos = 0;
        loop {
            if self.skip > 0 {
                let n = self.skip.min(buf.len() - pos);
                pos += n;
                self.skip -= n;
                if self.skip > 0 {
                    return Ok((pos, Progress::NeedMore));
                }
            }
            if !self.continued {
                if let Some(p) = self.finish {
                    return Ok((pos, p));
                }
            }
            let avail = buf.len() - pos;
            if avail < HEADER {
                return Ok((pos, Progress::NeedMore));
            }
            let mut len = payload_len(&buf[pos..]);
            if !self.continued {
                let whole = if len <= WHOLE { len } else { INSPECT };
                if avail - HEADER < whole {
                    return Ok((pos, Progress::NeedMore));
                }
                let need = len.min(INSPECT);
                let head = &buf[pos + HEADER..pos + HEADER + need];
                // An OK that carries session state is rewritten whole: it is waited
                // for. Only a packet where an OK may stand is asked, so rows (a binary
                // row also starts with 0x00) still pass in pieces.
                let tracked = self.untrack
                    && self.may_be_ok(head.first().copied(), len)
                    && super::session_state::carries_state(head);
                if tracked && avail - HEADER < len {
                    return Ok((pos, Progress::NeedMore));
                }
                self.on_packet(head, len)?;
                if let Some(at) = self.status_at.take() {
                    if tracked {
                        len = self.untrack_at(buf, pos, len);
                    }
                    self.overlay_status(&mut buf[pos + HEADER..pos + HEADER + need.min(len)], at);
                }
            }
            self.continued = len == MAX_PAYLOAD;
            self.seq = buf[pos + 3];
            pos += HEADER;
            self.skip = len;
        }
    }

    /// Whether a packet starting `first`, of `len` bytes, would be read as an OK (or an
    /// end-of-rows OK) where the answer stands: what `on_packet` will decide, asked
    /// before it changes anything.
    fn may_be_ok(&self, first: Option<u8>, len: usize) -> bool {
        let end_ok = first == Some(EOF) && self.deprecate_eof && generic::ends_rows(len, true);
        match (self.mode, self.state) {
            (Mode::Single, _) => first == Some(OK),
            (Mode::Query, State::Start) => first == Some(OK),
            (Mode::FieldList | Mode::Fetch, State::Start) | (_, State::Rows) => end_ok,
            _ => false,
        }
    }

    /// Replaces the whole OK at `pos` (payload `len` bytes) by its plain form when it
    /// carries session state, keeping the GTID; returns the payload's new length.
    fn untrack_at(&mut self, buf: &mut BytesMut, pos: usize, len: usize) -> usize {
        let start = pos + HEADER;
        let Some(u) = super::session_state::untrack(&buf[start..start + len]) else {
            return len;
        };
        self.summary.gtids.extend(u.last_gtid);
        let new_len = u.plain.len();
        buf[pos..pos + 3].copy_from_slice(&(new_len as u32).to_le_bytes()[..3]);
        buf[start..start + new_len].copy_from_slice(&u.plain);
        buf.copy_within(start + len.., start + new_len);
        buf.truncate(buf.len() - (len - new_len));
        new_len
    }

    fn overlay_status(&self, head: &mut [u8], at: usize) {
        if self.add_status.is_empty() {
            return;
        }
        if let Some(s) = head.get_mut(at..at + 2) {
            let flags = u16::from_le_bytes([s[0], s[1]]) | self.add_status.bits();
            s.copy_from_slice(&flags.to_le_bytes());
        }
    }

    fn end_marker(&self, head: &[u8], len: usize) -> bool {
        head.first() == Some(&EOF) && generic::ends_rows(len, self.deprecate_eof)
    }

    fn read_end_marker(&mut self, head: &[u8]) {
        if self.deprecate_eof {
            if let Some(ok) = generic::parse_ok(head) {
                self.summary.status = Some(ok.status);
                self.summary.warnings = ok.warnings;
                self.status_at = generic::ok_status_at(head);
            }
        } else if let Some((warnings, status)) = generic::parse_eof(head) {
            self.summary.status = Some(status);
            self.summary.warnings = warnings;
            self.status_at = Some(generic::EOF_STATUS_AT);
        }
    }

    fn more_results(&self) -> bool {
        self.summary
            .status
            .is_some_and(|s| s.contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS))
    }

    fn on_error(&mut self, head: &[u8]) {
        self.summary.error = Some(match head.get(1..3) {
            Some(c) => u16::from_le_bytes([c[0], c[1]]),
            None => 0,
        });
        self.finish = Some(Progress::Done);
    }

    fn on_packet(&mut self, head: &[u8], len: usize) -> Result<(), WireError> {
        let first = head.first().copied();
        if self.mode == Mode::Single {
            match first {
                Some(OK) => self.on_ok(head),
                Some(ERR) => self.on_error(head),
                _ => {}
            }
            self.finish = Some(Progress::Done);
            return Ok(());
        }
        match self.state {
            State::Start => match (self.mode, first) {
                (_, Some(ERR)) => self.on_error(head),
                (Mode::Query, Some(OK)) => {
                    self.on_ok(head);
                    self.summary.error = None;
                    if !self.more_results() {
                        self.finish = Some(Progress::Done);
                    }
                }
                (Mode::Query, Some(LOCAL_INFILE)) => self.finish = Some(Progress::LocalInfile),
                (Mode::Query, _) => {
                    let (n, _) = lenenc::read_int(head)
                        .filter(|(n, _)| *n > 0)
                        .ok_or(WireError::Protocol("bad column count in result set"))?;
                    self.summary.result_sets += 1;
                    self.summary.error = None;
                    self.state = State::Columns(n);
                }
                (Mode::Prepare, Some(OK)) => {
                    if head.len() < 9 {
                        return Err(WireError::Protocol("short COM_STMT_PREPARE OK"));
                    }
                    let cols = u16::from_le_bytes([head[5], head[6]]);
                    let params = u16::from_le_bytes([head[7], head[8]]);
                    if params > 0 {
                        self.state = State::Params { params, cols };
                    } else {
                        self.after_params(cols);
                    }
                }
                (Mode::Prepare, _) => {
                    return Err(WireError::Protocol("bad COM_STMT_PREPARE answer"))
                }
                (Mode::Fetch, _) => {
                    self.state = State::Rows;
                    self.on_packet(head, len)?;
                }
                (Mode::FieldList, _) => {
                    if self.end_marker(head, len) {
                        self.read_end_marker(head);
                        self.finish = Some(Progress::Done);
                    }
                }
                (Mode::Single, _) => unreachable!("handled above"),
            },
            State::Columns(n) => {
                if n > 1 {
                    self.state = State::Columns(n - 1);
                } else if self.deprecate_eof {
                    self.state = State::Rows;
                } else {
                    self.state = State::ColumnsEof;
                }
            }
            State::ColumnsEof => match first {
                Some(EOF) => {
                    self.read_end_marker(head);
                    let cursor = self
                        .summary
                        .status
                        .is_some_and(|s| s.contains(StatusFlags::SERVER_STATUS_CURSOR_EXISTS));
                    if cursor {
                        self.finish = Some(Progress::Done);
                    } else {
                        self.state = State::Rows;
                    }
                }
                Some(ERR) => self.on_error(head),
                _ => return Err(WireError::Protocol("expected EOF after column definitions")),
            },
            State::Rows => {
                if first == Some(ERR) {
                    self.on_error(head);
                } else if !self.end_marker(head, len) {
                    self.summary.rows += 1;
                } else {
                    self.read_end_marker(head);
                    if self.mode == Mode::Query && self.more_results() {
                        self.state = State::Start;
                    } else {
                        self.finish = Some(Progress::Done);
                    }
                }
            }
            State::Params { params, cols } => {
                if params > 1 {
                    self.state = State::Params {
                        params: params - 1,
                        cols,
                    };
                } else if self.deprecate_eof {
                    self.after_params(cols);
                } else {
                    self.state = State::ParamsEof { cols };
                }
            }
            State::ParamsEof { cols } => self.after_params(cols),
            State::PrepCols(n) => {
                if n > 1 {
                    self.state = State::PrepCols(n - 1);
                } else if self.deprecate_eof {
                    self.finish = Some(Progress::Done);
                } else {
                    self.state = State::PrepColsEof;
                }
            }
            State::PrepColsEof => self.finish = Some(Progress::Done),
        }
        Ok(())
    }

    fn after_params(&mut self, cols: u16) {
        if cols > 0 {
            self.state = State::PrepCols(cols);
        } else {
            self.finish = Some(Progress::Done);
        }
    }

    fn on_ok(&mut self, head: &[u8]) {
        if let Some(ok) = generic::parse_ok(head) {
            if ok.last_insert_id != 0 {
                self.summary.insert_id = ok.last_insert_id;
            }
            self.summary.status = Some(ok.status);
            self.summary.warnings = ok.warnings;
            self.summary.ok = Some(ok);
            self.status_at = generic::ok_status_at(head);
        }
    }
}

#[cfg(test)]
mod tests;
