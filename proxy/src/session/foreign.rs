//! Statements that name another logical schema's tables with its qualifier, and
//! what the planner cannot read the way the session's sql_mode would.

use router::Statement;

use super::execute::Route;
use super::{Reply, Session};
use crate::wire::response::Mode;
use crate::wire::SqlError;

impl Session {
    /// The logical schema a statement names with a qualifier when that is not the
    /// session's own (`None`: there is none); several get 1235.
    pub(super) fn foreign_schema(
        &self,
        sql: &[u8],
        rt: &rules::Runtime,
    ) -> Result<Option<String>, SqlError> {
        let mut foreign: Vec<String> = router::resolve::qualified_schemas(sql, rt, self.reading)
            .into_iter()
            .filter(|s| self.db.as_deref() != Some(s.name.as_str()))
            .map(|s| s.name.clone())
            .collect();
        if foreign.len() > 1 {
            return Err(SqlError::unsupported(format!(
                "not supported by shardgate yet: a statement naming tables of several logical schemas ({}); \
                 run one statement per schema",
                foreign.join(", ")
            )));
        }
        Ok(foreign.pop())
    }

    /// A statement whose tables belong to logical schema `name`, named with its
    /// qualifier from a session standing elsewhere: planned against that schema (every
    /// table must be qualified), or, when it names only tables the schema does not
    /// configure, run on the schema's node.
    pub(super) async fn run_foreign(
        &mut self,
        stmt: &Statement,
        payload: &[u8],
        name: &str,
        rt: std::sync::Arc<rules::Runtime>,
        seq: u8,
    ) -> Reply {
        let Some(schema) = rt.schemas.get(name) else {
            return Err(SqlError::unknown_database(name).into());
        };
        let text = self.charset.decode(&payload[1..])?;
        let refuse =
            |why: String| SqlError::unsupported(format!("not supported by shardgate yet: {why}"));
        match router::plan::plan_foreign(&text, schema, &rt, self.reading) {
            Ok(Some(plan)) => {
                return self
                    .run_plan(&plan, &text, stmt.read_only, rt.clone(), name, seq)
                    .await
            }
            Ok(None) => {}
            Err(e) => {
                return Err(super::sharded::route_error(&e).into());
            }
        }
        let refs = match router::plan::table_refs(&text, self.reading) {
            Ok(r) => r.tables,
            Err(e) => {
                return Err(super::sharded::route_error(&e).into());
            }
        };
        let stray = refs.iter().find(|(s, _)| s.as_deref() != Some(name));
        let problem = match stray {
            Some((None, t)) => Some(refuse(format!(
                "a statement naming tables of logical schema `{name}` and the unqualified `{t}`, \
                 which belongs to the session's own database; qualify it, or USE `{name}` first"
            ))),
            Some((Some(s), t)) => Some(refuse(format!(
                "a statement naming tables of logical schema `{name}` and `{s}`.`{t}`; run one statement per schema"
            ))),
            None if schema.database != schema.name => Some(refuse(format!(
                "logical schema `{name}` is stored as `{}` on {}; USE `{name}` to reach its unconfigured tables",
                schema.database,
                self.node_name(schema.node)
            ))),
            None => None,
        };
        if let Some(e) = problem {
            return Err(e.into());
        }
        let route = Route {
            node: schema.node,
            database: Some(schema.database.clone()),
            read_only: stmt.read_only && !self.lease.must_keep(),
            needs_previous: stmt.needs_previous,
            pin: stmt.pin,
            drops_database: super::execute::drops_database(stmt, payload),
        };
        self.execute(payload, seq, route, Mode::Query).await
    }
}
