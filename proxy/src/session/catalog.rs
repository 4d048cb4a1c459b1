//! Catalog questions answered with logical names: `SELECT DATABASE()` and
//! information_schema queries about a logical schema (run on its node, with physical
//! names mapped back and the extra physical tables of sharded tables left out).

use bytes::BytesMut;
use router::catalog::CatalogQuery;
use tokio::io::AsyncWriteExt;

use super::{Flow, Session};
use crate::merge::Row;
use crate::wire::packet::write_packet;
use crate::wire::resultset::LocalColumn;
use crate::wire::{lenenc, SqlError, WireError};

impl Session {
    pub(super) async fn answer_database(&mut self, column: &str, seq: u8) -> std::io::Result<Flow> {
        let rows = vec![vec![self.db.clone()]];
        self.send_result_set(seq, "", &[LocalColumn::text(column)], &rows)
            .await
    }

    pub(super) async fn run_catalog(&mut self, q: CatalogQuery, seq: u8) -> std::io::Result<Flow> {
        let rt = self.lease.topo.runtime.clone();
        let Some(schema) = rt.schemas.get(&q.schema) else {
            self.send_err(seq, &SqlError::unknown_database(&q.schema))
                .await?;
            return Ok(Flow::Continue);
        };
        let node = schema.node;
        let database = schema.database_on(&rt.nodes, node).to_string();
        let read_only = !self.lease.must_keep();
        let mut held = match self.checkout(node, read_only, false).await {
            Ok(h) => h,
            Err(e) => {
                self.send_err(seq, &e).await?;
                return Ok(Flow::Continue);
            }
        };
        let deprecate = self.deprecate_eof();
        let mut seq = seq;
        let mut out = BytesMut::with_capacity(16 * 1024);
        let result: Result<(), WireError> = async {
            held.conn
                .send_query(Some(&database), &self.charset.encode(&q.sql))
                .await?;
            let head = held.conn.read_packet().await?;
            write_packet(&mut out, &mut seq, &head.payload);
            match head.payload.first() {
                Some(0x00) => {
                    let ok = crate::wire::generic::parse_ok(&head.payload);
                    held.conn.settle(ok.map(|o| o.status));
                    return Ok(());
                }
                Some(0xFF) => {
                    held.conn.settle(None);
                    return Ok(());
                }
                _ => {}
            }
            let (columns, _) =
                lenenc::read_int(&head.payload).ok_or(WireError::Protocol("bad column count"))?;
            let header = columns as usize + usize::from(!deprecate);
            for _ in 0..header {
                let p = held.conn.read_packet().await?;
                write_packet(&mut out, &mut seq, &p.payload);
            }
            loop {
                let p = held.conn.read_packet().await?;
                let len = p.payload.len();
                let end = matches!(p.payload.first(), Some(0xFF))
                    || (p.payload.first() == Some(&0xFE)
                        && ((deprecate && len < 0xFF_FFFF) || len < 9));
                if end {
                    let status = match p.payload.first() {
                        Some(0xFF) => None,
                        _ => held.conn.end_status(&p.payload),
                    };
                    held.conn.settle(status);
                    write_packet(&mut out, &mut seq, &p.payload);
                    return Ok(());
                }
                let Some(mut row) = Row::parse(p.payload.clone(), columns as usize) else {
                    write_packet(&mut out, &mut seq, &p.payload);
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
                write_packet(&mut out, &mut seq, &row.encode(columns as usize));
                if out.len() >= 16 * 1024 {
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
                if out.is_empty() {
                    self.send_err(seq, &e.to_client("(reading the catalog)"))
                        .await?;
                    return Ok(Flow::Continue);
                }
                tracing::warn!(conn = self.id, error = %e, "backend failed mid-response; closing client connection");
                Ok(Flow::Close)
            }
        }
    }
}
