//! Catalog questions answered with logical names: `SELECT DATABASE()` and
//! information_schema queries about a logical schema (run on its node, with physical
//! names mapped back and the extra physical tables of sharded tables left out).

use bytes::BytesMut;
use router::catalog::CatalogQuery;
use tokio::io::AsyncWriteExt;

use super::{Flow, Reply, Session};
use crate::backend::results::{Event, ResultReader};
use crate::merge::Row;
use crate::wire::packet::write_packet;
use crate::wire::resultset::LocalColumn;
use crate::wire::{SqlError, WireError};

impl Session {
    pub(super) async fn answer_database(&mut self, column: &str, seq: u8) -> Reply {
        let rows = vec![vec![self.db.clone()]];
        self.send_result_set(seq, "", &[LocalColumn::text(column)], &rows)
            .await
    }

    pub(super) async fn run_catalog(&mut self, q: CatalogQuery, seq: u8) -> Reply {
        let rt = self.lease.topo.runtime.clone();
        let Some(schema) = rt.schemas.get(&q.schema) else {
            return Err(SqlError::unknown_database(&q.schema).into());
        };
        let node = schema.node;
        let database = schema.database_on(&rt.nodes, node).to_string();
        let read_only = !self.lease.must_keep();
        let mut held = self.checkout(node, read_only, false).await?;
        let mut seq = seq;
        let mut out = BytesMut::with_capacity(16 * 1024);
        // Some of the answer reached the client: an error can no longer be the answer.
        let mut sent = false;
        let result: Result<(), WireError> = async {
            held.conn
                .send_query(Some(&database), &self.charset.encode(&q.sql))
                .await?;
            let mut reader = ResultReader::default();
            let mut columns = 0usize;
            loop {
                let event = reader.next(&mut held.conn).await?;
                // A batch's next result follows on the same connection.
                let more = ResultReader::more_results(&event);
                let p = match event {
                    Event::Ok { payload, .. }
                    | Event::Err(payload)
                    | Event::End { payload, .. } => {
                        write_packet(&mut out, &mut seq, &payload);
                        if more {
                            continue;
                        }
                        return Ok(());
                    }
                    Event::Columns { count, payload } => {
                        columns = usize::try_from(count).unwrap_or(usize::MAX);
                        write_packet(&mut out, &mut seq, &payload);
                        continue;
                    }
                    Event::ColumnDef(p) | Event::ColumnsEnd(p) => {
                        write_packet(&mut out, &mut seq, &p);
                        continue;
                    }
                    Event::Row(p) => p,
                };
                let Some(mut row) = Row::parse(p.clone(), columns) else {
                    write_packet(&mut out, &mut seq, &p);
                    continue;
                };
                let values: Vec<Option<Vec<u8>>> = (0..row.len())
                    .map(|i| row.get(i).map(<[u8]>::to_vec))
                    .collect();
                if values
                    .iter()
                    .flatten()
                    .any(|v| q.hidden.iter().any(|h| h.as_bytes() == v.as_slice()))
                {
                    continue;
                }
                for (i, v) in values.iter().enumerate() {
                    let renamed = v
                        .as_ref()
                        .and_then(|v| q.renames.iter().find(|(p, _)| p.as_bytes() == v.as_slice()));
                    if let Some((_, logical)) = renamed {
                        row.set(i, Some(bytes::Bytes::copy_from_slice(logical.as_bytes())));
                    }
                }
                write_packet(&mut out, &mut seq, &row.encode(columns));
                if out.len() >= 16 * 1024 {
                    sent = true;
                    self.stream.write_all(&out).await?;
                    out.clear();
                }
            }
        }
        .await;
        match result {
            Ok(()) => {
                self.stream.write_all(&out).await?;
                self.keep_or_release(held, 0).await;
                Ok(Flow::Continue)
            }
            Err(e) => {
                self.forget_connection_state();
                if !sent {
                    return Err(e.to_client("(reading the catalog)").into());
                }
                tracing::warn!(conn = self.id, error = %e, "backend failed mid-response; closing client connection");
                Ok(Flow::Close)
            }
        }
    }
}
