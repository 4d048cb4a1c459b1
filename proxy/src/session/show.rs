//! SHOW / DESCRIBE on a schema with configured tables: logical table names in, logical
//! table names out.

use std::collections::BTreeMap;
use std::sync::Arc;

use router::show::{Show, TableAt};
use rules::runtime::LogicalSchema;
use rules::{NodeId, Runtime, TableKind};

use super::execute::Route;
use super::{Reply, Session};
use crate::wire::response::Mode;
use crate::wire::resultset::LocalColumn;
use crate::wire::SqlError;

/// Where a configured table can be looked at: a node and the physical name there.
fn sample_location(schema: &LogicalSchema, name: &str) -> Option<(NodeId, String)> {
    match &schema.tables.get(name)?.kind {
        TableKind::Sharded(s) => s.shards.first().map(|l| (l.node, l.table.clone())),
        TableKind::Broadcast { nodes } => nodes.first().map(|n| (*n, name.to_string())),
        TableKind::Single { node } => Some((*node, name.to_string())),
    }
}

fn quote(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

impl Session {
    /// Answers `show` if it is about this schema's tables; `None` leaves the statement
    /// to the normal path.
    pub(super) async fn show(
        &mut self,
        sql: &[u8],
        show: Show,
        rt: Arc<Runtime>,
        db: &str,
        seq: u8,
    ) -> Option<Reply> {
        let schema = rt.schemas.get(db)?;
        match show {
            Show::Tables {
                full,
                pattern,
                from,
            } => {
                // Another logical schema's tables, by their logical names too.
                let schema = match &from {
                    Some(other) => rt.schemas.get(other.as_str())?,
                    None => schema,
                };
                Some(
                    self.show_tables(schema, &rt, full, pattern.as_deref(), seq)
                        .await,
                )
            }
            Show::Columns(t) | Show::Index(t) => {
                let (node, physical) = sample_location(schema, &t.name)?;
                let sql = splice(sql, &t, &physical);
                let mut payload = vec![crate::wire::command::COM_QUERY];
                payload.extend_from_slice(&sql);
                let route = Route {
                    node,
                    database: Some(schema.database_on(&rt.nodes, node).to_string()),
                    read_only: false,
                    needs_previous: false,
                    pin: None,
                    drops_database: false,
                };
                Some(self.execute(&payload, seq, route, Mode::Query).await)
            }
            Show::CreateTable(t) => {
                let (node, physical) = sample_location(schema, &t.name)?;
                Some(
                    self.show_create(schema, &rt, &t, node, &physical, sql, seq)
                        .await,
                )
            }
        }
    }

    async fn show_tables(
        &mut self,
        schema: &LogicalSchema,
        rt: &Runtime,
        full: bool,
        pattern: Option<&str>,
        seq: u8,
    ) -> Reply {
        // Physical tables of every configured table, hidden from the listing.
        let mut hidden = std::collections::BTreeSet::new();
        for (name, table) in &schema.tables {
            hidden.insert(name.clone());
            if let TableKind::Sharded(s) = &table.kind {
                hidden.extend(s.shards.iter().map(|l| l.table.clone()));
            }
        }
        let db = schema.database_on(&rt.nodes, schema.node).to_string();
        let mut held = match self.checkout(schema.node, false, false).await {
            Ok(h) => h,
            Err(e) => return Err(e.into()),
        };
        let listed = match held.conn.use_database(&db).await {
            Ok(()) => held.conn.query_rows(b"SHOW FULL TABLES").await,
            Err(e) => Err(e),
        };
        let (_, rows) = match listed {
            Ok(r) => {
                self.keep_or_release(held, 0).await;
                r
            }
            Err(e) => {
                drop(held);
                return Err(e.to_client("while listing tables").into());
            }
        };
        let mut tables: BTreeMap<String, String> = BTreeMap::new();
        for row in rows {
            let name = row
                .first()
                .cloned()
                .flatten()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let kind = row
                .get(1)
                .cloned()
                .flatten()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            if !hidden.contains(&name) {
                tables.insert(name, kind);
            }
        }
        for name in schema.tables.keys() {
            tables.insert(name.clone(), "BASE TABLE".into());
        }
        let mut header = format!("Tables_in_{}", schema.name);
        if let Some(p) = pattern {
            header.push_str(&format!(" ({p})"));
            tables.retain(|name, _| super::local::like(p.as_bytes(), name.as_bytes()));
        }
        let mut columns = vec![LocalColumn::text(&header)];
        if full {
            columns.push(LocalColumn::text("Table_type"));
        }
        let rows: Vec<Vec<Option<String>>> = tables
            .into_iter()
            .map(|(n, k)| {
                if full {
                    vec![Some(n), Some(k)]
                } else {
                    vec![Some(n)]
                }
            })
            .collect();
        self.send_result_set(seq, "TABLE_NAMES", &columns, &rows)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn show_create(
        &mut self,
        schema: &LogicalSchema,
        rt: &Runtime,
        t: &TableAt,
        node: NodeId,
        physical: &str,
        sql: &[u8],
        seq: u8,
    ) -> Reply {
        let db = schema.database_on(&rt.nodes, node).to_string();
        let mut held = match self.checkout(node, false, false).await {
            Ok(h) => h,
            Err(e) => return Err(e.into()),
        };
        let answer = match held.conn.use_database(&db).await {
            Ok(()) => held.conn.query_rows(&splice(sql, t, physical)).await,
            Err(e) => Err(e),
        };
        let (names, rows) = match answer {
            Ok(r) => {
                self.keep_or_release(held, 0).await;
                r
            }
            Err(e) => {
                return Err(e.to_client("").into());
            }
        };
        let Some(row) = rows.into_iter().next() else {
            let e = SqlError::no_such_table(format!(
                "Table '{}.{}' doesn't exist",
                schema.name, t.name
            ));
            return Err(e.into());
        };
        let text = |i: usize| {
            row.get(i)
                .cloned()
                .flatten()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        let create = text(1).map(|c| c.replacen(&quote(physical), &quote(&t.name), 1));
        let columns: Vec<LocalColumn> =
            names.iter().take(2).map(|n| LocalColumn::text(n)).collect();
        self.send_result_set(seq, "", &columns, &[vec![Some(t.name.clone()), create]])
            .await
    }
}

fn splice(sql: &[u8], t: &TableAt, physical: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(sql.len() + physical.len());
    out.extend_from_slice(&sql[..t.start]);
    out.extend_from_slice(quote(physical).as_bytes());
    out.extend_from_slice(&sql[t.end..]);
    out
}
