//! A cursor on a prepared read over several shards (or one that needs a gather):
//! the rows it reads are gathered onto a connection to the evaluating node, as for
//! any gathered read, and that server opens the cursor over them with the bound
//! values written in. The server keeps the cursor's result, as it would for one
//! MariaDB, so shardgate holds no rows however slowly the client fetches; the
//! connection stays with the statement until its last row is sent or the client
//! resets, closes or executes the statement again, and is then reset (the copies
//! and the cursor go with it) before anyone else uses it.

use mysql_common::constants::StatusFlags;
use rules::runtime::LogicalSchema;
use rules::Runtime;

use super::cursor_answer::Flags;
use super::sharded::{route_error, RelayError, Renames};
use super::text_execution::bind;
use super::{Flow, Held, Reply, Session};
use crate::wire::command::COM_STMT_EXECUTE;
use crate::wire::stmt::Param;
use crate::wire::SqlError;

/// An open gathered cursor: the connection that holds it and its statement there.
pub(super) struct GatheredCursor {
    pub(super) held: Held,
    backend_id: u32,
}

/// What a gathered cursor is opened for.
pub(super) struct CursorRequest<'a> {
    /// The client's statement id.
    pub(super) id: u32,
    /// The prepared text, decoded.
    pub(super) sql: &'a str,
    pub(super) params: &'a [Param<'a>],
    pub(super) long_data: &'a [(u16, Vec<u8>)],
    /// The cursor flags of the client's COM_STMT_EXECUTE.
    pub(super) flags: u8,
}

impl Session {
    /// Gathers the rows the statement reads and opens the cursor over them; the
    /// answer (column definitions, no rows) goes to the client.
    pub(super) async fn open_gathered_cursor(
        &mut self,
        req: CursorRequest<'_>,
        rt: &Runtime,
        schema: &LogicalSchema,
        seq: u8,
    ) -> Result<Flow, RelayError> {
        let opened = self.gathered_cursor_connection(&req, rt, schema).await;
        let (mut held, g, backend_id) = match opened {
            Ok(o) => o,
            Err(e) => {
                self.outcome.failed = true;
                self.send_err(seq, &e).await.map_err(RelayError::Client)?;
                return Ok(Flow::Continue);
            }
        };
        let mut execute = Vec::with_capacity(10);
        execute.push(COM_STMT_EXECUTE);
        execute.extend_from_slice(&backend_id.to_le_bytes());
        execute.push(req.flags);
        execute.extend_from_slice(&1u32.to_le_bytes());
        if let Err(e) = held.conn.send_command(&execute).await {
            drop(held);
            let e = e.to_client("(opening the cursor)");
            self.send_err(seq, &e).await.map_err(RelayError::Client)?;
            return Ok(Flow::Continue);
        }
        let renames = Renames::database(&g.database, &schema.name);
        let flags = Flags::cursor_only(self.lease.status());
        let answer = self
            .relay_cursor_answer(&mut held, seq, &renames, flags)
            .await;
        match answer {
            Ok(a) if a.opened() => {
                self.routed
                    .gathered
                    .insert(req.id, GatheredCursor { held, backend_id });
                Ok(Flow::Continue)
            }
            Ok(_) => {
                self.give_back(held).await;
                Ok(Flow::Continue)
            }
            Err(RelayError::Client(e)) => Err(RelayError::Client(e)),
            // The evaluating connection is not the session's: its loss is this
            // statement's error alone.
            Err(RelayError::Backend(e, reached)) => {
                drop(held);
                let e = e.to_client("(opening the cursor)");
                self.answer_cut(reached, seq, e)
                    .await
                    .map_err(RelayError::Client)
            }
        }
    }

    /// The evaluating connection with the statement's rows copied and the statement
    /// (its values written in) prepared there.
    async fn gathered_cursor_connection(
        &mut self,
        req: &CursorRequest<'_>,
        rt: &Runtime,
        schema: &LogicalSchema,
    ) -> Result<(Held, router::plan::Gather, u32), SqlError> {
        let text = bind(
            req.sql,
            req.params,
            req.long_data,
            &self.charset,
            self.reading,
        )?;
        let g = match router::plan(text.as_bytes(), schema, rt, self.reading) {
            Ok(Some(plan)) => match plan.gather {
                Some(g) => Some(*g),
                // A direct plan streams or merges as it reads; a cursor needs the
                // result kept, which the evaluating server does.
                None => router::plan::gather_plan(
                    &text,
                    schema,
                    rt,
                    self.reading,
                    "a cursor over the rows of several shards",
                )
                .map_err(|e| route_error(&e))?,
            },
            Ok(None) => None,
            Err(e) => return Err(route_error(&e)),
        };
        let g = g.ok_or_else(|| {
            SqlError::internal("shardgate could not plan the cursor's statement over its shards")
        })?;
        let mut held = self.gather_rows(&g, rt, schema).await?;
        if !self.may_write() {
            if let Err(e) = held.conn.refuse_writes().await {
                self.give_back(held).await;
                return Err(e.to_client("(making a connection refuse writes)"));
            }
        }
        let wire = self.charset.encode(&g.sql).into_owned();
        let prepared = match held.conn.use_database(&g.database).await {
            Ok(()) => held.conn.prepare(&g.sql, &wire).await,
            Err(e) => Err(e),
        };
        match prepared {
            Ok(answer) => Ok((held, g, answer.stmt.id)),
            Err(e) => {
                self.give_back(held).await;
                Err(e.to_client("(opening the cursor)"))
            }
        }
    }

    /// COM_STMT_FETCH on a gathered cursor.
    pub(super) async fn fetch_gathered(&mut self, id: u32, payload: &[u8]) -> Reply {
        let Some(GatheredCursor {
            mut held,
            backend_id,
        }) = self.routed.gathered.remove(&id)
        else {
            let message = format!("The statement ({id}) has no open cursor");
            return Err(SqlError::new(1421, "HY000", message).into());
        };
        let mut fetch = payload.to_vec();
        if let Some(at) = fetch.get_mut(1..5) {
            at.copy_from_slice(&backend_id.to_le_bytes());
        }
        if let Err(e) = held.conn.send_command(&fetch).await {
            drop(held);
            return Err(e.to_client("(the cursor is gone)").into());
        }
        // The session's transaction and autocommit, not this connection's.
        let flags = Flags::cursor_only(self.lease.status());
        match self.relay_fetch(&mut held, flags).await {
            Ok(Some(status)) if !status.contains(StatusFlags::SERVER_STATUS_LAST_ROW_SENT) => {
                self.routed
                    .gathered
                    .insert(id, GatheredCursor { held, backend_id });
                Ok(Flow::Continue)
            }
            // After the last row or an error the server has closed the cursor.
            Ok(_) => {
                self.give_back(held).await;
                Ok(Flow::Continue)
            }
            Err(RelayError::Client(e)) => Err(e.into()),
            Err(RelayError::Backend(e, reached)) => {
                drop(held);
                let e = e.to_client("(the cursor is gone)");
                // A fetch's answer starts at sequence id 1.
                Ok(self.answer_cut(reached, 1, e).await?)
            }
        }
    }
}
