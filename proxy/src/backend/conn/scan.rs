//! Queries shardgate runs for its own use (checks, the admin plane's row counts),
//! their rows read one at a time: a scan of a large table holds one row, never the
//! table.

use super::BackendConn;
use crate::wire::WireError;

/// A column of an internal query's result.
#[derive(Debug, Clone)]
pub struct ScanColumn {
    pub name: String,
    /// The MySQL column type byte (`MYSQL_TYPE_*`).
    pub column_type: u8,
}

impl BackendConn {
    /// Runs `sql` and hands each row's fields to `row`, in order. A statement that
    /// returns no rows gives no columns.
    pub async fn query_each(
        &mut self,
        sql: &[u8],
        mut row: impl FnMut(&[ScanColumn], &[Option<&[u8]>]),
    ) -> Result<Vec<ScanColumn>, WireError> {
        use crate::backend::results::{Event, ResultReader};
        self.send_query(None, sql).await?;
        let mut reader = ResultReader::default();
        let mut columns = Vec::new();
        loop {
            match reader.next(self).await? {
                Event::Ok { .. } => return Ok(Vec::new()),
                Event::Err(p) => return Err(WireError::from_err_packet(&p)),
                Event::Columns { .. } | Event::ColumnsEnd(_) => {}
                Event::ColumnDef(def) => columns.push(ScanColumn {
                    name: crate::wire::coldef::name(&def)
                        .ok_or(WireError::Protocol("bad column definition"))?,
                    column_type: crate::wire::coldef::shape(&def)
                        .ok_or(WireError::Protocol("bad column definition"))?
                        .column_type,
                }),
                Event::Row(p) => {
                    let parsed = crate::merge::Row::parse(p, columns.len())
                        .ok_or(WireError::Protocol("bad row"))?;
                    let fields: smallvec::SmallVec<[Option<&[u8]>; 4]> =
                        (0..columns.len()).map(|i| parsed.get(i)).collect();
                    row(&columns, &fields);
                }
                Event::End { .. } => return Ok(columns),
            }
        }
    }

    /// Runs a query for shardgate's own use and collects its (small) text result:
    /// column names and rows. Not for client data, which is streamed, never collected.
    pub async fn query_rows(
        &mut self,
        sql: &[u8],
    ) -> Result<(Vec<String>, Vec<Vec<Option<Vec<u8>>>>), WireError> {
        let mut rows = Vec::new();
        let columns = self
            .query_each(sql, |_, fields| {
                rows.push(fields.iter().map(|f| f.map(<[u8]>::to_vec)).collect());
            })
            .await?;
        Ok((columns.into_iter().map(|c| c.name).collect(), rows))
    }
}
