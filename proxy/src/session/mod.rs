//! One client connection: login, then a loop of commands, each answered locally or
//! run where the router's decision says.
//!
//! Split by job: this module is the client side (I/O, dispatch, replies); [`lease`]
//! holds the backend state (held connection, pins, transaction, replayed settings,
//! topology snapshot); [`fanout`] starts a statement's parts on several connections
//! at once.

mod access;
mod admin;
mod admin_verbs;
mod binary;
mod catalog;
mod catalog_view;
mod causal;
mod change_user;
mod charset;
mod checkout;
mod commit;
mod cursor;
mod cursor_answer;
mod cut_answer;
mod ddl;
mod execute;
mod explain;
mod fanout;
mod firewall;
mod foreign;
mod gather;
mod gathered_cursor;
mod global;
mod grants;
mod insert_columns;
mod kill;
mod lease;
mod load_split;
mod local;
mod login;
mod merged;
mod multi_write;
mod nodes;
mod planning;
mod prepared;
mod routed;
mod routed_prepare;
mod settings;
mod sharded;
mod show;
mod statistics;
mod table_rights;
mod text_execution;
mod transaction;
mod xa_show;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use mysql_common::constants::CapabilityFlags;
use rules::NodeId;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::backend::{Flavor, PooledConn, Role};
use crate::config::UserConfig;
use crate::shared::Shared;
use crate::wire::command::*;
use crate::wire::generic::{eof_payload, err_payload, ok_payload};
use crate::wire::packet::write_packet;
use crate::wire::{PacketReader, SqlError, WireError};

/// A backend connection the session keeps between statements.
struct Held {
    node: NodeId,
    role: Role,
    conn: PooledConn,
}

/// How a command handler ends when it does not go on normally. An SQL error here
/// is the command's whole answer: [`Session::run_command`] sends it, the one place
/// that turns a handler's error into an ERR packet. A handler that has already sent
/// part of an answer ends it itself (an ERR in place of the end of the rows).
enum CommandError {
    Sql(SqlError),
    /// Writing to the client failed: the session ends.
    Client(std::io::Error),
}

impl From<SqlError> for CommandError {
    fn from(e: SqlError) -> Self {
        CommandError::Sql(e)
    }
}

impl From<std::io::Error> for CommandError {
    fn from(e: std::io::Error) -> Self {
        CommandError::Client(e)
    }
}

type Reply = Result<Flow, CommandError>;

/// What to do after a command.
enum Flow {
    Continue,
    /// Close the client connection (COM_QUIT, or the stream can no longer be trusted).
    Close,
}

/// Which listener a session came from: what its commands may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// Applications: SQL on the data nodes.
    Data,
    /// DBAs: admin statements only (see [`crate::admin_plane`]), never data.
    Admin,
}

pub struct Session {
    port: Port,
    /// What ties the session to backend connections: see [`lease::Lease`].
    lease: lease::Lease,
    /// Command latency, registered once: recording costs an atomic add, not a
    /// lookup by name per command.
    latency: metrics::Histogram,
    shared: Arc<Shared>,
    stream: crate::tls::ClientStream,
    reader: PacketReader,
    out: BytesMut,
    id: u32,
    peer: SocketAddr,
    user: Option<UserConfig>,
    capabilities: CapabilityFlags,
    flavor: Flavor,
    /// The database the client selected, as the client named it.
    db: Option<String>,
    /// This logged-in client's place among `server.max_connections`.
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Its place among its user's `max_user_connections`.
    user_slot: Option<crate::user_slots::UserSlot>,
    /// The character set the client's statements and string parameters are in.
    charset: charset::ClientCharset,
    /// How the session's sql_mode reads strings and double quotes (NO_BACKSLASH_ESCAPES,
    /// ANSI_QUOTES): the access checks and the planner read statements this way.
    reading: router::reading::Reading,
    /// The statement running is DDL, which commits the session's transaction.
    ddl_commits: bool,
    /// The statement running ends a transaction (COMMIT, ROLLBACK): with autocommit
    /// off it must not open one first.
    ends_transaction: bool,
    /// What `LAST_INSERT_ID()` answers: the insert id of the last statement that
    /// generated one, as the client was told in its OK packet.
    last_insert_id: u64,
    /// The statement being run reads `last_insert_id`: the connection that runs it
    /// must hold the session's value first.
    wants_insert_id: bool,
    /// Prepared statements on configured tables, which shardgate routes itself.
    routed: routed::RoutedStatements,
    /// What KILL from other sessions acts on.
    control: Arc<crate::control::SessionControl>,
    /// The layout generation the session's user was last read from.
    accounts_seen: u64,
    /// The GTIDs of this session's writes, by node: what its reads must see.
    own_writes: causal::OwnWrites,
    /// On the admin port: who logged in.
    admin_user: Option<String>,
    /// What the command running did, for the statement statistics.
    outcome: statistics::Outcome,
    /// The digest of the last statement, reused for the next.
    digest_buf: Vec<u8>,
}

/// Sleeps until `at`, or forever when there is no limit.
async fn sleep_until_or_never(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Session {
    pub fn new(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr, port: Port) -> Session {
        let id = shared.next_connection_id();
        let topo = shared.topology.load();
        let accounts_seen = topo.generation;
        Session {
            port,
            admin_user: None,
            outcome: statistics::Outcome::default(),
            digest_buf: Vec::new(),
            latency: metrics::histogram!(crate::http::metrics::COMMAND_SECONDS),
            accounts_seen,
            own_writes: causal::OwnWrites::default(),
            lease: lease::Lease::new(topo),
            shared,
            stream: crate::tls::ClientStream::Plain(stream),
            reader: PacketReader::default(),
            out: BytesMut::with_capacity(4096),
            id,
            peer,
            user: None,
            capabilities: CapabilityFlags::empty(),
            flavor: Flavor::default(),
            db: None,
            slot: None,
            user_slot: None,
            last_insert_id: 0,
            charset: charset::ClientCharset::Utf8,
            reading: router::reading::Reading::DEFAULT,
            ddl_commits: false,
            ends_transaction: false,
            wants_insert_id: false,
            routed: routed::RoutedStatements::default(),
            control: Arc::new(crate::control::SessionControl::new(
                String::new(),
                peer.to_string(),
            )),
        }
    }

    /// Logs the client in within `server.connect_timeout` (holding `handshake`, a
    /// place among connections still logging in), then serves it holding a place
    /// among the `max_connections` logged-in clients.
    pub async fn run(mut self, handshake: tokio::sync::OwnedSemaphorePermit) {
        let limit = self.shared.settings.connect_timeout;
        let logged_in = tokio::time::timeout(limit, self.login()).await;
        drop(handshake);
        match logged_in {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return,
            Ok(Err(e)) => {
                tracing::debug!(conn = self.id, peer = %self.peer, error = %e, "login failed");
                return;
            }
            Err(_) => {
                tracing::info!(conn = self.id, peer = %self.peer, "no login within connect_timeout; closing");
                metrics::counter!("shardgate_login_timeouts_total").increment(1);
                return;
            }
        }
        let user = self
            .user
            .as_ref()
            .map(|u| u.name.clone())
            .unwrap_or_default();
        self.control = Arc::new(crate::control::SessionControl::new(
            user,
            self.peer.to_string(),
        ));
        // Admin sessions are not among the sessions clients see and KILL.
        let listed = self.port == Port::Data;
        if listed {
            self.shared.sessions.insert(self.id, self.control.clone());
        }
        self.serve().await;
        if listed {
            self.shared.sessions.remove(self.id);
        }
        self.release_held().await;
    }

    async fn serve(&mut self) {
        let mut stop = self.shared.shutdown_signalled();
        let mut layout = self.shared.topology.watch();
        let mut idle_since = tokio::time::Instant::now();
        loop {
            // Fetched each time: COM_CHANGE_USER gives the session a new one.
            let control = self.control.clone();
            if *stop.borrow() || control.is_killed() {
                break;
            }
            let max = self.shared.settings.max_allowed_packet;
            // Between commands, shutdown closes the session; a command already read
            // runs to its end first.
            let idle = self.shared.settings.client_idle_timeout;
            // Biased: a KILL that came first wins over a command arriving after it.
            let read = tokio::select! {
                biased;
                _ = control.killed() => {
                    tracing::info!(conn = self.id, "connection killed");
                    break;
                }
                _ = stop.changed() => break,
                // Idle, the session moves to a new layout at once, so the old one
                // (pools of removed nodes, its plans) is not kept alive by it.
                Ok(()) = layout.changed() => {
                    if !self.follow_layout() {
                        tracing::info!(conn = self.id, "user removed from the configuration; closing");
                        break;
                    }
                    continue;
                }
                r = self.reader.read(&mut self.stream, max) => r,
                // From the end of the last command: waking for a layout change does
                // not make a session less idle.
                _ = sleep_until_or_never(idle.map(|d| idle_since + d)) => {
                    tracing::info!(conn = self.id, peer = %self.peer, "closing idle client connection");
                    break;
                }
            };
            let packet = match read {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(WireError::TooLarge { .. }) => {
                    let _ = self.send_err(1, &SqlError::packet_too_large(max)).await;
                    self.linger().await;
                    break;
                }
                Err(e) => {
                    tracing::debug!(conn = self.id, error = %e, "client read failed");
                    break;
                }
            };
            let seq = packet.seq.wrapping_add(1);
            let flow = match self.shared.settings.statement_timeout {
                None => self.run_command(&packet.payload, seq).await,
                Some(limit) => {
                    // Past the limit, the statement's backend query is killed: the
                    // client gets the server's "interrupted" error.
                    let control = control.clone();
                    let timer = tokio::spawn(async move {
                        tokio::time::sleep(limit).await;
                        let running = control.running();
                        if !running.is_empty() {
                            metrics::counter!("shardgate_statement_timeouts_total").increment(1);
                        }
                        // Each part on its own task: the first kill ends the statement,
                        // and with it this timer, before the others would be sent.
                        for r in running {
                            tokio::spawn(async move { r.kill_query().await });
                        }
                    });
                    let flow = self.run_command(&packet.payload, seq).await;
                    timer.abort();
                    flow
                }
            };
            idle_since = tokio::time::Instant::now();
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Close) => break,
                Err(e) => {
                    tracing::debug!(conn = self.id, error = %e, "client write failed");
                    break;
                }
            }
        }
        self.release_held().await;
    }

    /// One command, shown in SHOW PROCESSLIST while it runs.
    async fn run_command(&mut self, payload: &bytes::Bytes, seq: u8) -> std::io::Result<Flow> {
        let started = std::time::Instant::now();
        let cmd = payload.first().copied().unwrap_or(0);
        let info = (cmd == COM_QUERY).then(|| payload.slice(1..));
        self.control
            .set_activity(command_name(cmd), self.db.as_deref(), info);
        self.outcome = statistics::Outcome::default();
        let flow = match self.dispatch(payload, seq).await {
            Ok(flow) => Ok(flow),
            Err(CommandError::Sql(e)) => self.send_err(seq, &e).await.map(|()| Flow::Continue),
            Err(CommandError::Client(e)) => Err(e),
        };
        self.ddl_commits = false;
        self.ends_transaction = false;
        if std::mem::take(&mut self.lease.rolled_back) {
            // The client has the deadlock error; the server rolled back its branch
            // there, and the others follow, so that no part of it can commit.
            let _ = self.end_transaction(false).await;
        }
        let held = self.lease.held.as_ref().map(|h| self.running_on(h));
        self.control.keep_only(held);
        self.control.set_activity("Sleep", self.db.as_deref(), None);
        let elapsed = started.elapsed();
        self.latency.record(elapsed.as_secs_f64());
        if cmd == COM_QUERY && self.port == Port::Data {
            self.note_statement(&payload[1..], elapsed);
        }
        flow
    }

    async fn dispatch(&mut self, payload: &[u8], seq: u8) -> Reply {
        let Some(&cmd) = payload.first() else {
            return Err(SqlError::unknown_command(0).into());
        };
        if !self.follow_layout() {
            let e = SqlError::connection_killed(
                "Connection was killed: its user was removed from shardgate's configuration",
            );
            self.send_err(seq, &e).await?;
            return Ok(Flow::Close);
        }
        // Set by the commands that read LAST_INSERT_ID().
        self.wants_insert_id = false;
        self.notice_dropped_connection();
        if self.lease.lost_txn && cmd == COM_STMT_EXECUTE {
            return Err(transaction::transaction_lost(false).into());
        }
        if matches!(cmd, COM_FIELD_LIST | COM_STATISTICS | COM_STMT_PREPARE) {
            // Metadata, not data: a transaction begun but not yet opened is opened
            // by its first statement on data, not on this command's node.
            let pending = self.lease.set_pending_aside();
            let flow = self.command(cmd, payload, seq).await;
            self.lease.restore_pending(pending);
            return flow;
        }
        self.command(cmd, payload, seq).await
    }

    async fn command(&mut self, cmd: u8, payload: &[u8], seq: u8) -> Reply {
        if self.port == Port::Admin {
            return self.admin_command(cmd, payload, seq).await;
        }
        let body = &payload[1..];
        match cmd {
            COM_QUIT => Ok(Flow::Close),
            COM_PING => {
                self.send_ok(seq).await?;
                Ok(Flow::Continue)
            }
            COM_QUERY => self.query(payload, seq).await,
            COM_CHANGE_USER => self.change_user(payload, seq).await,
            COM_PROCESS_KILL => {
                let id = body
                    .get(..4)
                    .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                self.kill(false, u64::from(id), seq).await
            }
            COM_INIT_DB => {
                let db = String::from_utf8_lossy(body).into_owned();
                match self.select_database(&db).await {
                    Ok(()) => self.send_ok(seq).await?,
                    Err(e) => return Err(e.into()),
                }
                Ok(Flow::Continue)
            }
            COM_FIELD_LIST => {
                // A shard's physical table is not a table clients may name.
                let table = body.split(|&b| b == 0).next().unwrap_or(body);
                let rt = self.lease.topo.runtime.clone();
                let shard = self
                    .db
                    .as_deref()
                    .and_then(|d| rt.schemas.get(d))
                    .filter(|s| {
                        s.shard_tables
                            .contains(&String::from_utf8_lossy(table).to_lowercase())
                    })
                    .map(|s| s.name.clone());
                drop(rt);
                if let Some(schema) = shard {
                    let e = SqlError::no_such_table(format!(
                            "Table '{schema}.{}' doesn't exist (it is a shard of a sharded table; use the logical table)",
                            String::from_utf8_lossy(table)
                        ),
                    );
                    return Err(e.into());
                }
                self.forward_to_primary(payload, seq, crate::wire::response::Mode::FieldList)
                    .await
            }
            COM_STATISTICS => {
                self.forward_to_primary(payload, seq, crate::wire::response::Mode::Single)
                    .await
            }
            COM_RESET_CONNECTION => {
                self.reset_session().await;
                self.send_ok(seq).await?;
                Ok(Flow::Continue)
            }
            COM_SET_OPTION => self.set_option(payload, seq).await,
            COM_STMT_PREPARE
            | COM_STMT_EXECUTE
            | COM_STMT_FETCH
            | COM_STMT_RESET
            | COM_STMT_CLOSE
            | COM_STMT_SEND_LONG_DATA => self.prepared(cmd, payload, seq).await,
            other => Err(SqlError::unknown_command(other).into()),
        }
    }

    /// Moves the session to the layout in effect unless a transaction or pin holds it
    /// on its own; false when the session's user is gone from the new layout.
    fn follow_layout(&mut self) -> bool {
        // Every command comes here: one look at the generation when nothing changed.
        let generation = self.shared.topology.generation();
        if generation == self.lease.topo.generation && generation == self.accounts_seen {
            return true;
        }
        // A connection kept only for SHOW WARNINGS does not hold the session on an old
        // layout. It is closed, not given back: giving it back would reset it on the
        // backend, and an idle session must not wait on a node (perhaps the very one
        // the new layout removed).
        if generation != self.lease.topo.generation && !self.lease.must_keep() {
            if let Some(h) = self.lease.held.take() {
                self.control.clear_if(self.running_on(&h));
                drop(h);
            }
        }
        self.lease.follow(&self.shared.topology);
        self.account_still_exists(generation)
    }

    /// After a layout change, the session's user as the layout in effect defines it
    /// (its rights may have changed), whether or not a transaction or pin keeps the
    /// session's node ids on an older snapshot: rights know no node ids. False when
    /// the user is gone.
    fn account_still_exists(&mut self, generation: u64) -> bool {
        if generation == self.accounts_seen {
            return true;
        }
        self.accounts_seen = generation;
        let Some(name) = self.user.as_ref().map(|u| u.name.clone()) else {
            return true;
        };
        match self.shared.topology.load().user(&name) {
            Some(u) => {
                self.user = Some(u.clone());
                true
            }
            None => false,
        }
    }

    /// Closes our side, then discards what the client is still sending for a moment:
    /// closing a socket with unread input sends a reset, which can destroy the error
    /// packet before the client reads it.
    async fn linger(&mut self) {
        use tokio::io::AsyncReadExt;
        let _ = self.stream.shutdown().await;
        let mut sink = vec![0u8; 64 * 1024];
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, self.stream.read(&mut sink)).await {
            if n == 0 {
                break;
            }
        }
    }

    fn deprecate_eof(&self) -> bool {
        self.capabilities
            .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        self.stream.write_all(&self.out).await?;
        self.out.clear();
        Ok(())
    }

    async fn send_ok(&mut self, mut seq: u8) -> std::io::Result<()> {
        let p = ok_payload(0, 0, self.lease.status(), 0);
        write_packet(&mut self.out, &mut seq, &p);
        self.flush().await
    }

    async fn send_eof(&mut self, mut seq: u8) -> std::io::Result<()> {
        let p = eof_payload(self.deprecate_eof(), self.lease.status(), 0);
        write_packet(&mut self.out, &mut seq, &p);
        self.flush().await
    }

    /// Answers with a result set shardgate built itself.
    async fn send_result_set(
        &mut self,
        mut seq: u8,
        table: &str,
        columns: &[crate::wire::resultset::LocalColumn],
        rows: &[Vec<Option<String>>],
    ) -> Reply {
        let (deprecate, status) = (self.deprecate_eof(), self.lease.status());
        crate::wire::resultset::write_result_set(
            &mut self.out,
            &mut seq,
            deprecate,
            status,
            table,
            columns,
            rows,
        );
        self.flush().await?;
        Ok(Flow::Continue)
    }

    async fn send_err(&mut self, mut seq: u8, e: &SqlError) -> std::io::Result<()> {
        self.outcome.failed = true;
        metrics::counter!("shardgate_errors_total", "code" => e.code.to_string()).increment(1);
        write_packet(&mut self.out, &mut seq, &err_payload(e));
        self.flush().await
    }

    /// A setting the current schema may make, else the user, else the layout's
    /// default (causal reads, the transaction mode).
    fn layered<T: Copy>(
        &self,
        schema: impl Fn(&rules::runtime::LogicalSchema) -> Option<T>,
        user: impl Fn(&crate::config::UserConfig) -> Option<T>,
        default: impl Fn(&rules::Runtime) -> T,
    ) -> T {
        let rt = &self.lease.topo.runtime;
        self.db
            .as_deref()
            .and_then(|d| rt.schemas.get(d))
            .and_then(schema)
            .or_else(|| self.user.as_ref().and_then(user))
            .unwrap_or_else(|| default(rt))
    }

    /// Gives the held connection back to its pool (reset there if it carries state).
    async fn release_held(&mut self) {
        if self.lease.global.is_some() {
            // A transaction the client abandoned is rolled back on every node.
            let _ = self.end_transaction(false).await;
        }
        for h in std::mem::take(&mut self.lease.branches) {
            self.give_back(h).await;
        }
        if let Some(h) = self.lease.held.take() {
            self.give_back(h).await;
        }
    }

    /// COM_RESET_CONNECTION: forget every piece of session state but the database.
    async fn reset_session(&mut self) {
        // The pool resets the connection: it carries this session's state.
        if let Some(h) = &mut self.lease.held {
            h.conn.dirty = true;
        }
        self.release_held().await;
        self.lease.reset();
        self.control.set_pins(Vec::new());
        self.last_insert_id = 0;
        self.charset = charset::ClientCharset::from_collation(self.flavor.collation);
        self.reading = router::reading::Reading::DEFAULT;
        self.routed.clear();
    }
}
