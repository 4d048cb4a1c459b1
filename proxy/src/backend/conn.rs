//! One logged-in backend connection and the raw forwarding of its responses.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use mysql_common::constants::StatusFlags;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::wire::command::{COM_INIT_DB, COM_PING, COM_RESET_CONNECTION};
use crate::wire::generic::{self, OkInfo};
use crate::wire::packet::write_packet;
use crate::wire::response::{Mode, Progress, Reached, ResponseTracker, Summary};
use crate::wire::{PacketReader, WireError};

mod prepared;
mod scan;
pub use scan::ScanColumn;

use super::gtid::Written;
use super::timed::{self, TimedStream};
use super::{connect, BackendServer, Flavor};
pub use prepared::{BackendStmt, PrepareAnswer};

/// Largest response packet accepted when packets are read whole (1 GiB, MySQL's limit).
const MAX_RESPONSE_PACKET: usize = 1 << 30;

/// Forwarding failed. Which side failed decides what the session can still do.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The backend broke or misbehaved. `reached` tells how much of its response the
    /// client already has (anything: the statement cannot be retried).
    #[error("backend: {err}")]
    Backend { err: WireError, reached: Reached },
    /// Writing to the client failed: the client is gone.
    #[error("client: {0}")]
    Client(std::io::Error),
}

#[derive(Debug)]
pub struct BackendConn {
    stream: TimedStream,
    reader: PacketReader,
    out: BytesMut,
    pub flavor: Flavor,
    /// Backend thread id, as `KILL` needs it.
    pub connection_id: u32,
    pub server_version: String,
    /// The current database on the server side of this connection.
    pub database: Option<String>,
    /// Carries state a session set (variables, locks...): reset before another session uses it.
    pub dirty: bool,
    /// A command was sent and its response not yet read to its end. A connection in
    /// this state is never pooled: what the server still sends, and what the command
    /// left behind, are unknown.
    awaiting: bool,
    /// Status flags of the last OK or EOF the server sent: whether a transaction is
    /// open and whether autocommit is on, in the server's own words.
    status: StatusFlags,
    /// Autocommit as the server starts (and resets) a session: the clean state.
    default_autocommit: bool,
    /// What `LAST_INSERT_ID()` answers on this connection now.
    pub insert_id: u64,
    /// A statement here left errors or warnings, which `SHOW WARNINGS` would show:
    /// not every later statement clears them (ROLLBACK, SET do not), so the
    /// connection is reset before another session gets it.
    diagnostics: bool,
    /// See [`BackendConn::take_rolled_back`].
    rolled_back: bool,
    /// See [`BackendConn::discard`].
    discarded: bool,
    pub last_used: Instant,
    /// Current database → physical SQL → statement prepared on this connection. The
    /// database is part of the key: unqualified names were resolved in it.
    statements: HashMap<Option<String>, HashMap<String, BackendStmt>>,
    statement_count: usize,
    /// Whose replayed session settings this connection carries: (session, generation).
    pub session_state: Option<(u32, u64)>,
    /// The session on this (replica) connection refuses writes: set by shardgate, lost
    /// on reset.
    pub refuses_writes: bool,
    /// CLIENT_SESSION_TRACK was agreed at login: OKs may carry session state, and are
    /// rewritten before a client sees them (see `tracking.rs`).
    pub(super) session_track: bool,
    /// The server reports each commit's GTID in its OK.
    pub(super) tracks_gtid: bool,
    /// Where the GTIDs of this connection's writes go: the record of the session (or
    /// user) it is lent to. Cleared when it goes back to the pool.
    pub written: Option<Arc<Written>>,
}

impl BackendConn {
    pub async fn connect(
        target: &BackendServer,
        flavor: Flavor,
        database: Option<&str>,
        timeout: Duration,
    ) -> Result<BackendConn, WireError> {
        let fut = async {
            let stream = TcpStream::connect(&target.address).await?;
            stream.set_nodelay(true)?;
            timed::tune(&stream, target.read_timeout)?;
            let mut stream = TimedStream::new(stream, target.read_timeout);
            let mut reader = PacketReader::default();
            let greeting =
                connect::login(&mut stream, &mut reader, target, flavor, database).await?;
            let session_track = connect::tracks_session(target, &greeting);
            Ok::<_, WireError>(BackendConn {
                stream,
                reader,
                out: BytesMut::with_capacity(1024),
                flavor,
                connection_id: greeting.connection_id,
                server_version: greeting.version,
                database: database.map(str::to_string),
                dirty: false,
                awaiting: false,
                status: greeting.status & StatusFlags::SERVER_STATUS_AUTOCOMMIT,
                default_autocommit: greeting
                    .status
                    .contains(StatusFlags::SERVER_STATUS_AUTOCOMMIT),
                insert_id: 0,
                diagnostics: false,
                rolled_back: false,
                discarded: false,
                last_used: Instant::now(),
                statements: HashMap::new(),
                statement_count: 0,
                session_state: None,
                refuses_writes: false,
                session_track,
                tracks_gtid: false,
                written: None,
            })
        };
        let fut = async {
            let mut conn = fut.await?;
            conn.start_tracking().await?;
            Ok(conn)
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(WireError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} ms", timeout.as_millis()),
            ))),
        }
    }

    /// True when the server closed the connection or sent something unasked while
    /// it sat idle, so it must not be used. Costs one non-blocking read.
    pub fn is_broken(&self) -> bool {
        if !self.reader.buf.is_empty() {
            return true;
        }
        let mut probe = [0u8; 1];
        let Some(tcp) = self.stream.tcp() else {
            return true;
        };
        // Under TLS, bytes read here are a record's: the connection is dropped anyway.
        match tcp.try_read(&mut probe) {
            Ok(_) => true,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        }
    }

    /// Sends one command packet (sequence 0), split as the protocol requires. Until
    /// its response is read to the end (see [`settle`](Self::settle)) the connection
    /// cannot go back to a pool.
    pub async fn send_command(&mut self, payload: &[u8]) -> Result<(), WireError> {
        self.awaiting = true;
        self.stream.restart_clock();
        self.send_unanswered(payload).await
    }

    /// Sends a command the server does not answer (COM_STMT_CLOSE, SEND_LONG_DATA).
    pub async fn send_unanswered(&mut self, payload: &[u8]) -> Result<(), WireError> {
        self.out.clear();
        let mut seq = 0;
        write_packet(&mut self.out, &mut seq, payload);
        self.stream.write_all(&self.out).await?;
        // TLS may hold the end of it until flushed (a no-op on plain TCP).
        self.stream.flush().await?;
        self.last_used = Instant::now();
        Ok(())
    }

    /// Sends `sql` as COM_QUERY, after making `database` current when one is given.
    pub async fn send_query(
        &mut self,
        database: Option<&str>,
        sql: &[u8],
    ) -> Result<(), WireError> {
        if let Some(db) = database {
            self.use_database(db).await?;
        }
        let mut payload = Vec::with_capacity(1 + sql.len());
        payload.push(crate::wire::command::COM_QUERY);
        payload.extend_from_slice(sql);
        self.send_command(&payload).await
    }

    /// The response to the last command has been read to its end. `status` is the
    /// status flags of its last OK or EOF, when it had one (an ERR changes neither the
    /// transaction nor autocommit, so the flags known before stay true).
    pub fn settle(&mut self, status: Option<StatusFlags>) {
        self.awaiting = false;
        if let Some(s) = status {
            self.status = s.difference(StatusFlags::SERVER_MORE_RESULTS_EXISTS);
        }
    }

    /// The response carried `warnings` warnings (or notes).
    pub fn note_warnings(&mut self, warnings: u16) {
        if warnings > 0 {
            self.diagnostics = true;
        }
    }

    /// A statement generated `id` (0: none, and the server keeps its old value).
    pub fn note_insert_id(&mut self, id: u64) {
        if id != 0 {
            self.insert_id = id;
        }
    }

    /// What must happen before another session may use this connection: nothing
    /// (`Some(false)`), a reset (`Some(true)`), or closing it (`None`: its state is
    /// unknown). This is the one place that decides whether a connection is clean.
    pub fn reuse(&self) -> Option<bool> {
        if self.awaiting || self.discarded || !self.reader.buf.is_empty() {
            return None;
        }
        Some(
            self.dirty
                || self.diagnostics
                || self.in_transaction()
                || self.autocommit() != self.default_autocommit,
        )
    }

    /// The server said a transaction is open on this connection.
    pub fn in_transaction(&self) -> bool {
        self.status.contains(StatusFlags::SERVER_STATUS_IN_TRANS)
    }

    /// The server said autocommit is on for this connection.
    pub fn autocommit(&self) -> bool {
        self.status.contains(StatusFlags::SERVER_STATUS_AUTOCOMMIT)
    }

    /// Sends a packet that continues an exchange (LOCAL INFILE data) with the client's
    /// own sequence id.
    pub async fn send_packet(&mut self, seq: u8, payload: &[u8]) -> Result<(), WireError> {
        self.out.clear();
        let mut seq = seq;
        write_packet(&mut self.out, &mut seq, payload);
        self.stream.write_all(&self.out).await?;
        // TLS may hold the end of it until flushed (a no-op on plain TCP).
        self.stream.flush().await?;
        Ok(())
    }

    /// Streams the response to the last command into `client` as it arrives. Bytes
    /// pass unchanged; at most one read buffer of them is held at a time, and a slow
    /// client slows the backend read (backpressure) instead of growing memory.
    /// `add_status`: flags the client sees in every status besides the backend's.
    pub async fn forward<W: AsyncWrite + Unpin>(
        &mut self,
        client: &mut W,
        mode: Mode,
        add_status: StatusFlags,
    ) -> Result<Summary, ForwardError> {
        let mut tracker = ResponseTracker::new(mode, self.flavor.deprecate_eof());
        tracker.add_status = add_status;
        tracker.untrack = self.session_track;
        let mut forwarded = false;
        let backend_err = |err, tracker: &ResponseTracker, forwarded| ForwardError::Backend {
            err,
            reached: tracker.reached(forwarded),
        };
        loop {
            let (n, progress) = match tracker.feed(&mut self.reader.buf) {
                Ok(fed) => fed,
                Err(e) => return Err(backend_err(e, &tracker, forwarded)),
            };
            // Kept before the client learns of the commit: a read it (or, in global
            // mode, another session it tells) sends next must find it.
            if !tracker.summary.gtids.is_empty() {
                let gtids = std::mem::take(&mut tracker.summary.gtids);
                self.note_gtids(gtids.iter().map(Vec::as_slice));
            }
            if n > 0 {
                client
                    .write_all(&self.reader.buf[..n])
                    .await
                    .map_err(ForwardError::Client)?;
                self.reader.buf.advance(n);
                forwarded = true;
            }
            match progress {
                Progress::Done => {
                    if !self.reader.buf.is_empty() {
                        return Err(backend_err(
                            WireError::Protocol("backend sent bytes after the end of a response"),
                            &tracker,
                            forwarded,
                        ));
                    }
                    self.settle(tracker.summary.status);
                    self.note_insert_id(tracker.summary.insert_id);
                    if let Some(code) = tracker.summary.error {
                        self.note_error(code);
                    }
                    self.note_warnings(tracker.summary.warnings);
                    return Ok(tracker.summary);
                }
                Progress::LocalInfile => {
                    if !self.reader.buf.is_empty() {
                        return Err(backend_err(
                            WireError::Protocol("backend sent bytes after a LOCAL INFILE request"),
                            &tracker,
                            forwarded,
                        ));
                    }
                    let mut summary = tracker.summary;
                    summary.local_infile = true;
                    return Ok(summary);
                }
                Progress::NeedMore => {
                    if self.reader.buf.capacity() - self.reader.buf.len() < 4096 {
                        self.reader.buf.reserve(64 * 1024);
                    }
                    match self.stream.read_buf(&mut self.reader.buf).await {
                        Ok(0) => {
                            return Err(backend_err(WireError::UnexpectedEof, &tracker, forwarded))
                        }
                        Ok(_) => {}
                        Err(e) => return Err(backend_err(WireError::Io(e), &tracker, forwarded)),
                    }
                }
            }
        }
    }

    /// Runs a command answered by one OK or ERR, for shardgate's own use.
    async fn simple(&mut self, cmd: u8, arg: &[u8]) -> Result<OkInfo, WireError> {
        let mut payload = Vec::with_capacity(1 + arg.len());
        payload.push(cmd);
        payload.extend_from_slice(arg);
        self.send_command(&payload).await?;
        let p = self
            .reader
            .read(&mut self.stream, 1 << 20)
            .await?
            .ok_or(WireError::UnexpectedEof)?;
        self.ok_or_err(&p.payload, "expected OK or ERR")
    }

    /// Reads a response that must be one OK or ERR packet, and settles the connection.
    fn ok_or_err(&mut self, payload: &[u8], otherwise: &'static str) -> Result<OkInfo, WireError> {
        match payload.first() {
            Some(0x00) => {
                let ok = generic::parse_ok(payload).ok_or(WireError::Protocol("malformed OK"))?;
                self.note_ok(payload);
                self.settle(Some(ok.status));
                self.note_insert_id(ok.last_insert_id);
                self.note_warnings(ok.warnings);
                Ok(ok)
            }
            Some(0xFF) => {
                self.settle(None);
                let e = WireError::from_err_packet(payload);
                if let WireError::Server { code, .. } = &e {
                    self.note_error(*code);
                } else {
                    self.diagnostics = true;
                }
                Err(e)
            }
            _ => Err(WireError::Protocol(otherwise)),
        }
    }

    /// Reads one whole logical packet of a response, for callers that must look at or
    /// change each packet (merging several shards' results). Holds one packet at a time.
    /// A packet that opens with 0xFF is an ERR wherever it stands (no row value starts
    /// so): the connection then holds diagnostics.
    pub async fn read_packet(&mut self) -> Result<crate::wire::Packet, WireError> {
        let p = self
            .reader
            .read(&mut self.stream, MAX_RESPONSE_PACKET)
            .await?
            .ok_or(WireError::UnexpectedEof)?;
        if p.payload.first() == Some(&0xFF) {
            let code = p
                .payload
                .get(1..3)
                .map_or(0, |c| u16::from_le_bytes([c[0], c[1]]));
            self.note_error(code);
        }
        Ok(p)
    }

    /// The server answered with error `code`: the connection holds diagnostics, and
    /// a deadlock (1213) means the server rolled back the whole transaction.
    fn note_error(&mut self, code: u16) {
        self.diagnostics = true;
        self.rolled_back |= code == 1213;
    }

    /// The connection must not serve anyone again: it is closed when given back
    /// (a prepared XA branch it holds is then left to recovery).
    pub fn discard(&mut self) {
        self.discarded = true;
    }

    pub fn is_discarded(&self) -> bool {
        self.discarded
    }

    /// The server rolled back this connection's transaction (a deadlock) since the
    /// last call.
    pub fn take_rolled_back(&mut self) -> bool {
        std::mem::take(&mut self.rolled_back)
    }

    /// Runs a statement whose answer must be a single OK or ERR (multi-shard writes,
    /// transaction control), without forwarding anything.
    pub async fn execute_ok(&mut self, sql: &[u8]) -> Result<OkInfo, WireError> {
        self.send_query(None, sql).await?;
        let ok = self.read_ok().await?;
        // A session's SET replayed here may have changed what the server tracks.
        self.keep_tracking_after(sql).await?;
        Ok(ok)
    }

    /// Runs statements whose answers are each a single OK or ERR, sent together and
    /// answered in order (the server reads one command after another): one round
    /// trip for them all. Every answer is read; the first error, else the last OK,
    /// is returned. Only for shardgate's own statements (XA control).
    pub async fn execute_pipelined(&mut self, statements: &[&[u8]]) -> Result<OkInfo, WireError> {
        self.out.clear();
        for sql in statements {
            let mut payload = Vec::with_capacity(1 + sql.len());
            payload.push(crate::wire::command::COM_QUERY);
            payload.extend_from_slice(sql);
            let mut seq = 0;
            write_packet(&mut self.out, &mut seq, &payload);
        }
        self.awaiting = true;
        self.stream.write_all(&self.out).await?;
        // TLS may hold the end of it until flushed (a no-op on plain TCP).
        self.stream.flush().await?;
        self.last_used = Instant::now();
        let (mut first_error, mut last) = (None, None);
        for _ in statements {
            // Commands not answered yet are still in flight.
            self.awaiting = true;
            match self.read_ok().await {
                Ok(ok) => last = Some(ok),
                Err(e @ WireError::Server { .. }) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        match (first_error, last) {
            (Some(e), _) => Err(e),
            (None, Some(ok)) => Ok(ok),
            (None, None) => Err(WireError::Protocol("no statement to run")),
        }
    }

    /// Reads an answer that must be a single OK or ERR.
    pub async fn read_ok(&mut self) -> Result<OkInfo, WireError> {
        let p = self.read_packet().await?;
        self.ok_or_err(&p.payload, "a statement that should write returned rows")
    }

    /// The first value of a query for shardgate's own use (`SELECT @@x`); `None` when
    /// it is NULL or there is no row.
    pub async fn query_value(&mut self, sql: &[u8]) -> Result<Option<Vec<u8>>, WireError> {
        let (_, rows) = self.query_rows(sql).await?;
        Ok(first_value(rows))
    }

    pub async fn ping(&mut self) -> Result<(), WireError> {
        self.simple(COM_PING, &[]).await.map(drop)
    }

    /// Asks the server for its current database, after a statement that may have
    /// changed it without a COM_INIT_DB (a `DROP DATABASE` of the current one leaves
    /// none): the next `use_database` must not trust a name the server dropped.
    pub async fn refresh_database(&mut self) -> Result<(), WireError> {
        let current = self.query_value(b"SELECT DATABASE()").await?;
        self.database = current.map(|v| String::from_utf8_lossy(&v).into_owned());
        Ok(())
    }

    /// Makes `db` the connection's current database (COM_INIT_DB), if it is not already.
    pub async fn use_database(&mut self, db: &str) -> Result<(), WireError> {
        if self.database.as_deref() == Some(db) {
            return Ok(());
        }
        self.simple(COM_INIT_DB, db.as_bytes()).await?;
        self.database = Some(db.to_string());
        Ok(())
    }

    /// Makes the session refuse writes, as a replica connection must: a SELECT that
    /// calls a stored function which writes, or NEXTVAL, would otherwise change the
    /// replica alone (shardgate's account bypasses the replica's read_only).
    pub async fn refuse_writes(&mut self) -> Result<(), WireError> {
        let sql: &[u8] = if self.server_version.contains("MariaDB") {
            b"SET SESSION tx_read_only = 1"
        } else {
            b"SET SESSION transaction_read_only = 1"
        };
        self.execute_ok(sql).await?;
        self.refuses_writes = true;
        Ok(())
    }

    /// Clears all session state on the server (COM_RESET_CONNECTION): variables,
    /// temporary tables, locks, prepared statements, open transaction.
    pub async fn reset(&mut self) -> Result<(), WireError> {
        self.simple(COM_RESET_CONNECTION, &[]).await?;
        self.start_tracking().await?;
        self.statements.clear();
        self.statement_count = 0;
        self.session_state = None;
        self.refuses_writes = false;
        self.dirty = false;
        self.insert_id = 0;
        self.diagnostics = false;
        Ok(())
    }
}

/// The first column of the first row of a small result.
pub fn first_value(rows: Vec<Vec<Option<Vec<u8>>>>) -> Option<Vec<u8>> {
    rows.into_iter().next()?.into_iter().next()?
}
