//! Prepared statements that shardgate routes: those on sharded, broadcast and single
//! tables, and plain ones that leave no state on their connection.
//!
//! The client's statement lives in shardgate: it is analysed once at PREPARE, and
//! each EXECUTE is routed by its bound parameters (to one shard, or like a text
//! statement: reads to replicas). There the physical
//! statement is prepared lazily on whichever pooled connection runs it (connections
//! remember what they prepared), so no session is pinned and no backend handle
//! outlives its connection's bound.

use std::collections::HashMap;
use std::sync::Arc;

use router::plan::Prepared;
use rules::{Runtime, Value};

use super::binary::BinaryExecution;
use super::charset::ClientCharset;
use super::gathered_cursor::{CursorRequest, GatheredCursor};
use super::multi_write::Tally;
use super::sharded::{route_error, RelayError, Relayed, Renames};
use super::{CommandError, Flow, Reply, Session};
use crate::wire::command::*;
use crate::wire::response::Reached;
use crate::wire::stmt::{self, Execute, Param};
use crate::wire::{SqlError, WireError};

/// Ids of routed statements start here, far above the small per-connection ids a
/// backend hands out for pass-through statements, so the two never meet.
pub(super) const FIRST_ROUTED_ID: u32 = 1 << 30;

/// A client's prepared statement that shardgate routes.
pub(super) struct RoutedStmt {
    pub(super) sql: String,
    /// An INSERT prepared without a column list: the list is read again at each
    /// execution, as the server would take the columns then.
    pub(super) unlisted: Option<Unlisted>,
    /// The logical schema of a statement on configured tables; `None` for others,
    /// which run where the session's database lives.
    pub(super) schema: Option<String>,
    /// The physical database of a statement on no configured table.
    pub(super) database: Option<String>,
    /// The client's database when it was prepared, which placed such a statement.
    pub(super) client_db: Option<String>,
    /// The rules the plan was made with: a rule change re-plans at the next EXECUTE.
    pub(super) runtime: Arc<Runtime>,
    /// How the text was read when prepared (the server read it so): a plan made
    /// again after a rule change reads it the same way.
    pub(super) reading: router::reading::Reading,
    pub(super) prepared: Arc<Prepared>,
    pub(super) read_only: bool,
    /// Names a table. One that does not (`SELECT 1`, a pool's validation query) runs
    /// without choosing the node of a transaction begun but not opened yet.
    pub(super) names_tables: bool,
    pub(super) params: u16,
    /// Parameter types from the last execution that sent them.
    pub(super) types: Option<Arc<[u8]>>,
    /// COM_STMT_SEND_LONG_DATA chunks (parameter, bytes), replayed before EXECUTE.
    pub(super) long_data: Vec<(u16, Vec<u8>)>,
    pub(super) long_data_bytes: usize,
}

/// The text of an INSERT without a column list, and where the list of `table`'s
/// columns goes in it.
#[derive(Clone)]
pub(super) struct Unlisted {
    pub(super) text: String,
    pub(super) table: String,
    pub(super) at: usize,
}

#[derive(Default)]
pub(super) struct RoutedStatements {
    map: HashMap<u32, RoutedStmt>,
    next: u32,
    /// Open cursors: client statement id → the statement's id on the held
    /// connection (see `cursor.rs`).
    pub(super) cursors: HashMap<u32, u32>,
    /// Open cursors over gathered rows, each on a connection of its own.
    pub(super) gathered: HashMap<u32, GatheredCursor>,
}

impl RoutedStatements {
    pub(super) fn contains(&self, id: u32) -> bool {
        self.map.contains_key(&id)
    }

    pub(super) fn clear(&mut self) {
        self.map.clear();
        self.cursors.clear();
        self.gathered.clear();
    }

    /// Keeps `stmt` under a new id, in shardgate's own range.
    pub(super) fn insert(&mut self, stmt: RoutedStmt) -> u32 {
        let id = FIRST_ROUTED_ID + self.next;
        self.next = self.next.wrapping_add(1) % FIRST_ROUTED_ID;
        self.map.insert(id, stmt);
        id
    }
}

fn to_value(p: &Param<'_>, charset: &ClientCharset) -> Result<Value, SqlError> {
    Ok(match p {
        Param::Null => Value::Null,
        Param::Int(i) => Value::Int(*i),
        Param::Float(f) => Value::number(&f.to_string()).unwrap_or(Value::Null),
        Param::Decimal(d) => std::str::from_utf8(d)
            .ok()
            .and_then(Value::number)
            .unwrap_or_else(|| Value::text(String::from_utf8_lossy(d).into_owned())),
        // Placed by the text it means in the client's character set; bytes that do
        // not decode (a BLOB, a binary key) are placed by their bytes.
        Param::Bytes(b) => Value::text(
            charset
                .text(b)
                .unwrap_or_else(|_| String::from_utf8_lossy(b).into_owned()),
        ),
        Param::Temporal(s) => Value::text(s.clone()),
        // Unknown until the server has it: routes like a value no rule reads.
        Param::LongData => Value::text(String::new()),
    })
}

impl Session {
    /// COM_STMT_EXECUTE, SEND_LONG_DATA, RESET, CLOSE and FETCH of a routed statement.
    pub(super) async fn routed_command(&mut self, cmd: u8, payload: &[u8], seq: u8) -> Reply {
        let Some(id) = stmt::statement_id(payload) else {
            return Ok(Flow::Continue);
        };
        match cmd {
            COM_STMT_CLOSE => {
                self.close_cursor(id).await;
                self.routed.map.remove(&id);
                Ok(Flow::Continue)
            }
            COM_STMT_RESET => {
                self.close_cursor(id).await;
                if let Some(s) = self.routed.map.get_mut(&id) {
                    s.long_data.clear();
                    s.long_data_bytes = 0;
                }
                self.send_ok(seq).await?;
                Ok(Flow::Continue)
            }
            COM_STMT_SEND_LONG_DATA => {
                let max = self.shared.settings.max_allowed_packet;
                if let (Some(s), Some(param), Some(data)) = (
                    self.routed.map.get_mut(&id),
                    payload.get(5..7).map(|b| u16::from_le_bytes([b[0], b[1]])),
                    payload.get(7..),
                ) {
                    // Over the limit the chunk is dropped and EXECUTE reports it.
                    s.long_data_bytes = s.long_data_bytes.saturating_add(data.len());
                    if s.long_data_bytes <= max {
                        s.long_data.push((param, data.to_vec()));
                    }
                }
                Ok(Flow::Continue)
            }
            COM_STMT_FETCH => self.fetch(id, payload).await,
            _ => {
                let aside = !self.lease.pending_txn.is_empty()
                    && self.routed.map.get(&id).is_some_and(|s| !s.names_tables);
                let pending = aside.then(|| self.lease.set_pending_aside());
                // Executing again closes the statement's cursor, as on the server.
                self.routed.cursors.remove(&id);
                if let Some(gathered) = self.routed.gathered.remove(&id) {
                    self.give_back(gathered.held).await;
                }
                let executed = self.execute_routed(id, payload, seq).await;
                if let Some(pending) = pending {
                    self.lease.restore_pending(pending);
                }
                self.release_if_no_cursor().await;
                self.after_routed(executed, seq).await
            }
        }
    }

    /// An INSERT prepared without a column list takes the table's columns as they are
    /// now: when an ALTER changed them, the statement is planned again with the new
    /// list (its values then go where the server would put them, or it fails as the
    /// server's would).
    async fn list_columns_again(&mut self, id: u32) -> Result<(), SqlError> {
        let Some((unlisted, schema)) = self
            .routed
            .map
            .get(&id)
            .and_then(|s| Some((s.unlisted.clone()?, s.schema.clone()?)))
        else {
            return Ok(());
        };
        let rt = self.lease.topo.runtime.clone();
        let listed = self
            .with_column_list(&unlisted.text, (&unlisted.table, unlisted.at), &rt, &schema)
            .await?;
        let Some(s) = self.routed.map.get_mut(&id) else {
            return Ok(());
        };
        if s.sql == listed {
            return Ok(());
        }
        let planned = rt
            .schemas
            .get(&schema)
            .map(|sc| router::plan::prepare(listed.as_bytes(), sc, &rt, s.reading));
        match planned {
            Some(Ok(Some(p))) if p.params == usize::from(s.params) => {
                s.prepared = Arc::new(p);
                s.runtime = rt;
                s.sql = listed;
                Ok(())
            }
            Some(Err(e)) => Err(route_error(&e)),
            _ => Err(SqlError::new(
                1615,
                "HY000",
                "Prepared statement needs to be re-prepared: the table's columns changed",
            )),
        }
    }

    /// How a routed execution ended, as the client's answer.
    async fn after_routed(&mut self, executed: Result<Flow, RelayError>, seq: u8) -> Reply {
        match executed {
            Ok(flow) => Ok(flow),
            Err(RelayError::Client(e)) => Err(e.into()),
            Err(RelayError::Backend(e, reached)) => {
                self.forget_connection_state();
                let e = e.to_client("(the statement may or may not have run)");
                Ok(self.answer_cut(reached, seq, e).await?)
            }
        }
    }

    async fn execute_routed(
        &mut self,
        id: u32,
        payload: &[u8],
        seq: u8,
    ) -> Result<Flow, RelayError> {
        let client = RelayError::Client;
        let max = self.shared.settings.max_allowed_packet;
        if let Err(e) = self.list_columns_again(id).await {
            self.send_err(seq, &e).await.map_err(client)?;
            return Ok(Flow::Continue);
        }
        let Some(s) = self.routed.map.get_mut(&id) else {
            return Ok(Flow::Continue);
        };
        let exec = match Execute::parse(payload, usize::from(s.params)) {
            Ok(e) => e,
            Err(e) => {
                let e = SqlError::bad_execute(e);
                self.send_err(seq, &e).await.map_err(client)?;
                return Ok(Flow::Continue);
            }
        };
        if let Some(t) = exec.types {
            // Clients send types once, or again only when they change.
            if s.types.as_deref() != Some(t) {
                s.types = Some(t.into());
            }
        }
        let cursor = exec.flags & 0x0F != 0;
        let problem = if s.params > 0 && s.types.is_none() {
            Some(SqlError::bad_execute("no parameter types were ever sent"))
        } else if s.long_data_bytes > max {
            Some(SqlError::packet_too_large(max))
        } else {
            None
        };
        if let Some(e) = problem {
            s.long_data.clear();
            s.long_data_bytes = 0;
            self.send_err(seq, &e).await.map_err(client)?;
            return Ok(Flow::Continue);
        }
        let types: Arc<[u8]> = s.types.clone().unwrap_or_else(|| Arc::from(&[][..]));
        // Rules changed since PREPARE: plan again, with the same text.
        let rt = self.lease.topo.runtime.clone();
        if !Arc::ptr_eq(&rt, &s.runtime) && s.schema.is_none() {
            // A statement on no configured table runs where its database is placed.
            // Placed again by the new layout: the same node (found by name, its
            // position may have moved) and database, or the client prepares it again.
            let old = &s.prepared.plan.targets[..];
            let placed = rt.placement(s.client_db.as_deref());
            let moved = match (old, placed) {
                ([t], Some(p))
                    if s.runtime.nodes.get(t.node).map(|n| &n.name)
                        == rt.nodes.get(p.node).map(|n| &n.name)
                        && p.database == s.database.as_deref() =>
                {
                    Some(router::Target {
                        node: p.node,
                        shard: None,
                        sql: t.sql.clone(),
                    })
                }
                _ => None,
            };
            match moved {
                Some(target) => {
                    let write = s.prepared.plan.write;
                    s.prepared = Arc::new(router::plan::Prepared::fixed(target, write));
                    s.runtime = rt.clone();
                }
                None => {
                    let e = SqlError::new(
                        1615,
                        "HY000",
                        "Prepared statement needs to be re-prepared: shardgate's layout moved its database",
                    );
                    self.send_err(seq, &e).await.map_err(client)?;
                    return Ok(Flow::Continue);
                }
            }
        }
        if !Arc::ptr_eq(&rt, &s.runtime) && s.schema.is_some() {
            let fresh = s
                .schema
                .as_deref()
                .and_then(|name| rt.schemas.get(name))
                .map(|schema| router::plan::prepare(s.sql.as_bytes(), schema, &rt, s.reading));
            match fresh {
                Some(Ok(Some(p))) if p.params == usize::from(s.params) => {
                    s.prepared = Arc::new(p);
                    s.runtime = rt.clone();
                }
                Some(Err(e)) => {
                    self.send_err(seq, &route_error(&e)).await.map_err(client)?;
                    return Ok(Flow::Continue);
                }
                _ => {
                    let e = SqlError::new(
                        1615,
                        "HY000",
                        "Prepared statement needs to be re-prepared: shardgate's rules for its tables changed",
                    );
                    self.send_err(seq, &e).await.map_err(client)?;
                    return Ok(Flow::Continue);
                }
            }
        }
        let prepared = s.prepared.clone();
        let (read_only, schema_name) = (s.read_only, s.schema.clone());
        self.lease.writes_now = !read_only;
        let plain_db = s.database.clone();
        let long_data = std::mem::take(&mut s.long_data);
        s.long_data_bytes = 0;

        let sql = s.sql.clone();
        let params = match stmt::decode_params(
            usize::from(s.params),
            exec.nulls,
            &types,
            exec.values,
            |i| long_data.iter().any(|(p, _)| usize::from(*p) == i),
        ) {
            Ok(p) => p,
            Err(e) => {
                let e = SqlError::bad_execute(e);
                self.send_err(seq, &e).await.map_err(client)?;
                return Ok(Flow::Continue);
            }
        };
        let values: Vec<Value> = match params
            .iter()
            .map(|p| to_value(p, &self.charset))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(v) => v,
            Err(e) => {
                self.send_err(seq, &e).await.map_err(client)?;
                return Ok(Flow::Continue);
            }
        };
        let targets = match prepared.targets(&values) {
            Ok(t) => t,
            Err(e) => {
                self.send_err(seq, &route_error(&e)).await.map_err(client)?;
                return Ok(Flow::Continue);
            }
        };
        let binary = BinaryExecution {
            exec,
            types: &types,
            long_data: &long_data,
        };
        let schema = schema_name.as_deref().and_then(|s| rt.schemas.get(s));
        if schema_name.is_some() && schema.is_none() {
            let e = SqlError::unknown_database(schema_name.as_deref().unwrap_or(""));
            self.send_err(seq, &e).await.map_err(client)?;
            return Ok(Flow::Continue);
        }
        if let (true, Some(schema)) = (prepared.plan.write && targets.len() > 1, schema) {
            let written = self
                .run_multi_write(
                    &targets,
                    Some(&binary),
                    Tally::of(&prepared.plan.merge),
                    &rt,
                    schema,
                    seq,
                )
                .await;
            return match written {
                Ok(flow) => Ok(flow),
                Err(CommandError::Client(e)) => Err(client(e)),
                Err(CommandError::Sql(e)) => {
                    self.send_err(seq, &e).await.map_err(client)?;
                    Ok(Flow::Continue)
                }
            };
        }
        if prepared.plan.gather.is_some() || (targets.len() > 1 && !prepared.plan.write) {
            metrics::counter!("shardgate_routed_executions_total", "class" => "read").increment(1);
            if let (true, Some(schema)) = (cursor, schema) {
                let req = CursorRequest {
                    id,
                    sql: &sql,
                    params: &params,
                    long_data: &long_data,
                    flags: binary.exec.flags,
                };
                return self.open_gathered_cursor(req, &rt, schema, seq).await;
            }
            // A read over several shards: answered as the text statement it stands
            // for (merged or gathered), in the binary protocol.
            return match self.execute_as_text(&sql, &params, &long_data, seq).await {
                Ok(flow) => Ok(flow),
                Err(CommandError::Client(e)) => Err(client(e)),
                Err(CommandError::Sql(e)) => {
                    self.send_err(seq, &e).await.map_err(client)?;
                    Ok(Flow::Continue)
                }
            };
        }
        let [target] = targets.as_slice() else {
            let e = SqlError::unsupported(format!(
                "not supported by shardgate yet: a prepared write whose execution runs on {} shards \
                 of different statements; bind the shard key to one value, or send it as text",
                targets.len()
            ));
            self.send_err(seq, &e).await.map_err(client)?;
            return Ok(Flow::Continue);
        };
        if let Some(e) = self.transaction_conflict(&[target.node]) {
            self.send_err(seq, &e).await.map_err(client)?;
            return Ok(Flow::Continue);
        }
        let label = if prepared.plan.write { "write" } else { "read" };
        metrics::counter!("shardgate_routed_executions_total", "class" => label).increment(1);
        // A statement run beside a begun transaction (its BEGIN not sent yet) reads
        // where the transaction will: on a primary, as text statements do.
        // A cursor holds its connection, which later writes of the session may use:
        // never a replica's.
        let read_only = read_only
            && !cursor
            && !prepared.plan.write
            && !self.lease.must_keep()
            && !self.lease.pending_aside;
        let mut held = match self.checkout(target.node, read_only, false).await {
            Ok(h) => h,
            Err(e) => {
                self.send_err(seq, &e).await.map_err(client)?;
                return Ok(Flow::Continue);
            }
        };
        let database = match schema {
            Some(schema) => Some(schema.database_on(&rt.nodes, target.node).to_string()),
            None => plain_db,
        };
        let ready = match &database {
            Some(db) => held.conn.use_database(db).await,
            None => Ok(()),
        };
        let ready = match ready {
            Ok(()) => {
                let wire = self.charset.encode(&target.sql);
                binary.send(&mut held, &target.sql, &wire).await
            }
            Err(e) => Err(e),
        };
        let backend_id = match ready {
            Ok(backend_id) => backend_id,
            Err(e) => {
                if let WireError::Server { .. } = &e {
                    held.conn.forget_statement(&target.sql);
                    self.keep_or_release(held, 0).await;
                    self.send_err(seq, &e.to_client("")).await.map_err(client)?;
                    return Ok(Flow::Continue);
                }
                return Err(RelayError::Backend(e, Reached::Nothing));
            }
        };
        let renames = match schema {
            Some(schema) => Renames::new(&rt, schema, &prepared.plan),
            None => Renames::none(),
        };
        if cursor {
            return self
                .open_cursor(held, (id, backend_id), seq, &renames)
                .await;
        }
        let mut seq = seq;
        match self
            .relay_one(&mut held, &mut seq, (true, true), &mut Vec::new(), &renames)
            .await?
        {
            Relayed::Done {
                status,
                warnings,
                insert_id,
            } => {
                self.lease.note_status(status);
                self.note_insert_id(insert_id);
                self.keep_or_release(held, warnings).await;
            }
            Relayed::Error => self.keep_or_release(held, 0).await,
        }
        Ok(Flow::Continue)
    }
}
