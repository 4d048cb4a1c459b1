//! COM_STMT_PREPARE of a statement shardgate routes: planned once, its metadata
//! taken from preparing one target's statement (or, for a gathered read, from
//! preparing it over empty copies of its tables), and kept under an id of
//! shardgate's own (see `routed`).

use std::sync::Arc;

use bytes::BytesMut;
use router::RouteError;
use rules::Runtime;
use tokio::io::AsyncWriteExt;

use super::routed::{RoutedStmt, Unlisted};
use super::sharded::{route_error, Renames};
use super::{CommandError, Flow, Session};
use crate::wire::generic::eof_payload;
use crate::wire::packet::write_packet;
use crate::wire::stmt::PrepareOk;
use crate::wire::{SqlError, WireError};

impl Session {
    /// COM_STMT_PREPARE of a statement that names configured tables. `None`: it does
    /// not (the caller passes it through).
    pub(super) async fn prepare_routed(
        &mut self,
        sql: &[u8],
        seq: u8,
    ) -> Result<Option<Flow>, CommandError> {
        let rt = self.lease.topo.runtime.clone();
        let configured = self.configured_schema(&rt);
        // Planned as the text it means in the client's character set.
        let decoded = match self.charset.decode(sql) {
            Ok(d) => d,
            Err(e) if configured.is_some() => {
                return Err(e.into());
            }
            Err(_) => return Ok(None),
        };
        let mut sql: &[u8] = &decoded;
        let mut listed = String::new();
        let mut unlisted = None;
        let planned = loop {
            let planned = match configured {
                Some(schema) => Some(self.plan_prepared(sql, &rt, &schema.name).await),
                None => None,
            };
            match (planned, configured) {
                // An INSERT without a column list gets the table's, as the server
                // takes them now (and again at each execution, after an ALTER).
                (Some(Err(RouteError::NeedsColumns { table, at })), Some(schema))
                    if listed.is_empty() =>
                {
                    let text = String::from_utf8_lossy(sql).into_owned();
                    listed = self
                        .with_column_list(&text, (&table, at), &rt, &schema.name)
                        .await?;
                    unlisted = Some(Unlisted { text, table, at });
                    sql = listed.as_bytes();
                }
                (Some(Ok(p)), _) => break p,
                (None, _) => break None,
                (Some(Err(e)), _) => return Err(route_error(&e).into()),
            }
        };
        let (prepared, schema_name, plain_db) = match planned {
            Some(p) => (p, configured.map(|s| s.name.clone()), None),
            None => {
                // No configured table: the session's node, like a text statement.
                // Statements that leave state on the connection keep the old way
                // (pinned), and so do CALLs, whose several results need it.
                let Ok(stmt) = router::classify::classify_in(sql, self.reading) else {
                    return Ok(None);
                };
                use router::StatementKind as K;
                let plain = matches!(
                    stmt.kind,
                    K::Select | K::Insert | K::Update | K::Delete | K::Replace
                );
                if !plain || stmt.pin.is_some() || stmt.needs_previous || stmt.reads_insert_id {
                    return Ok(None);
                }
                // The hinted node, as for a text statement.
                let hint = stmt.hints.node.as_deref();
                let (node, database) = match self.placement(hint) {
                    Ok(placed) => placed,
                    Err(e) if hint.is_some() => return Err(e.into()),
                    Err(_) => return Ok(None),
                };
                let target = router::Target {
                    node,
                    shard: None,
                    sql: String::from_utf8_lossy(sql).into_owned(),
                };
                let write = !stmt.read_only;
                (router::plan::Prepared::fixed(target, write), None, database)
            }
        };
        if let Some(fill) = &prepared.plan.fill_global_id {
            let e = SqlError::unsupported(format!(
                "not supported by shardgate yet: generating global id column `{}` in a prepared INSERT; \
                 bind its values, or send the INSERT as text",
                fill.column
            ));
            return Err(e.into());
        }
        if let (Some(g), Some(schema)) = (
            prepared.plan.gather.as_deref(),
            schema_name.as_deref().and_then(|s| rt.schemas.get(s)),
        ) {
            // Its metadata comes from preparing it where it would be evaluated, over
            // empty copies of its tables.
            let answer = self.prepare_gathered(g).await?;
            let renames = Renames::database(schema.database_on(&rt.nodes, g.node), &schema.name);
            return self
                .register_prepared(
                    sql,
                    prepared,
                    (schema_name.clone(), plain_db, unlisted),
                    (answer, &renames),
                    &rt,
                    seq,
                )
                .await;
        }
        // The metadata comes from preparing one target's statement.
        let Some(target) = prepared.plan.targets.first() else {
            let e = SqlError::internal("shardgate planned the prepared statement onto no node");
            return Err(e.into());
        };
        self.lease.writes_now = false;
        let mut held = self.checkout(target.node, false, false).await?;
        let schema = schema_name.as_deref().and_then(|s| rt.schemas.get(s));
        let database = match schema {
            Some(schema) => Some(schema.database_on(&rt.nodes, target.node).to_string()),
            None => plain_db.clone(),
        };
        let answer = match &database {
            Some(db) => held.conn.use_database(db).await,
            None => Ok(()),
        };
        let answer = match answer {
            Ok(()) => {
                let wire = self.charset.encode(&target.sql);
                held.conn.prepare(&target.sql, &wire).await
            }
            Err(e) => Err(e),
        };
        let answer = match answer {
            Ok(a) => {
                self.keep_or_release(held, 0).await;
                a
            }
            Err(e) => {
                if matches!(e, WireError::Server { .. }) {
                    self.keep_or_release(held, 0).await;
                } else {
                    self.forget_connection_state();
                }
                return Err(e.to_client("(while preparing)").into());
            }
        };
        let renames = match schema {
            Some(schema) => Renames::new(&rt, schema, &prepared.plan),
            None => Renames::none(),
        };
        self.register_prepared(
            sql,
            prepared,
            (schema_name, plain_db, unlisted),
            (answer, &renames),
            &rt,
            seq,
        )
        .await
    }

    async fn plan_prepared(
        &self,
        sql: &[u8],
        rt: &Arc<Runtime>,
        schema: &str,
    ) -> Result<Option<router::plan::Prepared>, RouteError> {
        match rt.schemas.get(schema) {
            Some(_) if sql.len() >= super::planning::OFF_THREAD => {
                let name = schema.to_string();
                super::planning::prepare(sql.to_vec(), rt.clone(), name, self.reading).await
            }
            Some(s) => router::plan::prepare(sql, s, rt, self.reading),
            None => Ok(None),
        }
    }

    /// Keeps a prepared statement under a new id and answers COM_STMT_PREPARE with
    /// the server's metadata (names made logical).
    async fn register_prepared(
        &mut self,
        sql: &[u8],
        prepared: router::plan::Prepared,
        (schema_name, plain_db, unlisted): (Option<String>, Option<String>, Option<Unlisted>),
        (answer, renames): (crate::backend::conn::PrepareAnswer, &Renames<'_>),
        rt: &Arc<Runtime>,
        seq: u8,
    ) -> Result<Option<Flow>, CommandError> {
        if schema_name.is_some() && usize::from(answer.stmt.params) != prepared.params {
            let e = SqlError::internal(format!(
                "shardgate counted {} parameters where the server counts {}; the statement cannot be routed safely",
                prepared.params, answer.stmt.params
            ));
            return Err(e.into());
        }
        let classified = router::classify::classify_in(sql, self.reading);
        let read_only = classified.as_ref().is_ok_and(|s| s.read_only);
        let names_tables = classified.as_ref().map_or(true, |s| s.names_tables);
        let id = self.routed.insert(RoutedStmt {
            sql: String::from_utf8_lossy(sql).into_owned(),
            unlisted,
            schema: schema_name,
            database: plain_db,
            client_db: self.db.clone(),
            runtime: rt.clone(),
            reading: self.reading,
            prepared: Arc::new(prepared),
            read_only,
            names_tables,
            params: answer.stmt.params,
            types: None,
            long_data: Vec::new(),
            long_data_bytes: 0,
        });
        let mut out = BytesMut::new();
        let mut seq = seq;
        let ok = PrepareOk {
            id,
            columns: answer.stmt.columns,
            params: answer.stmt.params,
            warnings: answer.warnings,
        };
        write_packet(&mut out, &mut seq, &ok.encode());
        let deprecate = self.deprecate_eof();
        for defs in [&answer.param_defs, &answer.column_defs] {
            for d in defs {
                let renamed = renames.apply(d);
                write_packet(&mut out, &mut seq, renamed.as_deref().unwrap_or(d));
            }
            if !defs.is_empty() && !deprecate {
                write_packet(
                    &mut out,
                    &mut seq,
                    &eof_payload(false, self.lease.status(), 0),
                );
            }
        }
        self.stream.write_all(&out).await?;
        Ok(Some(Flow::Continue))
    }
}
