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
use router::plan::LoadSplit;
use router::Plan;
use rules::runtime::LogicalSchema;
use rules::Runtime;
use tokio::io::AsyncWriteExt;

use super::global::Flight;
use super::multi_write::Tally;
use super::{Flow, Held, Reply, Session};
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
    pub(super) async fn run_load(
        &mut self,
        plan: &Plan,
        load: &LoadSplit,
        rt: &Runtime,
        schema: &LogicalSchema,
        seq: u8,
    ) -> Reply {
        let in_client_txn = self.lease.in_transaction
            || !self.lease.autocommit
            || !self.lease.pending_txn.is_empty();
        if in_client_txn {
            return Err(SqlError::unsupported(format!(
                "not supported by shardgate yet: LOAD DATA into `{}` inside a transaction \
                 (each of its shards or copies is loaded on a connection of its own, \
                 committed together); run it with autocommit on, outside the transaction",
                load.table
            ))
            .into());
        }
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
            let (end_seq, placed) = match self.stream_file(load, schema, &mut parts).await {
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
        schema: &LogicalSchema,
        parts: &mut [Part],
    ) -> Result<(u8, Result<(), SqlError>), ()> {
        let max = self.shared.settings.max_allowed_packet;
        let mut pending = BytesMut::new();
        let mut placed: Result<(), SqlError> = Ok(());
        let mut line_no: u64 = 0;
        loop {
            let packet = match self.reader.read(&mut self.stream, max).await {
                Ok(Some(p)) => p,
                Ok(None) | Err(_) => return Err(()),
            };
            let last = packet.payload.is_empty();
            pending.extend_from_slice(&packet.payload);
            // After a line could not be placed the rest of the file is read and
            // dropped: the client must still send it all.
            while placed.is_ok() && !pending.is_empty() {
                let index = load.key_field.unwrap_or(usize::MAX);
                let Scan::Line { len, key } = load.format.scan(&pending, index, last) else {
                    break;
                };
                line_no += 1;
                if line_no > load.ignore_lines {
                    let line = &pending[..len];
                    match load.key_field {
                        None => {
                            for part in parts.iter_mut() {
                                part.push(line).await;
                            }
                        }
                        Some(_) => match load.target_of(&key, schema, line_no) {
                            Ok(i) => match parts.get_mut(i) {
                                Some(part) => part.push(line).await,
                                None => {
                                    placed = Err(SqlError::internal(format!(
                                        "shardgate has no connection for shard {i}"
                                    )))
                                }
                            },
                            Err(e) => placed = Err(super::sharded::route_error(&e)),
                        },
                    }
                }
                pending.advance(len);
            }
            if placed.is_err() {
                pending.clear();
            } else if pending.len() > max {
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
