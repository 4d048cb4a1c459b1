//! `KILL [QUERY|CONNECTION] id`, COM_PROCESS_KILL and `CONNECTION_ID()`, with ids
//! that are shardgate's own connection ids.

use super::{Flow, Reply, Session};
use crate::control::Running;
use crate::wire::resultset::LocalColumn;
use crate::wire::SqlError;

impl Session {
    pub(super) async fn answer_connection_id(&mut self, column: &str, seq: u8) -> Reply {
        let rows = vec![vec![Some(self.id.to_string())]];
        let columns = [LocalColumn::integer(column)];
        self.send_result_set(seq, "", &columns, &rows).await
    }

    /// `SELECT @@max_connections`: the clients shardgate accepts (past them, 1040).
    pub(super) async fn answer_max_connections(&mut self, column: &str, seq: u8) -> Reply {
        let rows = vec![vec![Some(self.shared.settings.max_connections.to_string())]];
        let columns = [LocalColumn::integer(column)];
        self.send_result_set(seq, "", &columns, &rows).await
    }

    pub(super) async fn kill(&mut self, query_only: bool, id: u64, seq: u8) -> Reply {
        let target = u32::try_from(id)
            .ok()
            .and_then(|i| self.shared.sessions.get(i));
        let Some(target) = target else {
            let e = SqlError::new(1094, "HY000", format!("Unknown thread id: {id}"));
            return Err(e.into());
        };
        let me = self.user.as_ref().map(|u| u.name.as_str()).unwrap_or("");
        // The admin port may stop any session; a user, only their own.
        if self.port == super::Port::Data && target.user != me {
            let e = SqlError::new(1095, "HY000", format!("You are not owner of thread {id}"));
            return Err(e.into());
        }
        if u64::from(self.id) == id {
            if query_only {
                // Nothing of this session runs while it reads its own KILL QUERY.
                self.send_ok(seq).await?;
                return Ok(Flow::Continue);
            }
            let e = SqlError::connection_killed("Connection was killed");
            self.send_err(seq, &e).await?;
            return Ok(Flow::Close);
        }
        for r in target.running() {
            if let Err(e) = r.kill_query().await {
                tracing::warn!(conn = self.id, target = id, error = %e, "KILL QUERY on the backend failed");
            }
        }
        if !query_only {
            target.kill();
        }
        metrics::counter!("shardgate_kills_total", "what" => if query_only { "query" } else { "connection" })
            .increment(1);
        self.send_ok(seq).await?;
        Ok(Flow::Continue)
    }

    /// `SHOW SHARDGATE SESSIONS`: this user's sessions, with why each is pinned and
    /// which backend connection serves it now.
    pub(super) async fn show_sessions(&mut self, seq: u8) -> Reply {
        let me = self
            .user
            .as_ref()
            .map(|u| u.name.clone())
            .unwrap_or_default();
        let rows: Vec<Vec<Option<String>>> = self
            .shared
            .sessions
            .list()
            .into_iter()
            .filter(|(_, c)| c.user == me)
            .map(|(id, c)| {
                let running = c.running();
                let backends: Vec<String> = running
                    .iter()
                    .map(|r| format!("{}, thread {}", r.pool.target.label, r.thread))
                    .collect();
                let backend = (!backends.is_empty()).then(|| backends.join("; "));
                vec![
                    Some(id.to_string()),
                    Some(c.user.clone()),
                    Some(c.pins().join(",")),
                    backend,
                ]
            })
            .collect();
        let columns = [
            LocalColumn::integer("Id"),
            LocalColumn::text("User"),
            LocalColumn::text("Pinned_by"),
            LocalColumn::text("Backend"),
        ];
        self.send_result_set(seq, "", &columns, &rows).await
    }

    /// The backend connection now serving this session, for KILL and timeouts.
    pub(super) fn running_on(&self, held: &super::Held) -> Running {
        Running {
            pool: held.conn.pool().clone(),
            thread: held.conn.connection_id,
        }
    }
}
