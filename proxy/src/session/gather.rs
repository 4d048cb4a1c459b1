//! Running a gather plan: each table the statement reads is copied, thinned by the
//! conditions that concern it alone, into a temporary table of the same name on one
//! connection to the evaluating node's primary; that connection runs the client's
//! statement and its answer streams to the client as the server sent it.
//!
//! The copy streams: a shard's rows become multi-row INSERTs of about a MiB; one is
//! inserted while the next is read, so shardgate holds two batches at most whatever
//! the size of the tables; the budget (`server.gather_max_rows`, `gather_max_bytes`) bounds
//! what the evaluating server is asked to hold. Rows are read the way the session
//! reads (its transaction, its replicas), so a transaction sees its own writes.
//! The temporary tables stay out of the binary log (`sql_log_bin = 0`), and the
//! evaluating connection is reset before anyone else uses it: no temporary table
//! ever outlives the statement, or shadows a table for another statement.

use bytes::BytesMut;
use router::plan::{Gather, Gathered};
use router::Target;
use rules::runtime::LogicalSchema;
use rules::{NodeId, Runtime};
use smallvec::SmallVec;
use tokio::io::AsyncWriteExt;

use super::sharded::{RelayError, Relayed, Renames};
use super::{Flow, Held, Reply, Session};
use crate::backend::results::{Event, ResultReader};
use crate::merge::Row;
use crate::scratch::{self, Column, Kind, RowsInsert};
use crate::wire::generic::eof_payload;
use crate::wire::packet::write_packet;
use crate::wire::response::Reached;
use crate::wire::{SqlError, WireError};

/// INSERTs into the temporary tables are cut at about this size.
const BATCH_BYTES: usize = 1 << 20;

/// What has been gathered so far, against the budget.
struct Spent {
    rows: u64,
    bytes: u64,
}

/// Why gathering stopped.
enum Stop {
    /// An answer for the client; every connection is in a known state.
    Sql(SqlError),
    /// A session connection broke (its transaction, if any, is gone).
    Lost(WireError),
}

impl From<SqlError> for Stop {
    fn from(e: SqlError) -> Self {
        Stop::Sql(e)
    }
}

impl Session {
    pub(super) async fn run_gather(
        &mut self,
        g: &Gather,
        rt: &Runtime,
        schema: &LogicalSchema,
        seq: u8,
    ) -> Reply {
        match self.gather_rows(g, rt, schema).await {
            Ok(held) => self.evaluate(held, g, schema, seq).await,
            Err(e) => self.reply_gather_err(seq, &e).await,
        }
    }

    /// Copies the rows `g` reads onto a connection to its evaluating node, which can
    /// then run the statement (or hold a cursor on it).
    pub(super) async fn gather_rows(
        &mut self,
        g: &Gather,
        rt: &Runtime,
        schema: &LogicalSchema,
    ) -> Result<Held, SqlError> {
        let sources: usize = g.tables.iter().map(|t| t.sources.len()).sum();
        let fan_out = u16::try_from(sources.max(1)).unwrap_or(u16::MAX);
        self.outcome.shards = self.outcome.shards.max(fan_out);
        crate::http::metrics::hot()
            .fan_out
            .record(f64::from(fan_out));
        metrics::counter!("shardgate_gathered_statements_total").increment(1);
        // Outside a transaction a table that lives on the evaluating node is read
        // where it is; inside one, only the session's own connections see its
        // writes, so every table is copied through them.
        let in_transaction = self.lease.must_keep() || !self.lease.autocommit;
        let copied: Vec<&Gathered> = g
            .tables
            .iter()
            .filter(|t| in_transaction || !t.in_place)
            .collect();
        let nodes: SmallVec<[NodeId; 4]> = copied
            .iter()
            .flat_map(|t| t.sources.iter().map(|s| s.node))
            .collect();
        self.commit_before_ddl(&nodes).await?;
        if let Some(e) = self.transaction_conflict(&nodes) {
            return Err(e);
        }
        let mut held = self.evaluating_connection(g.node).await?;
        let mut spent = Spent { rows: 0, bytes: 0 };
        for t in copied {
            if let Err(stop) = self
                .copy_table(&mut held, g, t, rt, schema, &mut spent)
                .await
            {
                // Its temporary tables go with it when it is reset.
                self.give_back(held).await;
                return Err(match stop {
                    Stop::Sql(e) => e,
                    Stop::Lost(e) => {
                        self.forget_connection_state();
                        e.to_client("(the statement was not run)")
                    }
                });
            }
        }
        metrics::counter!("shardgate_gathered_rows_total").increment(spent.rows);
        Ok(held)
    }

    async fn reply_gather_err(&mut self, seq: u8, e: &SqlError) -> Reply {
        self.outcome.failed = true;
        self.send_err(seq, e).await?;
        Ok(Flow::Continue)
    }

    /// A connection to `node`'s primary with the session's settings, whose
    /// temporary tables stay out of the binary log. It is marked dirty, so that the
    /// pool resets it (dropping every temporary table) before lending it again.
    async fn evaluating_connection(&mut self, node: NodeId) -> Result<Held, SqlError> {
        if !self.shared.backend_version.mariadb {
            return Err(SqlError::unsupported(
                "not supported by shardgate yet: reads that need the rows of several shards \
                 evaluated together on MySQL backends (they are gathered with MariaDB's SET \
                 STATEMENT); run them against the shards one at a time",
            ));
        }
        let mut held = self
            .detached_primary(node, "to evaluate the statement")
            .await?;
        let pools = self.lease.topo.node(node).clone();
        match held.conn.execute_ok(b"SET SESSION sql_log_bin = 0").await {
            Ok(_) => {}
            Err(WireError::Server { code: 1227, .. }) => {
                // Without the right to leave the binary log, temporary tables stay out
                // of it only when it is off or row-based.
                let (_, rows) = held
                    .conn
                    .query_rows(b"SELECT @@log_bin, @@binlog_format")
                    .await
                    .map_err(|e| e.to_client("(reading the node's binary log settings)"))?;
                let row = rows.into_iter().next().unwrap_or_default();
                let value = |i: usize| {
                    row.get(i)
                        .cloned()
                        .flatten()
                        .map(|v| String::from_utf8_lossy(&v).to_ascii_uppercase())
                        .unwrap_or_default()
                };
                if value(0) != "0" && value(1) != "ROW" {
                    self.give_back(held).await;
                    return Err(SqlError::new(
                        1227,
                        "42000",
                        format!(
                            "shardgate evaluates this statement over temporary tables on data node \
                             {}, which must stay out of its binary log ({} replicates them); grant \
                             shardgate's backend account BINLOG ADMIN (or SUPER), or use \
                             binlog_format = ROW",
                            pools.name,
                            value(1)
                        ),
                    ));
                }
            }
            Err(e) => return Err(e.to_client("(keeping temporary tables out of the binary log)")),
        }
        Ok(held)
    }

    /// Creates `t`'s temporary twin on `held` and copies its rows into it.
    async fn copy_table(
        &mut self,
        held: &mut Held,
        g: &Gather,
        t: &Gathered,
        rt: &Runtime,
        schema: &LogicalSchema,
        spent: &mut Spent,
    ) -> Result<(), Stop> {
        let columns = self.create_twin(held, g, t).await?;
        let copied: Vec<&Column> = columns.iter().collect();
        let projection: Vec<String> = copied.iter().map(|c| c.read(&t.alias)).collect();
        let targets: Vec<Target> = t
            .sources
            .iter()
            .map(|s| {
                let mut sql = format!(
                    "SELECT {} FROM {}.{} AS {}",
                    projection.join(", "),
                    scratch::quote_ident(&s.database),
                    scratch::quote_ident(&s.table),
                    scratch::quote_ident(&t.alias)
                );
                if let Some(f) = &t.filter {
                    sql.push_str(" WHERE ");
                    sql.push_str(f);
                }
                Target {
                    node: s.node,
                    shard: s.shard,
                    sql,
                }
            })
            .collect();
        let mut insert = RowsInsert::new(&g.database, &t.name, &columns, |head| {
            self.charset.encode(head).into_owned()
        });
        let mut in_flight = false;
        let mut parts = self
            .start_parts(&targets, true, rt, schema)
            .await
            .map_err(not_started)?;
        for target in &targets {
            let mut source = self
                .next_part(&mut parts, target, true, rt, schema)
                .await
                .map_err(not_started)?;
            let mut reader = ResultReader::default();
            let copied = self
                .copy_rows(
                    &mut source,
                    &mut reader,
                    (held, &mut in_flight),
                    &mut insert,
                    spent,
                )
                .await;
            match copied {
                Ok(warnings) => self.keep_or_release(source, warnings).await,
                Err(Stop::Lost(e)) => {
                    drop(source);
                    return Err(Stop::Lost(e));
                }
                Err(Stop::Sql(e)) => {
                    self.end_source(source, reader).await?;
                    return Err(Stop::Sql(e));
                }
            }
        }
        if !insert.is_empty() {
            send_batch(held, &mut in_flight, &insert.take(), &t.name).await?;
        }
        settle_batch(held, &mut in_flight, &t.name).await
    }

    /// Creates `t`'s temporary twin on `held`, empty; the columns a copy fills.
    async fn create_twin(
        &mut self,
        held: &mut Held,
        g: &Gather,
        t: &Gathered,
    ) -> Result<Vec<Column>, Stop> {
        let Some(first) = t.sources.first() else {
            return Err(Stop::Sql(SqlError::internal(format!(
                "shardgate planned no place to read `{}` from",
                t.name
            ))));
        };
        let (columns, create) = self
            .definition(first.node, &first.database, &first.table)
            .await?;
        let twin = scratch::temporary_twin(&create, &g.database, &t.name)
            .map_err(|e| SqlError::unsupported(format!("not supported by shardgate yet: {e}")))?;
        let wire = self.charset.encode(&twin).into_owned();
        held.conn.execute_ok(&wire).await.map_err(|e| {
            Stop::Sql(e.to_client(&format!("(making a temporary copy of `{}`)", t.name)))
        })?;
        Ok(columns)
    }

    /// COM_STMT_PREPARE of a gathered read: prepared where it would be evaluated,
    /// over empty copies of its tables, for the server's own metadata (parameters,
    /// columns and their types).
    pub(super) async fn prepare_gathered(
        &mut self,
        g: &Gather,
    ) -> Result<crate::backend::conn::PrepareAnswer, SqlError> {
        let mut held = self.evaluating_connection(g.node).await?;
        for t in g.tables.iter().filter(|t| !t.in_place) {
            if let Err(stop) = self.create_twin(&mut held, g, t).await {
                self.give_back(held).await;
                return Err(match stop {
                    Stop::Sql(e) => e,
                    Stop::Lost(e) => {
                        self.forget_connection_state();
                        e.to_client("(while preparing)")
                    }
                });
            }
        }
        let wire = self.charset.encode(&g.sql).into_owned();
        let answer = match held.conn.use_database(&g.database).await {
            Ok(()) => held.conn.prepare(&g.sql, &wire).await,
            Err(e) => Err(e),
        };
        // Reset before its next use: the copies and the statement go with it.
        self.give_back(held).await;
        answer.map_err(|e| e.to_client("(while preparing)"))
    }

    /// A source whose copy stopped: given back when its answer ended; inside a
    /// transaction read to its end, so that the transaction lives on; else closed
    /// (reading the rest could take as long as the copy itself).
    async fn end_source(&mut self, mut source: Held, mut reader: ResultReader) -> Result<(), Stop> {
        if reader.is_done() {
            self.keep_or_release(source, 0).await;
            return Ok(());
        }
        if !self.lease.must_keep() {
            drop(source);
            return Ok(());
        }
        loop {
            match reader.next(&mut source.conn).await {
                Ok(Event::End { warnings, .. }) => {
                    self.keep_or_release(source, warnings).await;
                    return Ok(());
                }
                Ok(Event::Err(_)) => {
                    self.keep_or_release(source, 1).await;
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) => {
                    drop(source);
                    return Err(Stop::Lost(e));
                }
            }
        }
    }

    /// Copies one source's rows into `insert`, sending a batch on `held` whenever
    /// one is full. The source's warnings, once its answer ended.
    async fn copy_rows(
        &mut self,
        source: &mut Held,
        reader: &mut ResultReader,
        (held, in_flight): (&mut Held, &mut bool),
        insert: &mut RowsInsert,
        spent: &mut Spent,
    ) -> Result<u16, Stop> {
        let budget = self.shared.settings.gather_budget;
        let lost = |e: WireError| match e {
            WireError::Server { .. } => Stop::Sql(e.to_client("")),
            other => Stop::Lost(other),
        };
        let mut width = 0usize;
        loop {
            match reader.next(&mut source.conn).await.map_err(lost)? {
                Event::Columns { count, .. } => {
                    width = usize::try_from(count).unwrap_or(usize::MAX);
                }
                Event::ColumnDef(_) | Event::ColumnsEnd(_) => {}
                Event::Row(p) => {
                    spent.rows += 1;
                    spent.bytes += p.len() as u64;
                    if spent.rows > budget.rows || spent.bytes > budget.bytes {
                        return Err(Stop::Sql(over_budget(budget)));
                    }
                    let row = Row::parse(p, width).ok_or(Stop::Lost(WireError::Protocol(
                        "malformed row from a shard",
                    )))?;
                    insert
                        .push((0..width).map(|i| row.get(i)))
                        .map_err(|e| Stop::Sql(SqlError::internal(e)))?;
                    if insert.len() >= BATCH_BYTES {
                        let batch = insert.take();
                        send_batch(held, in_flight, &batch, insert.table()).await?;
                    }
                }
                Event::End { warnings, .. } => return Ok(warnings),
                Event::Err(p) => {
                    return Err(Stop::Sql(WireError::from_err_packet(&p).to_client("")))
                }
                Event::Ok { .. } => {
                    return Err(Stop::Lost(WireError::Protocol(
                        "a shard answered a read without rows",
                    )))
                }
            }
        }
    }

    /// The columns of a physical table (generated ones left out: the twin computes
    /// them) and its `SHOW CREATE TABLE`, read where the session reads.
    async fn definition(
        &mut self,
        node: NodeId,
        database: &str,
        table: &str,
    ) -> Result<(Vec<Column>, String), Stop> {
        let mut held = self.checkout(node, true, false).await?;
        let columns_sql = format!(
            "SELECT COLUMN_NAME, DATA_TYPE, EXTRA FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY ORDINAL_POSITION",
            scratch::quote_literal(database),
            scratch::quote_literal(table)
        );
        // With no SQL mode, whatever the session's: modes like ORACLE drop the
        // table options (its character set and collation) from the answer.
        let create_sql = format!(
            "SET STATEMENT sql_mode = '' FOR SHOW CREATE TABLE {}.{}",
            scratch::quote_ident(database),
            scratch::quote_ident(table)
        );
        let (columns_sql, create_sql) = (
            self.charset.encode(&columns_sql).into_owned(),
            self.charset.encode(&create_sql).into_owned(),
        );
        let read = async {
            let (_, cols) = held.conn.query_rows(&columns_sql).await?;
            let (_, create) = held.conn.query_rows(&create_sql).await?;
            Ok::<_, WireError>((cols, create))
        }
        .await;
        let (cols, create) = match read {
            Ok(r) => {
                self.keep_or_release(held, 0).await;
                r
            }
            Err(e @ WireError::Server { .. }) => {
                self.keep_or_release(held, 0).await;
                return Err(Stop::Sql(e.to_client("")));
            }
            Err(e) => {
                drop(held);
                return Err(Stop::Lost(e));
            }
        };
        // Names and definitions come in the session's character set.
        let charset = &self.charset;
        let text = |v: &Option<Vec<u8>>| {
            let bytes = v.as_deref().unwrap_or_default();
            charset
                .text(bytes)
                .unwrap_or_else(|_| String::from_utf8_lossy(bytes).into_owned())
        };
        let generated = |extra: String| {
            let extra = extra.to_ascii_uppercase();
            [
                "VIRTUAL GENERATED",
                "STORED GENERATED",
                "PERSISTENT GENERATED",
            ]
            .iter()
            .any(|g| extra.contains(g))
        };
        let columns: Vec<Column> = cols
            .iter()
            .filter(|r| !generated(text(r.get(2).unwrap_or(&None))))
            .map(|r| Column {
                name: text(r.first().unwrap_or(&None)),
                kind: Kind::of(&text(r.get(1).unwrap_or(&None))),
            })
            .collect();
        let create = create
            .first()
            .and_then(|r| r.get(1))
            .map(text)
            .unwrap_or_default();
        if columns.is_empty() || create.is_empty() {
            return Err(Stop::Sql(SqlError::no_such_table(format!(
                "Table '{database}.{table}' doesn't exist"
            ))));
        }
        Ok((columns, create))
    }

    /// Runs the statement over the gathered tables and relays its answer; the end of
    /// the rows carries the session's own status.
    async fn evaluate(
        &mut self,
        mut held: Held,
        g: &Gather,
        schema: &LogicalSchema,
        seq: u8,
    ) -> Reply {
        if !self.may_write() {
            if let Err(e) = held.conn.refuse_writes().await {
                self.give_back(held).await;
                return self
                    .reply_gather_err(seq, &e.to_client("(making a connection refuse writes)"))
                    .await;
            }
        }
        let wire = self.charset.encode(&g.sql).into_owned();
        if let Err(e) = held.conn.send_query(Some(&g.database), &wire).await {
            self.give_back(held).await;
            return self
                .reply_gather_err(seq, &e.to_client("(the statement was not run)"))
                .await;
        }
        self.control.set_running(self.running_on(&held));
        let renames = Renames::database(&g.database, &schema.name);
        let mut seq = seq;
        let mut shapes = Vec::new();
        let relayed = self
            .relay_one(&mut held, &mut seq, (true, false), &mut shapes, &renames)
            .await;
        match relayed {
            Ok(Relayed::Done { warnings, .. }) => {
                self.give_back(held).await;
                if !shapes.is_empty() {
                    let mut out = BytesMut::new();
                    let end = eof_payload(self.deprecate_eof(), self.lease.status(), warnings);
                    write_packet(&mut out, &mut seq, &end);
                    self.stream.write_all(&out).await?;
                }
                Ok(Flow::Continue)
            }
            Ok(Relayed::Error) => {
                self.give_back(held).await;
                Ok(Flow::Continue)
            }
            Err(RelayError::Client(e)) => Err(e.into()),
            Err(RelayError::Backend(e, reached)) => {
                drop(held);
                let context = match reached {
                    Reached::Nothing => "(the statement was not run)",
                    _ => "(evaluating the statement)",
                };
                Ok(self.answer_cut(reached, seq, e.to_client(context)).await?)
            }
        }
    }
}

/// Sends one batch of copied rows, once the batch before it is in: one INSERT at a
/// time is outstanding, so the server inserts it while the next rows are read.
async fn send_batch(
    held: &mut Held,
    in_flight: &mut bool,
    sql: &[u8],
    table: &str,
) -> Result<(), Stop> {
    settle_batch(held, in_flight, table).await?;
    held.conn.send_query(None, sql).await.map_err(|e| {
        Stop::Sql(e.to_client(&format!(
            "(copying rows of `{table}` to evaluate the statement)"
        )))
    })?;
    *in_flight = true;
    Ok(())
}

/// Reads the answer to the outstanding batch, if any. A value the server had to
/// change (a warning: a string cut, a date it could not store) would make the copy
/// differ from the shard: an error, never a different answer.
async fn settle_batch(held: &mut Held, in_flight: &mut bool, table: &str) -> Result<(), Stop> {
    if !std::mem::take(in_flight) {
        return Ok(());
    }
    match held.conn.read_ok().await {
        Ok(ok) if ok.warnings == 0 => Ok(()),
        Ok(ok) => Err(Stop::Sql(SqlError::new(
            1105,
            "HY000",
            format!(
                "shardgate could not copy the rows of `{table}` exactly to evaluate the \
                 statement ({} values changed on the way); read the shards one at a time",
                ok.warnings
            ),
        ))),
        Err(e) => Err(Stop::Sql(e.to_client(&format!(
            "(copying rows of `{table}` to evaluate the statement)"
        )))),
    }
}

/// The error for a source that did not start.
fn not_started(e: super::fanout::StartError) -> Stop {
    use super::fanout::StartError;
    match e {
        StartError::Checkout(e) => Stop::Sql(e),
        StartError::Send(e @ WireError::Server { .. }) => Stop::Sql(e.to_client("")),
        StartError::Send(e) => Stop::Lost(e),
    }
}

fn over_budget(budget: crate::config::GatherBudget) -> SqlError {
    SqlError::new(
        1104,
        "42000",
        format!(
            "shardgate: this statement needs more than {} rows or {} MiB of the shards' rows \
             gathered on one node to evaluate it (server.gather_max_rows, \
             server.gather_max_bytes); narrow its WHERE to the rows it needs, or raise the budget",
            budget.rows,
            budget.bytes / (1024 * 1024)
        ),
    )
}
