//! Open-ended date tables: a table sharded by an open-ended `date` rule has one
//! physical table per period, forever. A task keeps the tables of the current period
//! and the next `ahead` ones created, then widens the layout to them, so an insert
//! never meets a missing month; `SHOW DATE TABLES` lists which exist.
//!
//! Order matters: the tables are created before the layout that routes to them is
//! put in effect. A layout is only widened (one more period): rows already stored
//! stay where the previous layout put them.

use std::sync::Arc;
use std::time::Duration;

use rules::{Algorithm, Runtime, TableKind};

use super::create_tables::{create_missing, Created};
use crate::config::unix_now;
use crate::topology::Current;

/// How often the periods are checked. Tables are made `ahead` periods early, so a
/// check a minute late changes nothing.
const EVERY: Duration = Duration::from_secs(60);

/// The first period of `algorithm` that is now or later, when it is open-ended.
fn current_period(algorithm: &Algorithm, now: i64) -> Option<u32> {
    match algorithm {
        Algorithm::Date(d) if d.open_ended => {
            let b = d.bucket_at(now)?.max(0);
            Some(u32::try_from(b).unwrap_or(u32::MAX))
        }
        _ => None,
    }
}

/// Whether `rt` has open-ended tables at all.
fn any_open_ended(rt: &Runtime) -> bool {
    rt.schemas.values().any(|s| {
        s.tables
            .values()
            .any(|t| matches!(&t.kind, TableKind::Sharded(sh) if sh.algorithm.open_ended()))
    })
}

/// Keeps the tables of open-ended date rules created ahead, and the layout wide
/// enough to reach them, for as long as shardgate runs.
pub async fn keep_ahead(topology: Arc<Current>, timeout: Duration) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let topo = topology.load();
        if !any_open_ended(&topo.runtime) {
            continue;
        }
        // The layout in effect, with the periods of now.
        let layout = match topology.validate(&topo.document) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(errors = ?e, "open-ended date tables: the layout in effect does not build now");
                continue;
            }
        };
        let made = create_ahead(&layout.runtime, timeout).await;
        for r in &made.rows {
            let text = r
                .iter()
                .map(|c| c.as_deref().unwrap_or(""))
                .collect::<Vec<_>>()
                .join(" ");
            if text.contains("error") {
                tracing::warn!(table = %text, "open-ended date table not created; its period stays out of the layout");
            } else {
                tracing::info!(table = %text, "open-ended date table created ahead");
            }
        }
        let wider =
            layout.cluster.rules.iter().any(|(name, r)| {
                r.horizon() != topo.cluster.rules.get(name).and_then(|o| o.horizon())
            });
        // Only over the layout it was built from: a DBA's LOAD meanwhile wins, and
        // the next round widens that one.
        if wider && made.failed == 0 {
            if let Some(next) = topology.install_over(layout, topo.generation) {
                tracing::info!(
                    generation = next.generation,
                    "open-ended date tables: the next period is in the layout"
                );
            }
        }
    }
}

/// Creates the tables of open-ended date rules' current and coming periods in `rt`
/// that do not exist. A node that stops answering holds this call a while only.
pub async fn create_ahead(rt: &Runtime, timeout: Duration) -> Created {
    if !any_open_ended(rt) {
        return Created {
            rows: Vec::new(),
            created: 0,
            failed: 0,
        };
    }
    let now = unix_now();
    let creating = create_missing(
        rt,
        |_, table, shard| match (&table.kind, shard) {
            (TableKind::Sharded(s), Some(i)) => {
                current_period(&s.algorithm, now).is_some_and(|c| i >= c)
            }
            _ => false,
        },
        timeout,
    );
    tokio::time::timeout(EVERY * 5, creating)
        .await
        .unwrap_or_else(|_| Created {
            rows: Vec::new(),
            created: 0,
            failed: 1,
        })
}

/// `SHOW DATE TABLES`: every period of every open-ended table in `rt`, where its
/// table is, and whether it exists (asked on the nodes now).
pub async fn show(rt: &Runtime, timeout: Duration) -> Vec<Vec<Option<String>>> {
    let now = unix_now();
    let mut rows = Vec::new();
    let mut exists = std::collections::HashMap::new();
    for schema in rt.schemas.values() {
        for (name, table) in &schema.tables {
            let TableKind::Sharded(s) = &table.kind else {
                continue;
            };
            let Some(current) = current_period(&s.algorithm, now) else {
                continue;
            };
            for (i, loc) in s.shards.iter().enumerate() {
                let db = schema.database_on(&rt.nodes, loc.node).to_string();
                let key = (loc.node, db.clone());
                if !exists.contains_key(&key) {
                    let tables = list_tables(rt, loc.node, &db, timeout).await;
                    exists.insert(key.clone(), tables);
                }
                let found = match &exists[&key] {
                    Ok(t) => Some(
                        if t.contains(&loc.table.to_lowercase()) {
                            "yes"
                        } else {
                            "no"
                        }
                        .to_string(),
                    ),
                    Err(e) => Some(format!("unknown: {e}")),
                };
                let i = u32::try_from(i).unwrap_or(u32::MAX);
                let when = match i.cmp(&current) {
                    std::cmp::Ordering::Less => "past",
                    std::cmp::Ordering::Equal => "current",
                    std::cmp::Ordering::Greater => "ahead",
                };
                rows.push(vec![
                    Some(format!("{}.{name}", schema.name)),
                    s.algorithm.suffix(i),
                    Some(when.to_string()),
                    Some(rt.nodes[loc.node].name.clone()),
                    Some(loc.table.clone()),
                    found,
                ]);
            }
        }
    }
    rows
}

pub const SHOW_COLUMNS: [&str; 6] = [
    "table",
    "period",
    "when",
    "node",
    "physical_table",
    "exists",
];

async fn list_tables(
    rt: &Runtime,
    node: rules::NodeId,
    db: &str,
    timeout: Duration,
) -> Result<std::collections::HashSet<String>, String> {
    let mut conn = super::primary_conn(rt, node, timeout)
        .await
        .map_err(|e| e.to_string())?;
    super::tables_in(&mut conn, db)
        .await
        .map_err(|e| e.to_string())
}
