//! LOAD DATA LOCAL into a sharded or broadcast table: each target (a shard's table,
//! or a broadcast table's copy) runs the statement on a connection of its own, and
//! each line of the client's file goes, byte for byte, to the target its shard key
//! picks (to every copy for a broadcast table). Lines are cut as the server cuts them
//! (`router::load_format`) while the file streams, so shardgate holds one partial line
//! and a small buffer per target, whatever the file's size; a target that reads slowly
//! slows the client down.
//!
//! The load is one statement: every target's part runs in a transaction of its own
//! (an XA branch in `xa` mode), committed only when every part succeeded; otherwise
//! every part is rolled back. Inside a client transaction it is refused: the parts
//! need connections of their own, which the client's transaction does not span.

use bytes::{Buf, BytesMut};
use router::load_format::Scan;
use router::load_key::{ColumnFacts, KeyType};
use router::plan::LoadSplit;
use router::Plan;
use rules::runtime::LogicalSchema;
use rules::Runtime;
use tokio::io::AsyncWriteExt;

use super::global::Flight;
use super::multi_write::Tally;
use super::{Flow, Held, Reply, Session};
use crate::scratch::quote_literal;
use crate::wire::generic::{self, LOCAL_INFILE};
use crate::wire::packet::write_packet;
use crate::wire::{SqlError, WireError};

/// Lines for one target are sent in packets of about this size.
const CHUNK: usize = 64 * 1024;

/// One target's part of the load.
struct Part {
    held: Held,
    /// Sequence id of the next file packet on this connection.
    seq: u8,
    out: Vec<u8>,
    /// Its XA branch, in xa mode.
    xid: Option<String>,
    /// What went wrong on this connection (the load is then rolled back).
    broken: Option<WireError>,
}

impl Part {
    /// Sends what is buffered in packets of at most [`CHUNK`] bytes (the server reads
    /// the file as a stream of bytes: a packet may end inside a line), so that one
    /// packet is one sequence id however long a line is.
    async fn flush(&mut self) {
        for piece in self.out.chunks(CHUNK) {
            if self.broken.is_some() {
                break;
            }
            if let Err(e) = self.held.conn.send_packet(self.seq, piece).await {
                self.broken = Some(e);
            }
            self.seq = self.seq.wrapping_add(1);
        }
        self.out.clear();
    }

    async fn push(&mut self, line: &[u8]) {
        self.out.extend_from_slice(line);
        if self.out.len() >= CHUNK {
            self.flush().await;
        }
    }
}

impl Session {
    /// Runs `plan`'s parts of a LOAD DATA LOCAL (see the module comment) and answers
    /// with one OK: the rows of every shard, or one copy's.
    pub(super) async fn run_load(
        &mut self,
        plan: &Plan,
        load: &LoadSplit,
        rt: &Runtime,
        schema: &LogicalSchema,
        seq: u8,
    ) -> Reply {
        if self.lease.in_client_transaction() || self.lease.must_keep() {
            return Err(SqlError::unsupported(format!(
                "not supported by shardgate yet: LOAD DATA into `{}` inside a transaction, or in \
                 a session whose state (temporary tables, locks, user variables) lives on one \
                 connection: each of its shards or copies is loaded on a connection of its own; \
                 run it with autocommit on, outside the transaction, in a fresh session",
                load.table
            ))
            .into());
        }
        let key = self.load_key_type(plan, load, rt, schema).await?;
        let flight = match &self.shared.xa {
            Some(coord) if plan.targets.len() > 1 && self.xa_wanted(None) => {
                Some(Flight::new(coord))
            }
            _ => None,
        };
        let mut parts: Vec<Part> = Vec::with_capacity(plan.targets.len());
        let mut failure: Option<SqlError> = None;
        let mut file_request: Option<bytes::Bytes> = None;
        for target in &plan.targets {
            let name = format!(
                "{}.{}",
                self.node_name(target.node),
                target.shard.unwrap_or(0)
            );
            let xid = flight.as_ref().map(|f| f.xid(&name));
            let started = self.start_load_part(target, xid, rt, schema).await;
            match started {
                Ok((part, request)) => {
                    file_request.get_or_insert(request);
                    parts.push(part);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        // The client is asked for its file once every part is waiting for it.
        // The answer follows the client's last packet.
        let mut reply_seq = seq;
        if let (None, Some(request)) = (&failure, &file_request) {
            let (mut out, mut seq) = (BytesMut::new(), seq);
            write_packet(&mut out, &mut seq, request);
            self.stream.write_all(&out).await?;
            let streamed = self
                .stream_file(load, key.as_ref(), schema, &mut parts)
                .await;
            let (end_seq, placed) = match streamed {
                Ok(streamed) => streamed,
                Err(()) => return Ok(Flow::Close),
            };
            reply_seq = end_seq.wrapping_add(1);
            if let Err(e) = placed {
                failure = Some(e);
            }
        }
        // Every part that asked for the file is told it has ended, and answers.
        let mut answers = Vec::with_capacity(parts.len());
        for part in &mut parts {
            part.flush().await;
            if part.broken.is_none() {
                if let Err(e) = part.held.conn.send_packet(part.seq, &[]).await {
                    part.broken = Some(e);
                }
            }
            if part.broken.is_none() {
                match part.held.conn.read_ok().await {
                    Ok(ok) => answers.push(ok),
                    Err(e @ WireError::Server { .. }) => {
                        failure.get_or_insert(e.to_client("(loading the file)"));
                    }
                    Err(e) => part.broken = Some(e),
                }
            }
            if let Some(e) = &part.broken {
                failure.get_or_insert(e.to_client("(loading the file)"));
            }
        }
        let tally = match load.key_field {
            Some(_) => Tally::Shards(None),
            None => Tally::Copies,
        };
        let (affected, _, warnings) = tally.count(&answers);
        self.finish_load(parts, flight, failure, (affected, warnings), reply_seq)
            .await
    }

    /// Opens one target's transaction and sends its statement; the server's request
    /// for the file is returned (the client gets the first one).
    async fn start_load_part(
        &mut self,
        target: &router::Target,
        xid: Option<String>,
        rt: &Runtime,
        schema: &LogicalSchema,
    ) -> Result<(Part, bytes::Bytes), SqlError> {
        let mut held = self
            .detached_primary(target.node, "to load the file")
            .await?;
        let database = schema.database_on(&rt.nodes, target.node).to_string();
        let open = match &xid {
            Some(x) => format!("XA START {x}"),
            None => "START TRANSACTION".to_string(),
        };
        let sql = self.charset.encode(&target.sql).into_owned();
        let asked = async {
            held.conn.use_database(&database).await?;
            held.conn.execute_ok(open.as_bytes()).await?;
            held.conn.send_query(None, &sql).await?;
            held.conn.read_packet().await
        }
        .await;
        let fail = |e: WireError| e.to_client("(starting the load; nothing was loaded)");
        match asked {
            Ok(p) if p.payload.first() == Some(&LOCAL_INFILE) => {
                let part = Part {
                    held,
                    seq: p.seq.wrapping_add(1),
                    out: Vec::new(),
                    xid,
                    broken: None,
                };
                Ok((part, p.payload))
            }
            Ok(p) => {
                let e = match generic::parse_err(&p.payload) {
                    Some((code, state, message)) => SqlError::new(code, &state, message),
                    None => SqlError::internal("the server did not ask for the file"),
                };
                drop(held);
                Err(e)
            }
            Err(e) => Err(fail(e)),
        }
    }

    /// Relays the client's file, line by line, to the parts. `Err(())`: the client
    /// is gone. Otherwise the sequence id of the client's last packet, and whether
    /// every line could be placed.
    async fn stream_file(
        &mut self,
        load: &LoadSplit,
        key: Option<&KeyType>,
        schema: &LogicalSchema,
        parts: &mut [Part],
    ) -> Result<(u8, Result<(), SqlError>), ()> {
        let max = self.shared.settings.max_allowed_packet;
        let mut pending = BytesMut::new();
        let mut placed: Result<(), SqlError> = Ok(());
        let mut line_no: u64 = 0;
        // A line not whole yet is scanned again only once its bytes have doubled:
        // a long line costs linear time, however small the client's packets.
        let mut scan_at = 0;
        // The last scan found the line at the start of `pending` unfinished.
        let mut incomplete = false;
        loop {
            let packet = match self.reader.read(&mut self.stream, max).await {
                Ok(Some(p)) => p,
                Ok(None) | Err(_) => return Err(()),
            };
            let last = packet.payload.is_empty();
            pending.extend_from_slice(&packet.payload);
            // After a line could not be placed the rest of the file is read and
            // dropped: the client must still send it all.
            while placed.is_ok() && !pending.is_empty() && (last || pending.len() >= scan_at) {
                let len = if line_no < load.ignore_lines {
                    // Skipped as the server skips a line.
                    load.format.skip_line(&pending, last)
                } else if let (Some(index), Some(key)) = (load.key_field, key) {
                    match load.format.scan(&pending, index, load.fields, last) {
                        Scan::Line { len, key: field } => {
                            match load.target_of(&field, key, schema, line_no + 1) {
                                Ok(i) => match parts.get_mut(i) {
                                    Some(part) => part.push(&pending[..len]).await,
                                    None => {
                                        placed = Err(SqlError::internal(format!(
                                            "shardgate has no connection for shard {i}"
                                        )))
                                    }
                                },
                                Err(e) => placed = Err(super::sharded::route_error(&e)),
                            }
                            Some(len)
                        }
                        Scan::NeedMore => None,
                    }
                } else {
                    // Every copy gets the rest of the file as it comes.
                    for part in parts.iter_mut() {
                        part.push(&pending).await;
                    }
                    pending.clear();
                    break;
                };
                match len {
                    Some(len) => {
                        line_no += 1;
                        pending.advance(len);
                        scan_at = 0;
                        incomplete = false;
                    }
                    None => {
                        // Never past the limit: a line over it is found as it passes.
                        scan_at = pending.len().saturating_mul(2).max(CHUNK).min(max);
                        incomplete = true;
                        break;
                    }
                }
            }
            if placed.is_err() {
                pending.clear();
            } else if incomplete && pending.len() > max {
                placed = Err(SqlError::new(
                    1153,
                    "08S01",
                    format!(
                        "line {} of the file is longer than max_allowed_packet ({max} bytes)",
                        line_no + 1
                    ),
                ));
                pending.clear();
            }
            if last {
                return Ok((packet.seq, placed));
            }
        }
    }

    /// The shard column's type (a sharded table's), read from the first shard's
    /// table; and the file's character set must be one whose lines shardgate cuts as
    /// the server does.
    async fn load_key_type(
        &mut self,
        plan: &Plan,
        load: &LoadSplit,
        rt: &Runtime,
        schema: &LogicalSchema,
    ) -> Result<Option<KeyType>, SqlError> {
        let Some(first) = plan.targets.first() else {
            return Err(SqlError::internal(
                "shardgate planned the load onto no table",
            ));
        };
        // The first shard's table (or the broadcast table itself).
        let (column, table) = match schema.tables.get(&load.table).map(|t| &t.kind) {
            Some(rules::TableKind::Sharded(t)) => (
                t.column.clone(),
                t.shards
                    .first()
                    .map_or_else(|| load.table.clone(), |s| s.table.clone()),
            ),
            _ => (String::new(), load.table.clone()),
        };
        let database = schema.database_on(&rt.nodes, first.node).to_string();
        let sql = format!(
            "SELECT @@character_set_database, DATA_TYPE, COLUMN_TYPE, CHARACTER_MAXIMUM_LENGTH, \
             IS_NULLABLE, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, EXTRA \
             FROM (SELECT 1) one LEFT JOIN information_schema.COLUMNS ON \
             TABLE_SCHEMA = {} AND TABLE_NAME = {} AND COLUMN_NAME = {}",
            quote_literal(&database),
            quote_literal(&table),
            quote_literal(&column)
        );
        let mut held = self
            .detached_primary(first.node, "to load the file")
            .await?;
        let read = match held.conn.use_database(&database).await {
            Ok(()) => held.conn.query_rows(sql.as_bytes()).await,
            Err(e) => Err(e),
        };
        self.give_back(held).await;
        let (_, rows) = read.map_err(|e| e.to_client("(reading the shard column's type)"))?;
        let row = rows.into_iter().next().unwrap_or_default();
        let text = |i: usize| {
            row.get(i)
                .cloned()
                .flatten()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        };
        let charset = load
            .charset
            .clone()
            .or_else(|| text(0))
            .unwrap_or_default()
            .to_ascii_lowercase();
        if ["big5", "cp932", "gbk", "gb18030", "sjis"].contains(&charset.as_str()) {
            return Err(SqlError::unsupported(format!(
                "not supported by shardgate yet: LOAD DATA into `{}` of a file in {charset}, \
                 whose characters may hold the bytes of a backslash; name another character set \
                 (CHARACTER SET utf8mb4)",
                load.table
            )));
        }
        if load.key_field.is_none() {
            return Ok(None);
        }
        let (Some(data_type), Some(column_type), Some(nullable)) = (text(1), text(2), text(4))
        else {
            return Err(SqlError::no_such_table(format!(
                "Table '{}.{}' has no shard column `{column}` on data node {}",
                schema.name,
                load.table,
                self.node_name(first.node)
            )));
        };
        let number = |i: usize| text(i).and_then(|m| m.parse().ok());
        let key = KeyType::from_columns(&ColumnFacts {
            data_type,
            column_type,
            max_chars: number(3),
            nullable: nullable.eq_ignore_ascii_case("yes"),
            numeric_precision: number(5),
            numeric_scale: number(6),
            datetime_precision: number(7),
            extra: text(8).unwrap_or_default(),
        });
        if let Some(t) = key.unchecked() {
            return Err(SqlError::unsupported(format!(
                "not supported by shardgate yet: LOAD DATA into `{}`, whose shard column \
                 `{column}` is of type {t}: shardgate cannot tell which values the server \
                 would store changed; INSERT the rows",
                load.table
            )));
        }
        Ok(Some(key))
    }

    /// Commits every part (or rolls every part back) and answers the client.
    async fn finish_load(
        &mut self,
        parts: Vec<Part>,
        flight: Option<Flight>,
        failure: Option<SqlError>,
        (affected, warnings): (u64, u16),
        seq: u8,
    ) -> Reply {
        let mut helds = Vec::with_capacity(parts.len());
        let mut xids = Vec::with_capacity(parts.len());
        for part in parts {
            if part.broken.is_some() {
                // Its server rolls its part back when the connection closes.
                drop(part.held);
                continue;
            }
            xids.push(part.xid.unwrap_or_default());
            helds.push(part.held);
        }
        if let Some(mut e) = failure {
            for (h, xid) in helds.iter_mut().zip(&xids) {
                match &flight {
                    Some(_) => super::commit::xa_rollback(h, xid, false).await,
                    None => {
                        if h.conn.execute_ok(b"ROLLBACK").await.is_err() {
                            h.conn.discard();
                        }
                    }
                }
            }
            for h in helds {
                self.give_back(h).await;
            }
            e.message
                .push_str(" (shardgate rolled back the load on every shard)");
            return self.reply_load_err(seq, &e).await;
        }
        let committed = match &flight {
            Some(f) => {
                let wrote = vec![true; helds.len()];
                self.commit_two_phase(f, &mut helds, &xids, &wrote).await
            }
            None => self.commit_parts(&mut helds).await,
        };
        for h in helds {
            self.give_back(h).await;
        }
        if let Err(e) = committed {
            return self.reply_load_err(seq, &e).await;
        }
        self.send_write_ok(affected, 0, warnings, seq).await
    }

    async fn reply_load_err(&mut self, seq: u8, e: &SqlError) -> Reply {
        self.outcome.failed = true;
        self.send_err(seq, e).await?;
        Ok(Flow::Continue)
    }

    /// COMMIT on each part in turn; a failure after some committed says so.
    async fn commit_parts(&mut self, helds: &mut [Held]) -> Result<(), SqlError> {
        let total = helds.len();
        let mut failed: Option<(usize, SqlError)> = None;
        for (i, h) in helds.iter_mut().enumerate() {
            if failed.is_some() {
                if h.conn.execute_ok(b"ROLLBACK").await.is_err() {
                    h.conn.discard();
                }
                continue;
            }
            if let Err(e) = h.conn.execute_ok(b"COMMIT").await {
                h.conn.discard();
                failed = Some((i, e.to_client("(committing the load)")));
            }
        }
        match failed {
            None => Ok(()),
            Some((0, e)) => Err(e),
            Some((committed, e)) => Err(SqlError::new(
                1180,
                "HY000",
                format!(
                    "shardgate: the load committed on {committed} of {total} shards and failed \
                     on the next: {}; the shards now hold part of the file \
                     (transactions = \"xa\" makes this atomic)",
                    e.message
                ),
            )),
        }
    }
}
