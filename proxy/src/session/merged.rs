//! Multi-shard reads with a merge step (ORDER BY, LIMIT, aggregates, GROUP BY,
//! DISTINCT): every shard's query is sent before any answer is read (see `fanout`), so
//! they run at once, each on its own connection, and the merger takes rows from them
//! one at a time, so a shard is read only as fast as the client takes the answer.
//!
//! Inside a transaction the session has one connection per node, which cannot carry
//! two results at once; there each shard's result is read in turn into memory,
//! bounded by [`TXN_BUFFER_LIMIT`].

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use mysql_common::constants::StatusFlags;
use router::plan::MergeSpec;
use router::Plan;
use rules::runtime::LogicalSchema;
use rules::Runtime;
use tokio::io::AsyncWriteExt;

use super::fanout::StartError;
use super::sharded::Renames;
use super::{Flow, Held, Reply, Session};
use crate::backend::results::{Event, ResultReader};
use crate::merge::{ColumnInfo, MergeError, Merger, Row};
use crate::wire::coldef;
use crate::wire::generic::eof_payload;
use crate::wire::packet::write_packet;
use crate::wire::{lenenc, SqlError, WireError};

/// Rows read and dropped from a shard after LIMIT was reached, before its
/// connection is closed instead.
const DRAIN_LIMIT: usize = 1024;

/// Most bytes of shard rows held while merging inside a transaction.
const TXN_BUFFER_LIMIT: usize = 64 * 1024 * 1024;

/// One shard's answer being read.
struct Source {
    held: Option<Held>,
    /// Where the connection's answer stands.
    reader: ResultReader,
    buffered: VecDeque<Row>,
    finished: bool,
    warnings: u16,
}

enum Failure {
    /// An answer for the client (before or in place of the end of the rows).
    Sql(SqlError),
    /// The merge step cannot answer exactly; a gather can, while nothing was sent.
    Refused(SqlError),
    /// The backend connection broke.
    Lost(WireError),
}

impl From<MergeError> for Failure {
    fn from(e: MergeError) -> Self {
        match e {
            MergeError::EnumKey | MergeError::TooManyGroups | MergeError::HavingType(_) => {
                Failure::Refused(SqlError::unsupported(e.to_string()))
            }
            MergeError::Arith(_) => Failure::Sql(SqlError::new(1690, "22003", e.to_string())),
            MergeError::ColumnMismatch(..) => {
                Failure::Sql(SqlError::new(1105, "HY000", e.to_string()))
            }
            // Shards may describe one column differently (an outer join's column
            // where the optimizer found no row on one shard): one server evaluating
            // all the rows has one description.
            MergeError::ColumnDescriptions => {
                Failure::Refused(SqlError::new(1105, "HY000", e.to_string()))
            }
        }
    }
}

fn backend(e: WireError) -> Failure {
    match e {
        WireError::Server { .. } => Failure::Sql(e.to_client("")),
        other => Failure::Lost(other),
    }
}

/// Reads the next row of a result; at its end, its warnings count and status.
async fn next_row(
    held: &mut Held,
    reader: &mut ResultReader,
    width: usize,
) -> Result<Result<Row, (u16, Option<StatusFlags>)>, Failure> {
    loop {
        match reader.next(&mut held.conn).await.map_err(backend)? {
            Event::ColumnsEnd(_) => {}
            Event::Row(p) => {
                return Row::parse(p, width)
                    .map(Ok)
                    .ok_or(Failure::Lost(WireError::Protocol(
                        "malformed row from a shard",
                    )))
            }
            Event::End {
                status, warnings, ..
            } => return Ok(Err((warnings, status))),
            Event::Err(p) => {
                return Err(Failure::Sql(WireError::from_err_packet(&p).to_client("")))
            }
            Event::Ok { .. } | Event::Columns { .. } | Event::ColumnDef(_) => {
                return Err(Failure::Lost(WireError::Protocol(
                    "unexpected packet among a shard's rows",
                )))
            }
        }
    }
}

/// What a merged read runs on and how.
#[derive(Clone, Copy)]
pub(super) struct MergeJob<'a, 'r> {
    /// The statement as planned.
    pub sql: &'a [u8],
    pub plan: &'a Plan,
    pub spec: &'a MergeSpec,
    pub read_only: bool,
    pub rt: &'a Runtime,
    pub schema: &'a LogicalSchema,
    pub renames: &'a Renames<'r>,
}

/// How far a merged read got: what the caller must finish or clean up.
struct MergeState {
    seq: u8,
    sources: Vec<Source>,
    /// Some bytes reached the client: an error can only end the result set.
    header_sent: bool,
}

impl Session {
    pub(super) async fn run_merge(&mut self, job: MergeJob<'_, '_>, seq: u8) -> Reply {
        let start_seq = seq;
        let mut p = MergeState {
            seq,
            sources: Vec::with_capacity(job.plan.targets.len()),
            header_sent: false,
        };
        let result = self.merge_into_client(job, &mut p).await;
        let MergeState {
            mut seq,
            sources,
            header_sent,
        } = p;
        let failure = result.err();
        if failure.is_some() && !header_sent {
            // Nothing reached the client: the error is the whole answer.
            seq = start_seq;
        }
        // Connections go back only when their answer was read to the end.
        let mut warnings = 0u16;
        for s in sources {
            warnings = warnings.saturating_add(s.warnings);
            if let Some(held) = s.held {
                if s.finished {
                    self.keep_or_release(held, s.warnings).await;
                }
            }
        }
        match failure {
            None => {
                let mut out = BytesMut::new();
                let end = eof_payload(self.deprecate_eof(), self.lease.status(), warnings);
                write_packet(&mut out, &mut seq, &end);
                self.stream.write_all(&out).await?;
                Ok(Flow::Continue)
            }
            Some(Failure::Refused(e)) if !header_sent => self.gather_instead(job, e, seq).await,
            Some(Failure::Sql(e) | Failure::Refused(e)) => {
                self.send_err(seq, &e).await?;
                Ok(Flow::Continue)
            }
            Some(Failure::Lost(e)) if !header_sent => {
                self.forget_connection_state();
                self.send_err(seq, &e.to_client("(the statement may or may not have run)"))
                    .await?;
                Ok(Flow::Continue)
            }
            Some(Failure::Lost(e)) => {
                self.forget_connection_state();
                tracing::warn!(conn = self.id, error = %e, "shard failed mid-merge; closing client connection");
                Ok(Flow::Close)
            }
        }
    }

    /// Answers by a gather what the merge step refused before sending anything.
    async fn gather_instead(&mut self, job: MergeJob<'_, '_>, refused: SqlError, seq: u8) -> Reply {
        let planned = std::str::from_utf8(job.sql)
            .map_err(|_| router::RouteError::NotUtf8(job.schema.name.clone()))
            .and_then(|text| {
                router::plan::gather_plan(text, job.schema, job.rt, self.reading, &refused.message)
            });
        match planned {
            Ok(Some(g)) => self.run_gather(&g, job.rt, job.schema, seq).await,
            Ok(None) => {
                self.send_err(seq, &refused).await?;
                Ok(Flow::Continue)
            }
            Err(e) => {
                self.send_err(seq, &super::sharded::route_error(&e)).await?;
                Ok(Flow::Continue)
            }
        }
    }

    async fn merge_into_client(
        &mut self,
        job: MergeJob<'_, '_>,
        p: &mut MergeState,
    ) -> Result<(), Failure> {
        let MergeJob {
            sql: _,
            plan,
            spec,
            read_only,
            rt,
            schema,
            renames,
        } = job;
        let MergeState {
            seq,
            sources,
            header_sent,
        } = p;
        let deprecate = self.deprecate_eof();
        let in_txn = self.lease.must_keep() || !self.lease.autocommit;
        let mut defs: Vec<Bytes> = Vec::new();
        let mut buffered_bytes = 0usize;
        let mut parts = self
            .start_parts(&plan.targets, read_only, rt, schema)
            .await
            .map_err(not_started)?;
        for target in &plan.targets {
            let mut held = self
                .next_part(&mut parts, target, read_only, rt, schema)
                .await
                .map_err(not_started)?;
            let mut reader = ResultReader::default();
            let head = match reader.next(&mut held.conn).await {
                Ok(h) => h,
                Err(e) => return Err(backend(e)),
            };
            let columns = match head {
                Event::Err(p) => {
                    self.keep_or_release(held, 0).await;
                    return Err(backend(WireError::from_err_packet(&p)));
                }
                Event::Ok { .. } => {
                    self.keep_or_release(held, 0).await;
                    return Err(Failure::Sql(SqlError::internal(
                        "a shard answered a merged SELECT without rows",
                    )));
                }
                Event::Columns { count, .. } => usize::try_from(count)
                    .map_err(|_| Failure::Lost(WireError::Protocol("bad column count")))?,
                _ => return Err(Failure::Lost(WireError::Protocol("bad column count"))),
            };
            let mut these = Vec::with_capacity(columns.min(4096));
            for _ in 0..columns {
                match reader.next(&mut held.conn).await.map_err(backend)? {
                    Event::ColumnDef(p) => these.push(p),
                    _ => {
                        let e = WireError::Protocol("bad column definition");
                        return Err(Failure::Lost(e));
                    }
                }
            }
            if defs.is_empty() {
                defs = these;
            } else if defs.len() != columns {
                // Other columns (a DDL applied to some physical tables only). This
                // shard's connection still has its rows unread: it is closed.
                return Err(MergeError::ColumnMismatch(defs.len(), columns).into());
            } else if defs
                .iter()
                .zip(&these)
                .any(|(a, b)| coldef::shape(a) != coldef::shape(b))
            {
                return Err(MergeError::ColumnDescriptions.into());
            }
            let mut source = Source {
                held: Some(held),
                reader,
                buffered: VecDeque::new(),
                finished: false,
                warnings: 0,
            };
            if in_txn {
                // One connection per node: read this shard's rows before the next.
                let Some(mut held) = source.held.take() else {
                    continue;
                };
                loop {
                    match next_row(&mut held, &mut source.reader, columns).await {
                        Ok(Ok(row)) => {
                            buffered_bytes += row.encode(columns).len();
                            source.buffered.push_back(row);
                            if buffered_bytes > TXN_BUFFER_LIMIT {
                                return Err(Failure::Sql(SqlError::unsupported(format!(
                                    "not supported by shardgate yet: a merged multi-shard result over {} MiB inside a transaction; \
                                     narrow it with a shard-key condition, or run it outside the transaction",
                                    TXN_BUFFER_LIMIT >> 20
                                ))));
                            }
                        }
                        Ok(Err((warnings, status))) => {
                            source.warnings = warnings;
                            self.lease.note_status(status);
                            break;
                        }
                        Err(f) => {
                            if matches!(f, Failure::Sql(_)) {
                                self.keep_or_release(held, 0).await;
                            }
                            return Err(f);
                        }
                    }
                }
                source.finished = true;
                self.keep_or_release(held, 0).await;
            }
            sources.push(source);
        }
        let infos: Vec<ColumnInfo> = defs
            .iter()
            .map(|d| {
                ColumnInfo::parse(d).ok_or(Failure::Lost(WireError::Protocol(
                    "bad column definition from a shard",
                )))
            })
            .collect::<Result<_, _>>()?;
        let width = infos.len();
        let mut merger = Merger::new(spec, infos)?;

        let mut out = BytesMut::with_capacity(16 * 1024);
        let mut count = BytesMut::new();
        lenenc::put_int(&mut count, merger.visible() as u64);
        write_packet(&mut out, seq, &count);
        for d in defs.iter().take(merger.visible()) {
            match renames.apply(d) {
                Some(renamed) => write_packet(&mut out, seq, &renamed),
                None => write_packet(&mut out, seq, d),
            }
        }
        if !deprecate {
            let eof = eof_payload(false, self.lease.status(), 0);
            write_packet(&mut out, seq, &eof);
        }

        let mut heads: Vec<Option<Row>> = Vec::with_capacity(sources.len());
        for s in sources.iter_mut() {
            heads.push(pull(s, width).await?);
        }
        let mut rows = Vec::new();
        while !merger.done() {
            let Some(i) = merger.pick(&heads) else { break };
            let Some(row) = heads[i].take() else { break };
            heads[i] = pull(&mut sources[i], width).await?;
            merger.push(row, &mut rows)?;
            for r in rows.drain(..) {
                write_packet(&mut out, seq, &r);
            }
            if out.len() >= 16 * 1024 {
                self.stream.write_all(&out).await.map_err(client_gone)?;
                *header_sent = true;
                out.clear();
            }
        }
        merger.finish(&mut rows)?;
        for r in rows.drain(..) {
            write_packet(&mut out, seq, &r);
        }
        // LIMIT reached early: a short rest is read so the connection can be reused;
        // a long one is not worth it, and the connection is closed instead (which
        // also stops the query on the server).
        for s in sources.iter_mut() {
            let mut left = DRAIN_LIMIT;
            while left > 0 && pull(s, width).await?.is_some() {
                left -= 1;
            }
        }
        if !out.is_empty() {
            self.stream.write_all(&out).await.map_err(client_gone)?;
            *header_sent = true;
        }
        Ok(())
    }
}

fn not_started(e: StartError) -> Failure {
    match e {
        StartError::Checkout(e) => Failure::Sql(e),
        StartError::Send(e) => backend(e),
    }
}

fn client_gone(e: std::io::Error) -> Failure {
    Failure::Lost(WireError::Io(e))
}

/// The next row of a source, from its buffer or its connection.
async fn pull(s: &mut Source, width: usize) -> Result<Option<Row>, Failure> {
    if let Some(r) = s.buffered.pop_front() {
        return Ok(Some(r));
    }
    if s.finished {
        return Ok(None);
    }
    let Some(held) = s.held.as_mut() else {
        return Ok(None);
    };
    match next_row(held, &mut s.reader, width).await? {
        Ok(row) => Ok(Some(row)),
        Err((warnings, _)) => {
            s.warnings = warnings;
            s.finished = true;
            Ok(None)
        }
    }
}
