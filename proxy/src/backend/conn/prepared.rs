//! Server-side prepared statements on a backend connection: kept per database and
//! statement text for the routed prepared statements of the sessions that use the
//! connection, closed in bulk past a bound, and prepared once for a parse check.

use std::collections::HashMap;

use bytes::Bytes;

use super::BackendConn;
use crate::wire::command::{COM_STMT_CLOSE, COM_STMT_PREPARE, COM_STMT_RESET};
use crate::wire::stmt::PrepareOk;
use crate::wire::WireError;

/// Statements one connection keeps prepared for shardgate's routed prepared
/// statements. Past this they are all closed, so many clients preparing many
/// statements never exhaust the server's `max_prepared_stmt_count`.
const MAX_STATEMENTS: usize = 256;

/// A statement prepared on this connection.
#[derive(Debug, Clone, Copy)]
pub struct BackendStmt {
    pub id: u32,
    pub params: u16,
    pub columns: u16,
}

/// A fresh prepare's full answer: the statement and its metadata packets.
pub struct PrepareAnswer {
    pub stmt: BackendStmt,
    pub warnings: u16,
    pub param_defs: Vec<Bytes>,
    pub column_defs: Vec<Bytes>,
}

impl BackendConn {
    /// COM_STMT_RESET of statement `id`: closes its cursor, if it has one.
    pub async fn reset_statement(&mut self, id: u32) -> Result<(), WireError> {
        self.simple(COM_STMT_RESET, &id.to_le_bytes())
            .await
            .map(drop)
    }

    /// The statement for `sql` on this connection, prepared now (sending `wire`, the
    /// text in the connection's character set) if it is not yet.
    pub async fn statement(&mut self, sql: &str, wire: &[u8]) -> Result<BackendStmt, WireError> {
        if let Some(s) = self.statements.get(&self.database).and_then(|m| m.get(sql)) {
            return Ok(*s);
        }
        Ok(self.prepare(sql, wire).await?.stmt)
    }

    /// Prepares `sql` (COM_STMT_PREPARE) and reads the whole answer.
    pub async fn prepare(&mut self, sql: &str, wire: &[u8]) -> Result<PrepareAnswer, WireError> {
        if self.statement_count >= MAX_STATEMENTS {
            let all = std::mem::take(&mut self.statements);
            self.statement_count = 0;
            for s in all.into_values().flat_map(HashMap::into_values) {
                self.close_statement(s.id).await?;
            }
        }
        let mut payload = Vec::with_capacity(1 + wire.len());
        payload.push(COM_STMT_PREPARE);
        payload.extend_from_slice(wire);
        self.send_command(&payload).await?;
        let head = self.read_packet().await?;
        if head.payload.first() == Some(&0xFF) {
            self.settle(None);
            return Err(WireError::from_err_packet(&head.payload));
        }
        let ok = PrepareOk::parse(&head.payload)
            .ok_or(WireError::Protocol("malformed COM_STMT_PREPARE answer"))?;
        let mut read_defs = async |n: u16| -> Result<Vec<Bytes>, WireError> {
            let mut defs = Vec::with_capacity(n as usize);
            for _ in 0..n {
                defs.push(self.read_packet().await?.payload);
            }
            if n > 0 && !self.flavor.deprecate_eof() {
                self.read_packet().await?;
            }
            Ok(defs)
        };
        let param_defs = read_defs(ok.params).await?;
        let column_defs = read_defs(ok.columns).await?;
        self.settle(None);
        let stmt = BackendStmt {
            id: ok.id,
            params: ok.params,
            columns: ok.columns,
        };
        let here = self.statements.entry(self.database.clone()).or_default();
        match here.insert(sql.to_string(), stmt) {
            None => self.statement_count += 1,
            Some(old) => {
                // Prepared again (for its metadata): the old handle is not needed.
                self.close_statement(old.id).await?;
            }
        }
        Ok(PrepareAnswer {
            stmt,
            warnings: ok.warnings,
            param_defs,
            column_defs,
        })
    }

    /// Whether the server can parse `wire`, found by preparing it (nothing runs).
    pub async fn check_parses(&mut self, wire: &[u8]) -> Result<(), WireError> {
        const KEY: &str = "\0shardgate: parse check";
        let answer = self.prepare(KEY, wire).await?;
        self.forget_statement(KEY);
        self.close_statement(answer.stmt.id).await
    }

    /// Forgets a statement the server no longer knows (it answered "unknown handler").
    pub fn forget_statement(&mut self, sql: &str) {
        if let Some(m) = self.statements.get_mut(&self.database) {
            if m.remove(sql).is_some() {
                self.statement_count -= 1;
            }
        }
    }

    /// COM_STMT_CLOSE (the server does not answer it).
    async fn close_statement(&mut self, id: u32) -> Result<(), WireError> {
        let mut close = vec![COM_STMT_CLOSE];
        close.extend_from_slice(&id.to_le_bytes());
        self.send_unanswered(&close).await
    }
}
