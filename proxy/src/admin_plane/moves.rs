//! Rows a new layout would not find: before a layout is put in effect, every logical
//! table whose placement changes is read where its rows are now, and each row is
//! checked against where the new layout will look for it. shardgate does not move
//! rows; a layout that would leave some behind is refused, with the count.
//!
//! Where the new layout looks for a row: a sharded table at its key's shard; a single
//! table at its one place; a broadcast table at every copy (a read may go to any).
//! Tables no config names are single tables on their schema's node, so moving a
//! schema to another node is checked table by table too.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rules::{Algorithm, ClusterConfig, Runtime, TableKind, Value};

use super::quote_ident as quote;
use crate::topology::Topology;
use crate::wire::WireError;

/// How much of each table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// At most this many rows per physical table: a share, for VALIDATE CONFIG.
    Sample(u64),
    /// Every row: the count LOAD CONFIG TO RUNTIME refuses on.
    Full,
}

/// One logical table whose rows the new layout would not all find.
#[derive(Debug, Clone)]
pub struct Left {
    /// `schema.table`.
    pub table: String,
    /// Rows read.
    pub read: u64,
    /// Rows among them the new layout would not find.
    pub left: u64,
    /// Where the rows are now, and how the placement changes.
    pub detail: String,
}

/// A physical table: node name, database, table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Loc {
    node: String,
    database: String,
    table: String,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}.{}", self.node, self.database, self.table)
    }
}

/// Where a logical table's rows live under one layout.
#[derive(Debug, Clone)]
enum Place {
    Sharded {
        column: String,
        /// The rule as configured: equal rules place alike.
        rule: String,
        algorithm: Arc<Algorithm>,
        shards: Vec<Loc>,
    },
    Broadcast(Vec<Loc>),
    Single(Loc),
}

impl Place {
    fn locations(&self) -> Vec<Loc> {
        match self {
            Place::Sharded { shards, .. } => {
                let set: BTreeSet<Loc> = shards.iter().cloned().collect();
                set.into_iter().collect()
            }
            Place::Broadcast(copies) => copies.clone(),
            Place::Single(l) => vec![l.clone()],
        }
    }

    /// The same rows in the same places.
    fn same(&self, other: &Place) -> bool {
        match (self, other) {
            (
                Place::Sharded {
                    column: c1,
                    rule: r1,
                    shards: s1,
                    ..
                },
                Place::Sharded {
                    column: c2,
                    rule: r2,
                    shards: s2,
                    ..
                },
            ) => {
                // The same rule and shards, or more periods of an open-ended rule:
                // the shards the old layout had are the same tables. Fewer periods
                // are checked (the rows of the dropped ones).
                c1.eq_ignore_ascii_case(c2) && r1 == r2 && s2.starts_with(s1)
            }
            (Place::Broadcast(a), Place::Broadcast(b)) => {
                a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>()
            }
            (Place::Single(a), Place::Single(b)) => a == b,
            _ => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            Place::Sharded {
                column,
                shards,
                algorithm,
                ..
            } => {
                format!(
                    "sharded by {column} with {} over {} shards",
                    algorithm.name(),
                    shards.len()
                )
            }
            Place::Broadcast(c) => format!("broadcast to {} nodes", c.len()),
            Place::Single(l) => format!("single at {l}"),
        }
    }
}

/// Where `schema.table`'s rows live under a layout. A database that is no logical
/// schema is shown by the passthrough node, if there is one, under its own name.
fn place(rt: &Runtime, cluster: &ClusterConfig, schema: &str, table: &str) -> Option<Place> {
    let Some(s) = rt.schemas.get(schema) else {
        let p = rt.passthrough?;
        return Some(Place::Single(Loc {
            node: rt.nodes[p].name.clone(),
            database: schema.to_string(),
            table: table.to_string(),
        }));
    };
    let loc = |node: usize, name: &str| Loc {
        node: rt.nodes[node].name.clone(),
        database: s.database_on(&rt.nodes, node).to_string(),
        table: name.to_string(),
    };
    let configured = s
        .tables
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(table));
    Some(match configured.map(|(_, t)| &t.kind) {
        None => Place::Single(loc(s.node, table)),
        Some(TableKind::Single { node }) => Place::Single(loc(*node, table)),
        Some(TableKind::Broadcast { nodes }) => {
            Place::Broadcast(nodes.iter().map(|&n| loc(n, table)).collect())
        }
        Some(TableKind::Sharded(sh)) => Place::Sharded {
            column: sh.column.clone(),
            // As configured: an open-ended rule's periods in use grow with time.
            rule: format!(
                "{:?}",
                cluster.rules.get(&sh.rule).map(rules::RuleConfig::placing)
            ),
            algorithm: sh.algorithm.clone(),
            shards: sh.shards.iter().map(|l| loc(l.node, &l.table)).collect(),
        },
    })
}

/// How long the row check may take: a node that stops answering must not hold the
/// admin port (and its one statement at a time) forever.
fn limit(depth: Depth) -> Duration {
    match depth {
        Depth::Sample(_) => Duration::from_secs(120),
        Depth::Full => Duration::from_secs(1800),
    }
}

/// Reads every table whose placement differs between `old` and `new` and counts
/// the rows `new` would not find. An error names the table it could not read.
pub async fn check(
    old: &Topology,
    new_rt: &Runtime,
    new_cluster: &ClusterConfig,
    depth: Depth,
    timeout: Duration,
) -> Result<Vec<Left>, String> {
    tokio::time::timeout(
        limit(depth),
        check_all(old, new_rt, new_cluster, depth, timeout),
    )
    .await
    .unwrap_or_else(|_| {
        Err(format!(
            "the row check did not finish within {} s (a node too slow, or stopped)",
            limit(depth).as_secs()
        ))
    })
}

async fn check_all(
    old: &Topology,
    new_rt: &Runtime,
    new_cluster: &ClusterConfig,
    depth: Depth,
    timeout: Duration,
) -> Result<Vec<Left>, String> {
    let old_rt = &old.runtime;
    let reader = Reader {
        rt: old_rt,
        timeout,
    };
    let mut out = Vec::new();
    for (schema_name, new_schema) in &new_rt.schemas {
        let old_schema = old_rt.schemas.get(schema_name);
        // Where the schema's unconfigured tables were: its node, or the passthrough
        // node that showed a database of this name.
        let old_home = match old_schema {
            Some(s) => Some((s.node, s.database_on(&old_rt.nodes, s.node).to_string())),
            None => old_rt.passthrough.map(|p| (p, schema_name.clone())),
        };
        let Some((old_node, old_db)) = old_home else {
            continue;
        };
        let mut names: BTreeSet<String> = new_schema.tables.keys().cloned().collect();
        if let Some(s) = old_schema {
            names.extend(s.tables.keys().cloned());
        }
        let old_name = &old_rt.nodes[old_node].name;
        let home_moved = *old_name != new_rt.nodes[new_schema.node].name
            || old_db != new_schema.database_on(&new_rt.nodes, new_schema.node);
        if home_moved {
            // Tables no config names live on the schema's node: every one there moves.
            let found = reader.base_tables(old_node, &old_db).await.map_err(|e| {
                format!("cannot list the tables of {schema_name} on {old_name}: {e}")
            })?;
            for t in found {
                let shard = old_schema.is_some_and(|s| s.shard_tables.contains(&t.to_lowercase()));
                if !shard && !names.iter().any(|n| n.eq_ignore_ascii_case(&t)) {
                    names.insert(t);
                }
            }
        }
        for table in names {
            let (Some(before), Some(after)) = (
                place(old_rt, &old.cluster, schema_name, &table),
                place(new_rt, new_cluster, schema_name, &table),
            ) else {
                continue;
            };
            if before.same(&after) {
                continue;
            }
            let counted = reader
                .left_behind(&before, &after, depth)
                .await
                .map_err(|e| format!("cannot read {schema_name}.{table}: {e}"))?;
            if let Some((read, left)) = counted {
                out.push(Left {
                    table: format!("{schema_name}.{table}"),
                    read,
                    left,
                    detail: format!("{} → {}", before.describe(), after.describe()),
                });
            }
        }
    }
    // A schema the new layout drops: its rows are looked for nowhere, unless the
    // passthrough node shows its home database as it is.
    for (schema_name, old_schema) in &old_rt.schemas {
        if new_rt.schemas.contains_key(schema_name) {
            continue;
        }
        let home = &old_rt.nodes[old_schema.node].name;
        let home_db = old_schema.database_on(&old_rt.nodes, old_schema.node);
        let still_shown = new_rt
            .passthrough
            .is_some_and(|p| new_rt.nodes[p].name == *home && home_db == schema_name.as_str());
        let mut names: BTreeSet<String> = old_schema.tables.keys().cloned().collect();
        if !still_shown {
            let listed = reader
                .base_tables(old_schema.node, home_db)
                .await
                .map_err(|e| format!("cannot list the tables of {schema_name} on {home}: {e}"))?;
            for t in listed {
                if !old_schema.shard_tables.contains(&t.to_lowercase())
                    && !names.iter().any(|n| n.eq_ignore_ascii_case(&t))
                {
                    names.insert(t);
                }
            }
        }
        for table in names {
            let Some(before) = place(old_rt, &old.cluster, schema_name, &table) else {
                continue;
            };
            if still_shown && matches!(&before, Place::Single(l) if l.node == *home) {
                continue;
            }
            let rows = reader
                .rows(&before, depth)
                .await
                .map_err(|e| format!("cannot read {schema_name}.{table}: {e}"))?;
            if rows > 0 {
                out.push(Left {
                    table: format!("{schema_name}.{table}"),
                    read: rows,
                    left: rows,
                    detail: format!("{} → schema removed from the layout", before.describe()),
                });
            }
        }
    }
    Ok(out)
}

/// Reads the old layout's tables on their nodes' primaries.
struct Reader<'a> {
    rt: &'a Runtime,
    timeout: Duration,
}

impl Reader<'_> {
    /// Rows read and rows left behind, for a table whose placement changes from
    /// `before` to `after`; `None` when it holds no rows.
    async fn left_behind(
        &self,
        before: &Place,
        after: &Place,
        depth: Depth,
    ) -> Result<Option<(u64, u64)>, WireError> {
        let limit = match depth {
            Depth::Sample(n) => format!(" LIMIT {n}"),
            Depth::Full => String::new(),
        };
        let mut sources = before.locations();
        // Copies hold the same rows: one is read. Into shards every copy is read: a
        // row on a shard table where it does not belong would be read there too
        // (a scatter read would count it twice).
        if matches!(before, Place::Broadcast(_)) && !matches!(after, Place::Sharded { .. }) {
            sources.truncate(1);
        }
        let (mut read, mut left) = (0u64, 0u64);
        for at in &sources {
            let Some(node) = self.rt.nodes.iter().position(|n| n.name == at.node) else {
                continue;
            };
            let from = format!("{}.{}", quote(&at.database), quote(&at.table));
            match after {
                Place::Sharded {
                    column,
                    algorithm,
                    shards,
                    ..
                } => {
                    let sql = format!("SELECT {} FROM {from}{limit}", quote(column));
                    let mut unplaceable = 0u64;
                    let scanned = self
                        .scan(node, &sql, |cols, f| {
                            read += 1;
                            let numeric = cols.first().is_some_and(|c| is_numeric(c.column_type));
                            let value = match f.first().copied().flatten() {
                                None => Value::Null,
                                Some(b) => {
                                    let text = String::from_utf8_lossy(b);
                                    match numeric.then(|| Value::number(&text)).flatten() {
                                        Some(v) => v,
                                        None => Value::Text(text.into_owned()),
                                    }
                                }
                            };
                            match algorithm.shard_of(&value) {
                                Ok(s) if shards.get(s as usize) == Some(at) => {}
                                Ok(_) => left += 1,
                                Err(_) => unplaceable += 1,
                            }
                        })
                        .await;
                    absent_is_empty(scanned)?;
                    left += unplaceable;
                }
                Place::Single(target) => {
                    let rows = self.count(node, &from, &limit).await?;
                    read += rows;
                    // From copies, the rows are found if the single place is one
                    // of them; from anything else, only rows already there are.
                    let found = match before {
                        Place::Broadcast(old) => old.contains(target),
                        _ => target == at,
                    };
                    if !found {
                        left += rows;
                    }
                }
                Place::Broadcast(copies) => {
                    let rows = self.count(node, &from, &limit).await?;
                    read += rows;
                    // A read may go to any copy: every row must be on every one.
                    // Old copies hold them all; one place holds its own rows only.
                    let found = match before {
                        Place::Broadcast(old) => copies.iter().all(|c| old.contains(c)),
                        _ => copies.iter().all(|c| c == at),
                    };
                    if !found {
                        left += rows;
                    }
                }
            }
        }
        Ok((read > 0).then_some((read, left)))
    }

    /// The rows of a table's place (one copy of a broadcast table).
    async fn rows(&self, place: &Place, depth: Depth) -> Result<u64, WireError> {
        let limit = match depth {
            Depth::Sample(n) => format!(" LIMIT {n}"),
            Depth::Full => String::new(),
        };
        let mut sources = place.locations();
        if matches!(place, Place::Broadcast(_)) {
            sources.truncate(1);
        }
        let mut rows = 0;
        for at in &sources {
            let Some(node) = self.rt.nodes.iter().position(|n| n.name == at.node) else {
                continue;
            };
            let from = format!("{}.{}", quote(&at.database), quote(&at.table));
            rows += self.count(node, &from, &limit).await?;
        }
        Ok(rows)
    }

    /// The base tables of database `db` on `node`.
    async fn base_tables(&self, node: usize, db: &str) -> Result<Vec<String>, WireError> {
        let sql = format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = {} AND TABLE_TYPE = 'BASE TABLE'",
            super::quote_literal(db)
        );
        let mut found = Vec::new();
        self.scan(node, &sql, |_, f| {
            if let Some(Some(name)) = f.first() {
                found.push(String::from_utf8_lossy(name).into_owned());
            }
        })
        .await?;
        Ok(found)
    }

    async fn count(&self, node: usize, from: &str, limit: &str) -> Result<u64, WireError> {
        let sql = if limit.is_empty() {
            format!("SELECT COUNT(*) FROM {from}")
        } else {
            format!("SELECT COUNT(*) FROM (SELECT 1 FROM {from}{limit}) AS sample")
        };
        let mut n = 0;
        let scanned = self
            .scan(node, &sql, |_, f| {
                n = f
                    .first()
                    .copied()
                    .flatten()
                    .and_then(|b| std::str::from_utf8(b).ok()?.parse().ok())
                    .unwrap_or(0);
            })
            .await;
        absent_is_empty(scanned)?;
        Ok(n)
    }

    async fn scan(
        &self,
        node: usize,
        sql: &str,
        row: impl FnMut(&[crate::backend::ScanColumn], &[Option<&[u8]>]),
    ) -> Result<(), WireError> {
        let mut conn = super::primary_conn(self.rt, node, self.timeout).await?;
        conn.query_each(sql.as_bytes(), row).await.map(|_| ())
    }
}

/// A table that does not exist holds no rows.
fn absent_is_empty(r: Result<(), WireError>) -> Result<(), WireError> {
    match r {
        Err(WireError::Server {
            code: 1146 | 1049, ..
        }) => Ok(()),
        other => other,
    }
}

/// MYSQL_TYPE_DECIMAL, TINY, SHORT, LONG, FLOAT, DOUBLE, LONGLONG, INT24, YEAR,
/// NEWDECIMAL: their text is a number.
fn is_numeric(t: u8) -> bool {
    matches!(t, 0..=5 | 8 | 9 | 13 | 246)
}
