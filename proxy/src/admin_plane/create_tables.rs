//! `CREATE MISSING TABLES`: the physical tables the staged layout needs (every shard
//! of a sharded table, every copy of a broadcast one, single tables on their node),
//! created where they are missing with the definition of one that exists. Run it
//! before LOAD CONFIG TO RUNTIME, so the new layout never meets a missing table.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rules::{LogicalSchema, NodeId, Runtime, Table, TableKind};

use super::{primary_conn, quote_ident as quote, AdminPlane, Reply, Who};
use crate::backend::BackendConn;
use crate::wire::SqlError;

/// How long CREATE MISSING TABLES may take.
const CREATE_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// A physical table: node, database, table.
type Physical = (NodeId, String, String);

impl AdminPlane {
    pub(super) async fn create_missing_tables(
        self: &Arc<Self>,
        who: &Who,
        sql: &str,
    ) -> Result<Reply, SqlError> {
        let staged = self.staged().await?;
        let layout = self.topology.validate(&staged).map_err(|errors| {
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            SqlError::internal(format!(
                "the staged config is invalid (VALIDATE CONFIG lists why): {}",
                list.join("; ")
            ))
        })?;
        let made = tokio::time::timeout(
            CREATE_LIMIT,
            create_missing(&layout.runtime, |_, _, _| true, self.connect_timeout),
        )
        .await
        .map_err(|_| {
            SqlError::internal(format!(
                "CREATE MISSING TABLES did not finish within {} s (a node too slow, or stopped); \
                 what it made is kept, run it again",
                CREATE_LIMIT.as_secs()
            ))
        })?;
        let outcome = format!("ok: {} created, {} failed", made.created, made.failed);
        self.note(who, sql, &outcome).await?;
        Ok(Reply::text(
            &["node", "database", "table", "result"],
            made.rows,
        ))
    }
}

/// What [`create_missing`] did: a row per table created or failed (node, database,
/// table, result), and the counts.
pub struct Created {
    pub rows: Vec<Vec<Option<String>>>,
    pub created: usize,
    pub failed: usize,
}

/// Creates the physical tables of `rt` that `wanted(schema, table, shard)` selects
/// (`shard` is `None` for broadcast and single tables) and that do not exist, each
/// like one of the same logical table that does.
pub async fn create_missing(
    rt: &Runtime,
    wanted: impl Fn(&LogicalSchema, &Table, Option<u32>) -> bool,
    timeout: std::time::Duration,
) -> Created {
    let mut nodes = Nodes {
        rt,
        timeout,
        conns: HashMap::new(),
        unreachable: HashMap::new(),
        tables: HashMap::new(),
    };
    let mut out = Created {
        rows: Vec::new(),
        created: 0,
        failed: 0,
    };
    for schema in rt.schemas.values() {
        for (logical, table) in &schema.tables {
            let db = |n: NodeId| schema.database_on(&rt.nodes, n).to_string();
            let needed: Vec<(Physical, Option<u32>)> = match &table.kind {
                TableKind::Sharded(s) => s
                    .shards
                    .iter()
                    .enumerate()
                    .map(|(i, l)| ((l.node, db(l.node), l.table.clone()), u32::try_from(i).ok()))
                    .collect(),
                TableKind::Broadcast { nodes } => nodes
                    .iter()
                    .map(|&n| ((n, db(n), logical.clone()), None))
                    .collect(),
                TableKind::Single { node } => vec![((*node, db(*node), logical.clone()), None)],
            };
            // Only the tables asked for are looked at first: the others' nodes are
            // asked only when a model is needed.
            let mut missing = Vec::new();
            for (p, _) in needed.iter().filter(|(_, s)| wanted(schema, table, *s)) {
                match nodes.exists(p).await {
                    Ok(true) => {}
                    Ok(false) => missing.push(p.clone()),
                    Err(e) => {
                        out.failed += 1;
                        out.rows
                            .push(row(rt, p, &format!("error: cannot look: {e}")));
                    }
                }
            }
            if missing.is_empty() {
                continue;
            }
            // The definition: the latest physical table that exists, else the logical
            // name on the schema's node (a single table about to be split).
            let home = (schema.node, db(schema.node), logical.clone());
            let mut model = None;
            for p in needed.iter().rev().map(|(p, _)| p).chain([&home]) {
                if nodes.exists(p).await.unwrap_or(false) {
                    model = Some(p.clone());
                    break;
                }
            }
            let Some(model) = model else {
                for p in &missing {
                    out.failed += 1;
                    out.rows.push(row(
                        rt,
                        p,
                        &format!(
                            "error: no table of `{}.{logical}` exists to copy the definition from; create one",
                            schema.name
                        ),
                    ));
                }
                continue;
            };
            let definition = match nodes.definition(&model).await {
                Ok(d) => d,
                Err(e) => {
                    out.failed += missing.len();
                    for p in &missing {
                        out.rows.push(row(
                            rt,
                            p,
                            &format!("error: cannot read the definition: {e}"),
                        ));
                    }
                    continue;
                }
            };
            for p in missing {
                match nodes.create(&p, &model.2, &definition).await {
                    Ok(()) => {
                        out.created += 1;
                        out.rows.push(row(
                            rt,
                            &p,
                            &format!("created like {}", describe(rt, &model)),
                        ));
                    }
                    Err(e) => {
                        out.failed += 1;
                        out.rows.push(row(rt, &p, &format!("error: {e}")));
                    }
                }
            }
        }
    }
    out
}

fn describe(rt: &Runtime, p: &Physical) -> String {
    format!("{}:{}.{}", rt.nodes[p.0].name, p.1, p.2)
}

fn row(rt: &Runtime, p: &Physical, result: &str) -> Vec<Option<String>> {
    vec![
        Some(rt.nodes[p.0].name.clone()),
        Some(p.1.clone()),
        Some(p.2.clone()),
        Some(result.to_string()),
    ]
}

/// One connection per node, and the tables each database holds, asked once.
struct Nodes<'a> {
    rt: &'a Runtime,
    timeout: std::time::Duration,
    conns: HashMap<NodeId, BackendConn>,
    unreachable: HashMap<NodeId, String>,
    tables: HashMap<(NodeId, String), HashSet<String>>,
}

impl Nodes<'_> {
    async fn conn(&mut self, node: NodeId) -> Result<&mut BackendConn, String> {
        // A node that did not answer is not waited for again in the same run.
        if let Some(e) = self.unreachable.get(&node) {
            return Err(e.clone());
        }
        if !self.conns.contains_key(&node) {
            match primary_conn(self.rt, node, self.timeout).await {
                Ok(c) => {
                    self.conns.insert(node, c);
                }
                Err(e) => {
                    self.unreachable.insert(node, e.to_string());
                    return Err(e.to_string());
                }
            }
        }
        self.conns
            .get_mut(&node)
            .ok_or_else(|| "no connection".to_string())
    }

    async fn exists(&mut self, p: &Physical) -> Result<bool, String> {
        let key = (p.0, p.1.clone());
        if !self.tables.contains_key(&key) {
            let names = super::tables_in(self.conn(p.0).await?, &p.1)
                .await
                .map_err(|e| e.to_string())?;
            self.tables.insert(key.clone(), names);
        }
        Ok(self.tables[&key].contains(&p.2.to_lowercase()))
    }

    /// `SHOW CREATE TABLE` of `p`, without its AUTO_INCREMENT counter.
    async fn definition(&mut self, p: &Physical) -> Result<String, String> {
        let sql = format!("SHOW CREATE TABLE {}.{}", quote(&p.1), quote(&p.2));
        let (_, rows) = self
            .conn(p.0)
            .await?
            .query_rows(sql.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let text = rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().nth(1).flatten())
            .ok_or("SHOW CREATE TABLE returned nothing")?;
        let text = String::from_utf8_lossy(&text).into_owned();
        Ok(text
            .split(' ')
            .filter(|w| !w.starts_with("AUTO_INCREMENT="))
            .collect::<Vec<_>>()
            .join(" "))
    }

    /// Creates `p` (and its database) from `definition`, which names `model_table`.
    async fn create(
        &mut self,
        p: &Physical,
        model_table: &str,
        definition: &str,
    ) -> Result<(), String> {
        let head = format!("CREATE TABLE {}", quote(model_table));
        let Some(body) = definition.strip_prefix(&head) else {
            return Err(format!(
                "unexpected definition: {}",
                definition.chars().take(60).collect::<String>()
            ));
        };
        let create_db = format!("CREATE DATABASE IF NOT EXISTS {}", quote(&p.1));
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {}.{}{body}",
            quote(&p.1),
            quote(&p.2)
        );
        let conn = self.conn(p.0).await?;
        conn.query_rows(create_db.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        conn.query_rows(create.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        if let Some(t) = self.tables.get_mut(&(p.0, p.1.clone())) {
            t.insert(p.2.to_lowercase());
        }
        Ok(())
    }
}
