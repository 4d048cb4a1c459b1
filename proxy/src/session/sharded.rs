//! Running routed plans: statements on sharded, broadcast and single tables.
//!
//! Single-target reads and multi-shard reads stream packet by packet: one result set
//! whose column definitions come from the first shard (renamed to logical names) and
//! whose rows are each shard's in turn, with sequence ids renumbered. Multi-target
//! writes are in [`super::multi_write`].

use std::sync::Arc;

use bytes::BytesMut;
use mysql_common::constants::StatusFlags;
use router::{Merge, Plan, RouteError};
use rules::runtime::LogicalSchema;
use rules::{NodeId, Runtime, TableKind};
use smallvec::SmallVec;
use tokio::io::AsyncWriteExt;

use super::cut_answer::Sent;
use super::fanout::StartError;
use super::multi_write::Tally;
use super::{Flow, Held, Reply, Session};
use crate::backend::results::{Event, ResultReader};
use crate::wire::coldef;
use crate::wire::packet::write_packet;
use crate::wire::response::Reached;
use crate::wire::{SqlError, WireError};

/// Physical → logical names for column metadata, borrowed from the snapshot: built
/// for every routed statement, so it allocates nothing until a second pair.
pub(super) struct Renames<'t> {
    schemas: SmallVec<[(&'t str, &'t str); 1]>,
    tables: SmallVec<[(&'t str, &'t str); 2]>,
}

impl<'t> Renames<'t> {
    pub(super) fn new(rt: &'t Runtime, schema: &'t LogicalSchema, plan: &Plan) -> Renames<'t> {
        let mut renames = Renames::none();
        for t in &plan.targets {
            let physical = schema.database_on(&rt.nodes, t.node);
            if physical != schema.name && !renames.schemas.iter().any(|(p, _)| *p == physical) {
                renames.schemas.push((physical, schema.name.as_str()));
            }
        }
        for (name, table) in &schema.tables {
            if let TableKind::Sharded(s) = &table.kind {
                for t in &plan.targets {
                    if let Some(loc) = t.shard.and_then(|i| s.shards.get(i as usize)) {
                        if loc.table != *name {
                            renames.tables.push((loc.table.as_str(), name.as_str()));
                        }
                    }
                }
            }
        }
        renames
    }

    /// One database's physical name → the schema's logical one.
    pub(super) fn database(physical: &'t str, logical: &'t str) -> Renames<'t> {
        let mut renames = Renames::none();
        if physical != logical {
            renames.schemas.push((physical, logical));
        }
        renames
    }

    /// No renaming: statements on no configured table.
    pub(super) fn none() -> Renames<'t> {
        Renames {
            schemas: SmallVec::new(),
            tables: SmallVec::new(),
        }
    }

    pub(super) fn apply(&self, payload: &[u8]) -> Option<BytesMut> {
        if self.schemas.is_empty() && self.tables.is_empty() {
            return None;
        }
        let find = |list: &[(&'t str, &'t str)], v: &[u8]| {
            list.iter()
                .find(|(p, _)| p.as_bytes() == v)
                .map(|(_, l)| *l)
        };
        coldef::rename(
            payload,
            |s| find(&self.schemas, s),
            |t| find(&self.tables, t),
        )
    }
}

pub(super) fn route_error(e: &RouteError) -> SqlError {
    match e {
        RouteError::Unsupported(_) => SqlError::unsupported(e.to_string()),
        RouteError::Parse(_) | RouteError::NotUtf8(_) => SqlError::syntax(e.to_string()),
        RouteError::Rule(_) => {
            SqlError::new(1526, "HY000", format!("{e}: no shard holds this value"))
        }
        RouteError::Invalid(_) => SqlError::new(1105, "HY000", e.to_string()),
        RouteError::NeedsColumns { table, .. } => SqlError::unsupported(format!(
            "not supported by shardgate yet: {e} here (a statement naming another \
             schema); list the columns of `{table}`"
        )),
        RouteError::ShardTable(..) => SqlError::no_such_table(e.to_string()),
    }
}

impl Session {
    pub(super) async fn run_plan(
        &mut self,
        plan: &Plan,
        sql: &[u8],
        read_only: bool,
        rt: Arc<Runtime>,
        schema_name: &str,
        seq: u8,
    ) -> Reply {
        let Some(schema) = rt.schemas.get(schema_name) else {
            return Err(SqlError::unknown_database(schema_name).into());
        };
        if let Some(g) = &plan.gather {
            return self.run_gather(g, &rt, schema, seq).await;
        }
        if let Some(load) = &plan.load {
            return self.run_load(plan, load, &rt, schema, seq).await;
        }
        if let Some(fill) = &plan.fill_global_id {
            return self.insert_with_ids(fill, sql, &rt, schema, seq).await;
        }
        if plan.targets.is_empty() {
            let e = SqlError::internal("shardgate planned the statement onto no shard");
            return Err(e.into());
        }
        let fan_out = u16::try_from(plan.targets.len()).unwrap_or(u16::MAX);
        self.outcome.shards = self.outcome.shards.max(fan_out);
        crate::http::metrics::hot()
            .fan_out
            .record(f64::from(fan_out));
        let nodes: SmallVec<[NodeId; 4]> = plan.targets.iter().map(|t| t.node).collect();
        let conflict = match self.commit_before_ddl(&nodes).await {
            Ok(()) => self.transaction_conflict(&nodes),
            Err(e) => Some(e),
        };
        if let Some(e) = conflict {
            return Err(e.into());
        }
        let label = if plan.targets.len() > 1 {
            "multi"
        } else {
            "single"
        };
        metrics::counter!("shardgate_routed_statements_total", "targets" => label).increment(1);
        if plan.write && plan.targets.len() > 1 && super::ddl::is_ddl(sql) {
            return self.run_ddl(&plan.targets, &rt, schema, seq).await;
        }
        if plan.write && plan.targets.len() > 1 {
            let targets: Vec<&router::Target> = plan.targets.iter().collect();
            return self
                .run_multi_write(&targets, None, Tally::of(&plan.merge), &rt, schema, seq)
                .await;
        }
        let renames = Renames::new(&rt, schema, plan);
        let read_only = read_only && !plan.write && !self.lease.must_keep();
        if let Merge::Combine(spec) = &plan.merge {
            return self
                .run_merge(
                    super::merged::MergeJob {
                        sql,
                        plan,
                        spec,
                        read_only,
                        rt: &rt,
                        schema,
                        renames: &renames,
                    },
                    seq,
                )
                .await;
        }
        self.run_streamed(plan, read_only, &rt, schema, &renames, seq)
            .await
    }

    /// An INSERT that omits the global id column: generate the ids, write them into
    /// the statement, and run that. The client learns the first id as the insert id,
    /// as with AUTO_INCREMENT.
    async fn insert_with_ids(
        &mut self,
        fill: &router::plan::FillIds,
        sql: &[u8],
        rt: &Arc<Runtime>,
        schema: &LogicalSchema,
        seq: u8,
    ) -> Reply {
        let ids = self.shared.ids.take(fill.worker_id, fill.rows());
        let planned = std::str::from_utf8(sql)
            .map_err(|_| RouteError::NotUtf8(schema.name.clone()))
            .and_then(|text| fill.apply(text, &ids))
            .and_then(|text| router::plan(text.as_bytes(), schema, rt, self.reading));
        let plan = match planned {
            Ok(Some(p)) if p.fill_global_id.is_none() && !p.targets.is_empty() => p,
            Ok(_) => {
                let e =
                    SqlError::internal("shardgate could not plan the INSERT with generated ids");
                return Err(e.into());
            }
            Err(e) => {
                return Err(route_error(&e).into());
            }
        };
        let fan_out = u16::try_from(plan.targets.len()).unwrap_or(u16::MAX);
        self.outcome.shards = self.outcome.shards.max(fan_out);
        crate::http::metrics::hot()
            .fan_out
            .record(f64::from(fan_out));
        let nodes: SmallVec<[NodeId; 4]> = plan.targets.iter().map(|t| t.node).collect();
        let conflict = match self.commit_before_ddl(&nodes).await {
            Ok(()) => self.transaction_conflict(&nodes),
            Err(e) => Some(e),
        };
        if let Some(e) = conflict {
            return Err(e.into());
        }
        metrics::counter!("shardgate_generated_ids_total").increment(ids.len() as u64);
        let targets: Vec<&router::Target> = plan.targets.iter().collect();
        let first = ids.first().map(|i| *i as u64);
        self.run_multi_write(&targets, None, Tally::Shards(first), rt, schema, seq)
            .await
    }

    /// Session state (temporary tables, locks, user variables, cursors) lives on one
    /// connection: the error for a statement that would leave it. A transaction
    /// without such state takes a branch on every node it touches.
    pub(super) fn transaction_conflict(&self, nodes: &[NodeId]) -> Option<SqlError> {
        if !self.lease.must_keep() || self.lease.may_branch() {
            return None;
        }
        let first = *nodes.first()?;
        if let Some(other) = nodes.iter().find(|n| **n != first) {
            return Some(SqlError::unsupported(format!(
                "not supported by shardgate yet: a statement that touches data nodes {} and {} in a session whose \
                 state (temporary tables, locks, user variables or cursors) lives on one connection; \
                 reset the connection, or keep the statements on one node",
                self.node_name(first),
                self.node_name(*other)
            )));
        }
        let h = self.lease.held.as_ref()?;
        (h.node != first).then(|| {
            SqlError::unsupported(format!(
                "not supported by shardgate yet: this session's state (temporary tables, locks, user variables \
                 or cursors) lives on data node {}, and the statement also needs {}; \
                 reset the connection, or keep the statements on one node",
                self.node_name(h.node),
                self.node_name(first)
            ))
        })
    }

    /// Reads (one or several targets) and single-target writes.
    async fn run_streamed(
        &mut self,
        plan: &Plan,
        read_only: bool,
        rt: &Runtime,
        schema: &LogicalSchema,
        renames: &Renames<'_>,
        seq: u8,
    ) -> Reply {
        let mut seq = seq;
        let mut header_sent = false;
        let last = plan.targets.len() - 1;
        let mut shapes = Vec::new();
        let mut parts = match self.start_parts(&plan.targets, read_only, rt, schema).await {
            Ok(p) => p,
            Err(e) => return self.not_started(seq, e, false).await,
        };
        for (i, target) in plan.targets.iter().enumerate() {
            let started = self
                .next_part(&mut parts, target, read_only, rt, schema)
                .await;
            let mut held = match started {
                Ok(h) => h,
                // Rows of earlier parts went out already: the error ends the result.
                Err(e) => return self.not_started(seq, e, header_sent).await,
            };
            match self
                .relay_one(
                    &mut held,
                    &mut seq,
                    (i == 0, i == last),
                    &mut shapes,
                    renames,
                )
                .await
            {
                Ok(Relayed::Done {
                    status,
                    warnings,
                    insert_id,
                }) => {
                    self.lease.note_status(status);
                    self.note_insert_id(insert_id);
                    self.keep_or_release(held, warnings).await;
                    if !header_sent && i == 0 && plan.merge == Merge::Single {
                        return Ok(Flow::Continue);
                    }
                    header_sent = true;
                }
                Ok(Relayed::Error) => {
                    // Kept like a statement with warnings: SHOW WARNINGS reads it next.
                    self.keep_or_release(held, 1).await;
                    return Ok(Flow::Continue);
                }
                Err(RelayError::Client(e)) => return Err(e.into()),
                Err(RelayError::Backend(e, reached)) => {
                    self.forget_connection_state();
                    drop(held);
                    let e = e.to_client("(the statement may or may not have run)");
                    return Ok(self.answer_cut(reached, seq, e).await?);
                }
            }
        }
        Ok(Flow::Continue)
    }

    /// The answer when a part could not start. Parts started before it were sent
    /// and may have run.
    async fn not_started(&mut self, seq: u8, e: StartError, others_ran: bool) -> Reply {
        let e = match e {
            StartError::Checkout(e) => e,
            StartError::Send(e @ WireError::Server { .. }) => e.to_client(""),
            StartError::Send(e) => {
                self.forget_connection_state();
                let context = if others_ran {
                    "(the statement may have run on other shards)"
                } else {
                    "(the statement was not run)"
                };
                e.to_client(context)
            }
        };
        self.reply_err(seq, &e).await
    }

    /// Sends an error: as the whole answer, or to end a result set already begun
    /// (an ERR packet may take the place of the end-of-rows marker).
    async fn reply_err(&mut self, seq: u8, e: &SqlError) -> Reply {
        self.send_err(seq, e).await?;
        Ok(Flow::Continue)
    }

    /// Streams one target's answer. The first target contributes the column
    /// definitions, the last the end marker; rows come from all. Every later target
    /// must answer with the first one's columns (`shapes`): shards that disagree (a
    /// DDL applied to some physical tables only) end the result with an error, never
    /// with rows under another shard's header.
    pub(super) async fn relay_one(
        &mut self,
        held: &mut Held,
        seq: &mut u8,
        (first, last): (bool, bool),
        shapes: &mut Vec<coldef::ColumnShape>,
        renames: &Renames<'_>,
    ) -> Result<Relayed, RelayError> {
        // Sized for a small answer (most are); a large one grows it to the flush size.
        let mut out = BytesMut::with_capacity(1024);
        // A later part's client already has the header (and maybe rows).
        let mut flushed = !first;
        let start = *seq;
        let relayed = self
            .relay_part(
                held,
                seq,
                (first, last),
                shapes,
                renames,
                &mut out,
                &mut flushed,
            )
            .await;
        match relayed {
            Err(RelayError::Backend(e, _)) => {
                if !flushed {
                    // Nothing went out: the error is the whole answer.
                    *seq = start;
                }
                // Nothing of this part's header goes out before its rows.
                Err(self.cut_rows(&mut out, *seq, Sent::rows(flushed), e).await)
            }
            other => other,
        }
    }

    /// [`relay_one`](Self::relay_one)'s work; a backend failure is placed by the caller.
    #[allow(clippy::too_many_arguments)]
    async fn relay_part(
        &mut self,
        held: &mut Held,
        seq: &mut u8,
        (first, last): (bool, bool),
        shapes: &mut Vec<coldef::ColumnShape>,
        renames: &Renames<'_>,
        out: &mut BytesMut,
        forwarded: &mut bool,
    ) -> Result<Relayed, RelayError> {
        let out = &mut *out;
        // The shapes are compared between parts; one part alone has nothing to match.
        let compare = !(first && last);
        let backend = |e| RelayError::Backend(e, Reached::Nothing);
        let mut reader = ResultReader::default();
        self.outcome.shards = self.outcome.shards.max(1);
        let head = reader.next(&mut held.conn).await.map_err(backend)?;
        let columns = match head {
            Event::Err(payload) => {
                self.outcome.failed = true;
                self.send_last(out, seq, &payload).await?;
                return Ok(Relayed::Error);
            }
            Event::Ok { info, payload } => {
                self.outcome.rows += info.map_or(0, |o| o.affected);
                self.send_last(out, seq, &payload).await?;
                return Ok(Relayed::Done {
                    status: info.map(|o| o.status),
                    warnings: info.map_or(0, |o| o.warnings),
                    insert_id: info.map_or(0, |o| o.last_insert_id),
                });
            }
            Event::Columns { count, payload } => {
                if first {
                    write_packet(out, seq, &payload);
                }
                count
            }
            _ => return Err(backend(WireError::Protocol("bad column count"))),
        };
        let mut these = Vec::with_capacity(if compare {
            usize::try_from(columns).unwrap_or(0).min(4096)
        } else {
            0
        });
        for _ in 0..columns {
            let p = match reader.next(&mut held.conn).await {
                Ok(Event::ColumnDef(p)) => p,
                Ok(_) => {
                    let e = WireError::Protocol("bad column definition");
                    return Err(backend(e));
                }
                Err(e) => return Err(backend(e)),
            };
            if compare {
                these.push(coldef::shape(&p));
            }
            if first {
                match renames.apply(&p) {
                    Some(renamed) => write_packet(out, seq, &renamed),
                    None => write_packet(out, seq, &p),
                }
            }
        }
        let these: Option<Vec<coldef::ColumnShape>> = these.into_iter().collect();
        let these = these.ok_or(backend(WireError::Protocol("malformed column definition")))?;
        if first {
            *shapes = these;
        } else if *shapes != these {
            // The rest of this shard's answer is read and dropped, so its connection
            // (perhaps the session's transaction) stays usable.
            loop {
                let event = reader.next(&mut held.conn).await;
                match event.map_err(backend)? {
                    Event::Err(_) | Event::End { .. } => break,
                    _ => {}
                }
            }
            let e = SqlError::new(
                1105,
                "HY000",
                format!(
                    "shardgate: the shards answer with different columns ({} and {}): a DDL \
                     was applied to only some physical tables; EXPLAIN SHARDING shows them, \
                     SHOW CREATE TABLE on each node shows which differ",
                    shapes.len(),
                    these.len()
                ),
            );
            self.send_last(out, seq, &crate::wire::generic::err_payload(&e))
                .await?;
            return Ok(Relayed::Error);
        }
        loop {
            let event = reader.next(&mut held.conn).await;
            match event.map_err(backend)? {
                Event::ColumnsEnd(p) => {
                    if first {
                        write_packet(out, seq, &p);
                    }
                }
                Event::Row(p) => {
                    self.outcome.rows += 1;
                    *forwarded |= self.pass_row(out, seq, &p).await?;
                }
                Event::Err(p) => {
                    self.outcome.failed = true;
                    self.send_last(out, seq, &p).await?;
                    return Ok(Relayed::Error);
                }
                Event::End {
                    status,
                    warnings,
                    payload,
                } => {
                    if last {
                        write_packet(out, seq, &payload);
                    }
                    if !out.is_empty() {
                        self.stream
                            .write_all(out)
                            .await
                            .map_err(RelayError::Client)?;
                    }
                    return Ok(Relayed::Done {
                        status,
                        warnings,
                        insert_id: 0,
                    });
                }
                Event::Ok { .. } | Event::Columns { .. } | Event::ColumnDef(_) => {
                    let e = WireError::Protocol("unexpected packet in a result set");
                    return Err(backend(e));
                }
            }
        }
    }

    /// Appends a relayed row to `out`, and sends `out` once it holds about 16 KiB:
    /// few writes, and memory bounded whatever the answer's size. True when sent.
    pub(super) async fn pass_row(
        &mut self,
        out: &mut BytesMut,
        seq: &mut u8,
        row: &[u8],
    ) -> Result<bool, RelayError> {
        write_packet(out, seq, row);
        if out.len() < 16 * 1024 {
            return Ok(false);
        }
        self.stream
            .write_all(out)
            .await
            .map_err(RelayError::Client)?;
        out.clear();
        Ok(true)
    }

    /// Appends the packet that ends this target's answer and sends what is buffered.
    async fn send_last(
        &mut self,
        out: &mut BytesMut,
        seq: &mut u8,
        payload: &[u8],
    ) -> Result<(), RelayError> {
        write_packet(out, seq, payload);
        self.stream.write_all(out).await.map_err(RelayError::Client)
    }
}

pub(super) enum Relayed {
    Done {
        status: Option<StatusFlags>,
        warnings: u16,
        insert_id: u64,
    },
    /// The backend answered with an error, already sent on.
    Error,
}

pub(super) enum RelayError {
    Client(std::io::Error),
    Backend(WireError, Reached),
}
