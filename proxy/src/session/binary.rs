//! A prepared statement's execution sent to the connections of several shards.

use super::Held;
use crate::wire::generic;
use crate::wire::WireError;

/// A prepared statement's execution, to be run on several connections.
pub(super) struct BinaryExecution<'a> {
    pub exec: crate::wire::stmt::Execute<'a>,
    pub types: &'a [u8],
    pub long_data: &'a [(u16, Vec<u8>)],
}

impl BinaryExecution<'_> {
    /// Prepares `sql` on the connection if needed, sends the long data and the
    /// execution (not reading the answer). Returns the statement's id there.
    pub async fn send(&self, held: &mut Held, sql: &str, wire: &[u8]) -> Result<u32, WireError> {
        use crate::wire::command::COM_STMT_SEND_LONG_DATA;
        let backend = held.conn.statement(sql, wire).await?;
        for (param, data) in self.long_data {
            let mut p = Vec::with_capacity(7 + data.len());
            p.push(COM_STMT_SEND_LONG_DATA);
            p.extend_from_slice(&backend.id.to_le_bytes());
            p.extend_from_slice(&param.to_le_bytes());
            p.extend_from_slice(data);
            held.conn.send_unanswered(&p).await?;
        }
        held.conn
            .send_command(&self.exec.encode_for(backend.id, self.types))
            .await?;
        Ok(backend.id)
    }

    pub(super) async fn run(
        &self,
        held: &mut Held,
        sql: &str,
        wire: &[u8],
    ) -> Result<generic::OkInfo, WireError> {
        self.send(held, sql, wire).await?;
        let done = held.conn.read_ok().await;
        if matches!(done, Err(WireError::Server { .. })) {
            held.conn.forget_statement(sql);
        }
        done
    }
}
