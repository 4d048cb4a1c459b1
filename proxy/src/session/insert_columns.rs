//! INSERT (or LOAD DATA) into a sharded table without a column list: the server
//! would take the table's columns in their order (invisible ones left out), so
//! shardgate reads that list from the table's first shard, writes it into the
//! statement and routes the result like any other. It is read for every such
//! statement, never cached: a column list from before an ALTER would put values into
//! the wrong columns.

use std::sync::Arc;

use rules::{Runtime, TableKind};

use super::{Reply, Session};
use crate::scratch::{quote_ident, quote_literal};
use crate::wire::{SqlError, WireError};

impl Session {
    pub(super) async fn insert_with_columns(
        &mut self,
        text: &str,
        place: (&str, usize),
        rt: Arc<Runtime>,
        db: &str,
        seq: u8,
    ) -> Reply {
        let listed = self.with_column_list(text, place, &rt, db).await?;
        let Some(schema) = rt.schemas.get(db) else {
            return Err(SqlError::unknown_database(db).into());
        };
        let planned = if listed.len() >= super::planning::OFF_THREAD {
            let (sql, name) = (listed.as_bytes().to_vec(), db.to_string());
            super::planning::plan(sql, rt.clone(), name, self.reading).await
        } else {
            router::plan(listed.as_bytes(), schema, &rt, self.reading)
        };
        match planned {
            Ok(Some(plan)) => {
                self.run_plan(&plan, listed.as_bytes(), false, rt.clone(), db, seq)
                    .await
            }
            Ok(None) => Err(SqlError::internal(
                "shardgate could not plan the statement with its columns",
            )
            .into()),
            Err(e) => Err(super::sharded::route_error(&e).into()),
        }
    }

    /// `text` with the column list of `table` (sharded, in schema `db`) put in at
    /// byte `at`, as the server would take the columns now.
    pub(super) async fn with_column_list(
        &mut self,
        text: &str,
        (table, at): (&str, usize),
        rt: &Runtime,
        db: &str,
    ) -> Result<String, SqlError> {
        let Some(schema) = rt.schemas.get(db) else {
            return Err(SqlError::unknown_database(db));
        };
        let shard = match schema.tables.get(table).map(|t| &t.kind) {
            Some(TableKind::Sharded(s)) => s.shards.first(),
            _ => None,
        };
        let (Some(shard), true) = (shard, text.is_char_boundary(at)) else {
            return Err(SqlError::internal(format!(
                "shardgate could not place the column list of the statement into `{table}`"
            )));
        };
        let database = schema.database_on(&rt.nodes, shard.node).to_string();
        let sql = format!(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} \
             AND TABLE_NAME = {} AND EXTRA NOT LIKE '%INVISIBLE%' ORDER BY ORDINAL_POSITION",
            quote_literal(&database),
            quote_literal(&shard.table)
        );
        // From the primary (a replica behind an ALTER would give the old order), on a
        // pool connection as it is lent: the catalog read opens nothing of the
        // session's, needs none of its settings, and leaves the connection clean.
        let mut held = self
            .pooled_primary(shard.node, "to read the table's columns")
            .await?;
        let read = held.conn.query_rows(sql.as_bytes()).await;
        let rows = match read {
            Ok((_, rows)) => {
                self.give_back(held).await;
                rows
            }
            Err(e @ WireError::Server { .. }) => {
                self.give_back(held).await;
                return Err(e.to_client(""));
            }
            Err(e) => {
                drop(held);
                return Err(e.to_client("(reading the table's columns; the statement was not run)"));
            }
        };
        let names: Vec<String> = rows
            .iter()
            .filter_map(|r| r.first().cloned().flatten())
            .map(|v| quote_ident(&String::from_utf8_lossy(&v)))
            .collect();
        if names.is_empty() {
            return Err(SqlError::no_such_table(format!(
                "Table '{db}.{table}' doesn't exist"
            )));
        }
        let mut listed = String::with_capacity(text.len() + 64);
        listed.push_str(&text[..at]);
        listed.push_str(&format!(" ({})", names.join(", ")));
        listed.push_str(&text[at..]);
        Ok(listed)
    }
}
