//! Running a statement on a backend: choose the connection (held, replica, primary),
//! bring its database in line, send, stream the answer back, then decide whether the
//! session keeps the connection.

use router::decide::{Action, Decision};
use router::{PinReason, Statement, StatementKind, TxnOp};
use rules::NodeId;

use super::{Flow, Held, Reply, Session};
use crate::backend::ForwardError;
use crate::wire::response::{Mode, Reached, Summary};
use crate::wire::{SqlError, WireError};

/// Where and how one command runs.
pub(super) struct Route {
    pub node: NodeId,
    pub database: Option<String>,
    pub read_only: bool,
    pub needs_previous: bool,
    pub pin: Option<PinReason>,
    /// A `DROP DATABASE`: the server may leave the connection with no current
    /// database, which shardgate then asks for.
    pub drops_database: bool,
}

/// Tries per statement when a connection turns out broken before the statement ran.
const ATTEMPTS: usize = 3;

impl Session {
    pub(super) async fn query(&mut self, payload: &[u8], seq: u8) -> Reply {
        // Executable comments resolved as the backend reads them, before anything
        // else reads the statement.
        let resolved = self.resolve_comments(payload);
        let payload = resolved.as_deref().unwrap_or(payload);
        let ctx = router::decide::Context {
            reading: self.reading,
            logical_databases: self.lease.topo.runtime.passthrough.is_none(),
            own_accounts: self.shared.settings.enforce_privileges,
        };
        let (stmt, action) = match router::decide::decide(&payload[1..], &ctx) {
            Ok(Decision::Statement { statement, action }) => (statement, action),
            Ok(Decision::ExplainSharding { at }) => {
                return self.explain_sharding(&payload[1 + at..], seq).await;
            }
            Err(e) => {
                return Err(SqlError::syntax(e.to_string()).into());
            }
        };
        // What the transaction counts as written on the statement's nodes.
        self.lease.writes_now = !stmt.read_only;
        self.lease.snapshot = None;
        // A lone CURRENT_USER() is answered below, with its own column name.
        let users = !matches!(action, Action::Answer { .. });
        let rewritten = self.with_session_values(payload, users);
        let payload = rewritten.as_deref().unwrap_or(payload);
        let sql = &payload[1..];
        // Checked against the user's rights, and information_schema reads narrowed to
        // its databases, whatever path the statement takes from here.
        let admitted = {
            let rt = self.lease.topo.runtime.clone();
            self.check_access(sql, &rt, false)
                .and_then(|()| self.confine_catalog(payload, &rt))
        };
        let confined = admitted?;
        let client_xa = stmt.kind == StatementKind::Transaction
            && self.lease.topo.nodes().len() > 1
            && self
                .reading
                .first_word(&payload[1..])
                .is_some_and(|w| w.eq_ignore_ascii_case(b"xa"));
        let chaining = stmt.kind == StatementKind::Set
            && self.lease.topo.nodes().len() > 1
            && router::classify::sets_completion_type(&payload[1..]);
        if chaining {
            return Err(SqlError::unsupported(
                "not supported by shardgate yet: completion_type other than NO_CHAIN; \
                 use COMMIT AND CHAIN or COMMIT RELEASE",
            )
            .into());
        }
        let ending = matches!(stmt.transaction, Some(TxnOp::Commit | TxnOp::Rollback));
        if ending && stmt.hints.node.is_none() && router::classify::releases(&payload[1..]) {
            // The session ends after it, whoever ends the transaction: shardgate runs
            // the plain COMMIT or ROLLBACK (on every branch), then closes.
            let plain: &[u8] = if stmt.transaction == Some(TxnOp::Commit) {
                b"\x03COMMIT"
            } else {
                b"\x03ROLLBACK"
            };
            Box::pin(self.query(plain, seq)).await?;
            return Ok(Flow::Close);
        }
        if client_xa {
            return Err(SqlError::unsupported(
                "not supported by shardgate: XA statements from clients; shardgate runs transactions over \
                 several nodes as XA transactions itself: use BEGIN and COMMIT",
            )
            .into());
        }
        let payload = confined.as_deref().unwrap_or(payload);
        let sql = &payload[1..];
        match action {
            Action::Unsupported(why) => {
                return Err(SqlError::unsupported(why).into());
            }
            Action::Use(db) => {
                match self.select_database(&db).await {
                    Ok(()) => self.send_ok(seq).await?,
                    Err(e) => return Err(e.into()),
                }
                return Ok(Flow::Continue);
            }
            Action::ShowDatabases { like } => {
                return self.show_logical_databases(like.as_deref(), seq).await;
            }
            Action::Kill { query_only, id } => {
                let id = id.unwrap_or(u64::from(self.id));
                return self.kill(query_only, id, seq).await;
            }
            Action::ShowSessions => return self.show_sessions(seq).await,
            Action::ShowNodes => return self.show_nodes(seq).await,
            Action::ShowXa => return self.show_xa(seq).await,
            Action::ShowProcesslist { full } => return self.show_processlist(full, seq).await,
            Action::ShowGrants { own } => return self.show_grants(own, seq).await,
            Action::Answer { .. } | Action::Run => {}
        }
        if self.lease.lost_txn {
            return self.after_lost_transaction(stmt.transaction, seq).await;
        }
        if let Action::Answer { function, column } = action {
            return self.answer(function, &column, seq).await;
        }
        if let (Some(on), None) = (stmt.autocommit, &stmt.hints.node) {
            if let Some(flow) = self.set_autocommit(on, seq).await? {
                return Ok(flow);
            }
        }
        // DDL ends the transaction: one begun but not opened anywhere has nothing to
        // commit; an open one is committed where the DDL needs it (`commit_before_ddl`).
        self.ddl_commits = stmt.commits_first;
        self.ends_transaction = ending;
        if stmt.commits_first && stmt.hints.node.is_none() {
            self.check_ddl_parses(sql).await?;
        }
        if stmt.commits_first && !self.lease.pending_txn.is_empty() {
            self.lease.pending_txn.clear();
            self.lease.savepoints.clear();
        }
        self.wants_insert_id =
            stmt.reads_insert_id && !self.lease.pins.contains(&PinReason::LastInsertId);
        if stmt.replayable && stmt.hints.node.is_none() {
            return self.set_session_state(sql, seq, false).await;
        }
        if stmt.next_transaction && stmt.hints.node.is_none() && !self.lease.in_transaction {
            if !self.lease.pending_txn.is_empty() {
                return Err(super::transaction::transaction_characteristics().into());
            }
            return self.set_session_state(sql, seq, true).await;
        }
        if !self.lease.pending_txn.is_empty()
            || !self.lease.must_keep()
            || self.lease.global.is_some()
        {
            if let Some(flow) = self.deferred_transaction(&stmt, sql, seq).await? {
                return Ok(flow);
            }
        }
        if !self.lease.pending_txn.is_empty() && !stmt.names_tables && stmt.transaction.is_none() {
            // Touches no data (`SELECT NOW()`, `SELECT 1`): it runs without choosing the
            // transaction's node, which its first statement on data will choose.
            let pending = self.lease.set_pending_aside();
            let flow = self.route_and_execute(&stmt, payload, seq, true).await;
            self.lease.restore_pending(pending);
            return flow;
        }
        // Catalog questions: cheap byte checks first, the runtime only when they match.
        // One statement only: the catalog path runs its text on one node as it stands,
        // which for the other statements of a batch could be the wrong node.
        if stmt.hints.node.is_none() && stmt.kind == StatementKind::Select && !stmt.batch {
            let mentions_catalog = router::catalog::contains_word(sql, b"information", b"schema");
            if mentions_catalog {
                // Read as the text it means; sent back in the client's bytes.
                let text = self.charset.decode(sql)?;
                let rt = self.lease.topo.runtime.clone();
                let mut q = router::catalog::information_schema(&text, &rt, self.db.as_deref());
                if q.is_none() && self.shared.settings.enforce_privileges && self.db.is_none() {
                    // No schema selected or named: asked on the node of a schema the
                    // user may use, so that the answer is filtered like any other.
                    let first = self
                        .user
                        .as_ref()
                        .and_then(|u| rt.schemas.keys().find(|s| u.may_use(s, true)).cloned());
                    q = first
                        .and_then(|s| router::catalog::information_schema(&text, &rt, Some(&s)));
                }
                drop(rt);
                if let Some(q) = q {
                    let pending = self.lease.set_pending_aside();
                    let flow = self.run_catalog(q, seq).await;
                    self.lease.restore_pending(pending);
                    return flow;
                }
            }
        }
        if stmt.hints.node.is_none() {
            let rt = self.lease.topo.runtime.clone();
            // A table named with another logical schema's qualifier (`shop.orders` from
            // `crm`, or with no database selected) goes by that schema.
            match self.foreign_schema(sql, &rt) {
                Ok(None) => {}
                Ok(Some(other)) => {
                    return self
                        .run_foreign(&stmt, payload, &other, rt.clone(), seq)
                        .await
                }
                Err(e) => {
                    return Err(e.into());
                }
            }
            // Borrow the schema from the snapshot, not the session: no copy per statement.
            let configured = self.configured_schema(&rt);
            if let Some(schema) = configured {
                let db = schema.name.as_str();
                let maybe_show = matches!(stmt.kind, StatementKind::Show | StatementKind::Other);
                if let Some(show) = maybe_show.then(|| router::show::parse(sql)).flatten() {
                    let pending = self.lease.set_pending_aside();
                    let shown = self.show(sql, show, rt.clone(), db, seq).await;
                    self.lease.restore_pending(pending);
                    if let Some(flow) = shown {
                        return flow;
                    }
                }
                // Planned as the text it means in the client's character set.
                let text = self.charset.decode(sql)?;
                let planned = if text.len() >= super::planning::OFF_THREAD {
                    let (sql, name) = (text.to_vec(), db.to_string());
                    super::planning::plan(sql, rt.clone(), name, self.reading)
                        .await
                        .map(std::sync::Arc::new)
                } else {
                    self.lease.topo.plans.plan(&text, schema, &rt, self.reading)
                };
                match planned {
                    Ok(cached) => {
                        if let Some(plan) = cached.as_ref() {
                            return self
                                .run_plan(plan, &text, stmt.read_only, rt.clone(), db, seq)
                                .await;
                        }
                    }
                    Err(router::RouteError::NeedsColumns { table, at }) => {
                        let text = String::from_utf8_lossy(&text).into_owned();
                        return self
                            .insert_with_columns(&text, (&table, at), rt.clone(), db, seq)
                            .await;
                    }
                    Err(e) => {
                        return Err(super::sharded::route_error(&e).into());
                    }
                }
            }
        }
        self.route_and_execute(&stmt, payload, seq, false).await
    }

    /// A session function shardgate answers itself.
    async fn answer(
        &mut self,
        function: router::catalog::SessionFn,
        column: &str,
        seq: u8,
    ) -> Reply {
        use router::catalog::SessionFn;
        match function {
            SessionFn::ConnectionId => self.answer_connection_id(column, seq).await,
            SessionFn::MaxConnections => self.answer_max_connections(column, seq).await,
            SessionFn::CurrentUser => self.answer_current_user(column, seq).await,
            SessionFn::Database => self.answer_database(column, seq).await,
        }
    }

    /// Runs a statement on the session's node (or its transaction's, or the hinted
    /// one). `in_txn`: the session has begun a transaction not opened on any node yet,
    /// so even a read runs on the primary.
    async fn route_and_execute(
        &mut self,
        stmt: &Statement,
        payload: &[u8],
        seq: u8,
        in_txn: bool,
    ) -> Reply {
        let (mut node, mut database) = self.placement(stmt.hints.node.as_deref())?;
        // Statements about the session's own state (transaction control, SET, warnings,
        // LAST_INSERT_ID ...) belong to the connection holding that state.
        let about_session = stmt.transaction.is_some()
            || stmt.kind == StatementKind::Set
            || stmt.needs_previous
            || stmt.pin.is_some()
            || !stmt.names_tables;
        if let Some(h) = &self.lease.held {
            // A statement that commits first (LOCK TABLES) ends the transaction: it
            // belongs where the session's own state is, not where the transaction was.
            let ends_transaction = stmt.commits_first && self.lease.pins.is_empty();
            if self.lease.must_keep()
                && h.node != node
                && about_session
                && !ends_transaction
                && stmt.hints.node.is_none()
            {
                let rt = self.lease.topo.runtime.clone();
                database = match self.db.as_deref().and_then(|d| rt.schemas.get(d)) {
                    Some(s) => Some(s.database_on(&rt.nodes, h.node).to_string()),
                    None => database,
                };
                node = h.node;
            }
        }
        let route = Route {
            node,
            database,
            read_only: stmt.read_only && !self.lease.must_keep() && !in_txn,
            needs_previous: stmt.needs_previous,
            pin: stmt.pin,
            drops_database: drops_database(stmt, payload),
        };
        let flow = self.execute(payload, seq, route, Mode::Query).await;
        // A statement that pins (`SET NAMES x, @a = 1`, a batch with a SET, EXECUTE)
        // may have changed the character set or sql_mode: ask the connection that ran
        // it, which the session keeps.
        if self.lease.held.is_some() && router::classify::may_change_reading(&payload[1..]) {
            if let Some(mut held) = self.lease.held.take() {
                self.refresh_reading(&mut held).await;
                self.lease.held = Some(held);
            }
        }
        // A batch's SET of the session tracking variables (a SET of its own runs
        // with `execute_ok`, which looks after it).
        if let Some(h) = &mut self.lease.held {
            if let Err(e) = h.conn.keep_tracking_after(&payload[1..]).await {
                tracing::debug!(conn = self.id, error = %e, "could not turn GTID reports on again");
            }
        }
        flow
    }

    /// The session's database when it is a logical schema with configured tables
    /// (statements there are planned).
    pub(super) fn configured_schema<'r>(
        &self,
        rt: &'r rules::Runtime,
    ) -> Option<&'r rules::runtime::LogicalSchema> {
        self.db
            .as_deref()
            .and_then(|d| rt.schemas.get(d))
            .filter(|s| !s.tables.is_empty())
    }

    /// The node and physical database for the session's current database, or for the
    /// node a `shardgate:node=NAME` hint names.
    pub(super) fn placement(
        &self,
        hinted_node: Option<&str>,
    ) -> Result<(NodeId, Option<String>), SqlError> {
        let rt = self.lease.topo.runtime.clone();
        let p = rt
            .placement(self.db.as_deref())
            .ok_or_else(|| SqlError::unknown_database(self.db.as_deref().unwrap_or("")))?;
        if let Some(name) = hinted_node {
            let id = rt
                .nodes
                .iter()
                .position(|n| n.name == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = rt.nodes.iter().map(|n| n.name.as_str()).collect();
                    SqlError::unsupported(format!(
                        "shardgate hint names unknown data node `{name}`; known nodes: {}",
                        known.join(", ")
                    ))
                })?;
            if id != p.node {
                // The hint chooses a node for the session's own database, never another
                // database: the schema's database on that node, or none.
                let database = match self.db.as_deref().and_then(|d| rt.schemas.get(d)) {
                    Some(s) => Some(s.database_on(&rt.nodes, id).to_string()),
                    None => self.db.clone(),
                };
                return Ok((id, database));
            }
        }
        Ok((p.node, p.database.map(str::to_string)))
    }

    /// Runs a command that needs the primary and no statement analysis.
    pub(super) async fn forward_to_primary(
        &mut self,
        payload: &[u8],
        seq: u8,
        mode: Mode,
    ) -> Reply {
        self.forward_pinned(payload, seq, mode, None).await
    }

    /// Like [`forward_to_primary`](Self::forward_to_primary), pinning the session for
    /// `pin` (prepared statements).
    pub(super) async fn forward_pinned(
        &mut self,
        payload: &[u8],
        seq: u8,
        mode: Mode,
        pin: Option<PinReason>,
    ) -> Reply {
        let (node, database) = self.placement(None)?;
        let route = Route {
            node,
            database,
            read_only: false,
            needs_previous: false,
            pin,
            drops_database: false,
        };
        self.execute(payload, seq, route, mode).await
    }

    pub(super) fn node_name(&self, node: NodeId) -> String {
        self.lease.topo.node(node).name.clone()
    }

    /// A statement the client ran generated `id` (0: none): `LAST_INSERT_ID()` now
    /// answers it, as on MariaDB.
    pub(super) fn note_insert_id(&mut self, id: u64) {
        if id != 0 {
            self.last_insert_id = id;
        }
    }

    pub(super) async fn execute(
        &mut self,
        payload: &[u8],
        seq: u8,
        route: Route,
        mode: Mode,
    ) -> Reply {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let was_held = self.lease.held.is_some() && self.lease.must_keep();
            // A deferred BEGIN or one-shot SET spent on a connection that then breaks
            // cannot be sent again on another: no retry then.
            let spends = !self.lease.pending_txn.is_empty() || !self.lease.next_txn.is_empty();
            let mut held = self
                .checkout(route.node, route.read_only, route.needs_previous)
                .await?;
            let retry_ok = !was_held && !spends && attempt < ATTEMPTS;
            if let Some(db) = &route.database {
                match held.conn.use_database(db).await {
                    Ok(()) => {}
                    Err(e @ WireError::Server { .. }) => {
                        self.keep_or_release(held, 0).await;
                        return Err(e.to_client("").into());
                    }
                    Err(e) => {
                        drop(held);
                        if retry_ok {
                            continue;
                        }
                        return self.report_lost(was_held, &e, false).await;
                    }
                }
            }
            if let Err(e) = held.conn.send_command(payload).await {
                drop(held);
                if retry_ok {
                    continue;
                }
                return self.report_lost(was_held, &e, false).await;
            }
            let add = self.lease.unopened_transaction();
            let mut result = held.conn.forward(&mut self.stream, mode, add).await;
            // After a LOCAL INFILE exchange the answer follows the client's last packet.
            let mut reply_seq = seq;
            // LOAD DATA LOCAL INFILE: the client's file goes to the backend, packet by
            // packet with the client's sequence ids, up to the empty packet that ends it.
            while matches!(&result, Ok(s) if s.local_infile) {
                let max = self.shared.settings.max_allowed_packet;
                loop {
                    let packet = match self.reader.read(&mut self.stream, max).await {
                        Ok(Some(p)) => p,
                        Ok(None) | Err(_) => return Ok(Flow::Close),
                    };
                    if let Err(e) = held.conn.send_packet(packet.seq, &packet.payload).await {
                        tracing::warn!(conn = self.id, error = %e, "backend failed during LOCAL INFILE");
                        return Ok(Flow::Close);
                    }
                    if packet.payload.is_empty() {
                        reply_seq = packet.seq.wrapping_add(1);
                        break;
                    }
                }
                result = held.conn.forward(&mut self.stream, Mode::Query, add).await;
            }
            match result {
                Ok(summary) => {
                    if route.drops_database {
                        if held.conn.refresh_database().await.is_err() {
                            // Its current database is unknown: it is not used again.
                            drop(held);
                            self.forget_connection_state();
                            return Ok(Flow::Continue);
                        }
                        // The session's own database was dropped: as on MariaDB, it
                        // has none selected now.
                        if route.database.is_some() && held.conn.database.is_none() {
                            self.db = None;
                        }
                    }
                    self.after_statement(held, &route, &summary).await;
                    return Ok(Flow::Continue);
                }
                Err(ForwardError::Client(e)) => return Err(e.into()),
                Err(ForwardError::Backend { err, reached }) => {
                    let role = held.role;
                    drop(held);
                    if route.read_only && retry_ok && reached == Reached::Nothing {
                        tracing::info!(conn = self.id, ?role, error = %err, "read failed before any result; retrying");
                        continue;
                    }
                    let err = self.lost_error(was_held, &err, true);
                    return Ok(self.answer_cut(reached, reply_seq, err).await?);
                }
            }
        }
    }

    async fn report_lost(&mut self, was_held: bool, err: &WireError, sent: bool) -> Reply {
        Err(self.lost_error(was_held, err, sent).into())
    }

    /// The error for a statement whose backend connection broke; the session forgets
    /// what that connection held.
    fn lost_error(&mut self, was_held: bool, err: &WireError, sent: bool) -> SqlError {
        let mut msg = format!("shardgate: lost the backend connection: {err}; ");
        msg.push_str(if sent {
            "the statement may or may not have taken effect"
        } else {
            "the statement was not run"
        });
        if was_held && self.lease.must_keep() {
            msg.push_str("; the open transaction and session state on that connection are gone");
        }
        self.forget_connection_state();
        SqlError::backend_lost(msg)
    }

    async fn after_statement(&mut self, mut held: Held, route: &Route, summary: &Summary) {
        self.lease.note_status(summary.status);
        self.outcome.failed |= summary.error.is_some();
        self.outcome.rows += summary.rows + summary.ok.map_or(0, |ok| ok.affected);
        self.outcome.shards = self.outcome.shards.max(1);
        // Pin even when the statement failed: part of a batch may have set state.
        if let Some(pin) = route.pin {
            self.pin(&mut held, pin);
        }
        self.note_insert_id(summary.insert_id);
        // After warnings or an error, SHOW WARNINGS must read this connection.
        let diagnostics = summary.warnings.max(u16::from(summary.error.is_some()));
        self.keep_or_release(held, diagnostics).await;
    }

    pub(super) fn pin(&mut self, held: &mut Held, reason: PinReason) {
        held.conn.dirty = true;
        if self.lease.pins.insert(reason) {
            self.control
                .set_pins(self.lease.pins.iter().map(|p| p.as_str()).collect());
            metrics::counter!("shardgate_session_pins_total", "reason" => reason.as_str())
                .increment(1);
            tracing::debug!(
                conn = self.id,
                reason = reason.as_str(),
                "session pinned to its backend connection"
            );
        }
    }
}

/// DDL (the only statements that commit first) that drops a database: looked for in
/// the text only then, so other statements pay nothing.
pub(super) fn drops_database(stmt: &Statement, payload: &[u8]) -> bool {
    stmt.commits_first && router::classify::drops_database(payload.get(1..).unwrap_or_default())
}
