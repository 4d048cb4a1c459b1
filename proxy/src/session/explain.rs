//! `EXPLAIN SHARDING <sql>`: the plan a statement gets, as rows, nothing run.

use router::Merge;

use super::sharded::route_error;
use super::{Reply, Session};
use crate::wire::SqlError;

impl Session {
    /// `EXPLAIN SHARDING <sql>`: the plan as rows, nothing run.
    pub(super) async fn explain_sharding(&mut self, sql: &[u8], seq: u8) -> Reply {
        use crate::wire::resultset::LocalColumn;
        let sql = sql.trim_ascii_start();
        let rt = self.lease.topo.runtime.clone();
        // Planned as the statement itself would be: by the logical schema its
        // qualifiers name when that is not the session's own.
        let foreign = self.foreign_schema(sql, &rt)?;
        let Some(db) = foreign.clone().or_else(|| self.db.clone()) else {
            return Err(SqlError::no_database().into());
        };
        let Some(schema) = rt.schemas.get(&db) else {
            let e = SqlError::unsupported(format!(
                "EXPLAIN SHARDING needs a logical schema; `{db}` is passed through as is"
            ));
            return Err(e.into());
        };
        let text = self.charset.decode(sql)?;
        let sql: &[u8] = &text;
        let stmt = match router::classify::classify_in(sql, self.reading) {
            Ok(s) if s.kind == router::StatementKind::Empty => {
                let e = SqlError::syntax("EXPLAIN SHARDING needs a statement after it, e.g. EXPLAIN SHARDING SELECT * FROM t WHERE id = 1",
                );
                return Err(e.into());
            }
            Ok(s) => s,
            Err(e) => {
                return Err(SqlError::syntax(e.to_string()).into());
            }
        };
        let planned = if foreign.is_none() {
            router::plan(sql, schema, &rt, self.reading)
        } else {
            router::plan::plan_foreign(sql, schema, &rt, self.reading)
        };
        let rows: Vec<Vec<Option<String>>> = match planned {
            Err(e) => {
                return Err(route_error(&e).into());
            }
            Ok(None) => vec![vec![
                Some(rt.nodes[schema.node].name.clone()),
                None,
                Some(if stmt.read_only { "read" } else { "write" }.to_string()),
                Some("single".to_string()),
                Some(String::from_utf8_lossy(sql).trim().to_string()),
            ]],
            Ok(Some(plan)) => match plan.gather.as_deref() {
                Some(g) => gather_steps(g, &rt),
                None => direct_steps(&plan, stmt.read_only, &rt),
            },
        };
        let columns = ["node", "shard", "kind", "merge", "sql"].map(LocalColumn::text);
        self.send_result_set(seq, "plan", &columns, &rows).await
    }
}

/// A direct plan's targets.
fn direct_steps(
    plan: &router::Plan,
    read_only: bool,
    rt: &rules::Runtime,
) -> Vec<Vec<Option<String>>> {
    let merge = match &plan.merge {
        Merge::Single => "single".to_string(),
        Merge::SumAffected => "sum affected rows".to_string(),
        Merge::Copies => "one copy's affected rows".to_string(),
        Merge::Concat => "concatenate rows".to_string(),
        Merge::Any => "any one node".to_string(),
        Merge::Combine(spec) => spec.describe(),
    };
    let kind = if plan.write {
        "write"
    } else if read_only {
        "read"
    } else {
        "read (primary)"
    };
    plan.targets
        .iter()
        .map(|t| {
            vec![
                Some(rt.nodes[t.node].name.clone()),
                t.shard.map(|s| s.to_string()),
                Some(kind.to_string()),
                Some(merge.to_string()),
                Some(t.sql.clone()),
            ]
        })
        .collect()
}

/// A gather plan's steps: where each table's rows are read (or that it is read in
/// place), then the statement on the evaluating node.
fn gather_steps(g: &router::plan::Gather, rt: &rules::Runtime) -> Vec<Vec<Option<String>>> {
    let strategy = format!("gather ({})", g.reason);
    let mut rows = Vec::new();
    for t in &g.tables {
        let filter = t
            .filter
            .as_ref()
            .map(|f| format!(" WHERE {f}"))
            .unwrap_or_default();
        if t.in_place {
            rows.push(vec![
                Some(rt.nodes[g.node].name.clone()),
                None,
                Some(format!(
                    "read `{}` in place (copied inside a transaction)",
                    t.name
                )),
                Some(strategy.clone()),
                Some(format!("`{}`.`{}`", g.database, t.name)),
            ]);
            continue;
        }
        for s in &t.sources {
            rows.push(vec![
                Some(rt.nodes[s.node].name.clone()),
                s.shard.map(|x| x.to_string()),
                Some(format!("copy into temporary `{}`", t.name)),
                Some(strategy.clone()),
                Some(format!(
                    "SELECT * FROM `{}`.`{}` AS `{}`{filter}",
                    s.database, s.table, t.alias
                )),
            ]);
        }
    }
    rows.push(vec![
        Some(rt.nodes[g.node].name.clone()),
        None,
        Some("evaluate".to_string()),
        Some(strategy),
        Some(g.sql.clone()),
    ]);
    rows
}
