//! Session `SET`s: run once where the server can check them, then remembered and
//! replayed on whichever connection runs the session's next statements (or, for a
//! one-shot `SET TRANSACTION`, on its next transaction's connection).

use router::PinReason;
use rules::NodeId;

use super::{Flow, Reply, Session};
use crate::wire::WireError;

/// Session `SET`s remembered for replay; past this the session is pinned instead.
const MAX_REPLAYED_SETS: usize = 32;

impl Session {
    /// A `SET` of session variables: run it, then remember it for the connections
    /// that run the session's later statements (nothing is pinned). A one-shot `SET
    /// TRANSACTION` is remembered for the next transaction's connection instead.
    pub(super) async fn set_session_state(&mut self, sql: &[u8], seq: u8, one_shot: bool) -> Reply {
        let (node, database) = self.placement(None)?;
        // The server checks the SET here; what travels with the next transaction
        // must not be spent on it.
        let next_txn = std::mem::take(&mut self.lease.next_txn);
        let pending = self.lease.set_pending_aside();
        let flow = self.run_set(sql, seq, one_shot, node, database).await;
        self.lease.next_txn.splice(0..0, next_txn);
        self.lease.restore_pending(pending);
        flow
    }

    async fn run_set(
        &mut self,
        sql: &[u8],
        seq: u8,
        one_shot: bool,
        node: NodeId,
        database: Option<String>,
    ) -> Reply {
        let checked = self.checkout(node, false, false).await;
        let mut held = checked?;
        let ran = match &database {
            Some(db) => held.conn.use_database(db).await,
            None => Ok(()),
        };
        let ran = match ran {
            Ok(()) => held.conn.execute_ok(sql).await,
            Err(e) => Err(e),
        };
        match ran {
            Ok(ok) => {
                held.conn.dirty = true;
                if router::classify::may_change_client_charset(sql)
                    || router::classify::may_change_sql_mode(sql)
                {
                    self.refresh_reading(&mut held).await;
                }
                if one_shot {
                    self.lease.next_txn.push(sql.to_vec());
                } else if self.lease.replay.len() >= MAX_REPLAYED_SETS {
                    // A session that keeps setting things: keep its connection instead.
                    self.pin(&mut held, PinReason::SessionVariable);
                } else {
                    self.lease.replay.push(sql.to_vec());
                    self.lease.replay_gen += 1;
                    held.conn.session_state = Some((self.id, self.lease.replay_gen));
                }
                self.lease.note_status(Some(ok.status));
                let mut seq = seq;
                let p = crate::wire::generic::ok_payload(
                    ok.affected,
                    ok.last_insert_id,
                    self.lease.status(),
                    ok.warnings,
                );
                crate::wire::packet::write_packet(&mut self.out, &mut seq, &p);
                self.flush().await?;
                self.keep_or_release(held, ok.warnings).await;
            }
            Err(e @ WireError::Server { .. }) => {
                self.keep_or_release(held, 0).await;
                return Err(e.to_client("").into());
            }
            Err(e) => {
                self.forget_connection_state();
                let e = e.to_client("(the setting may or may not have been applied)");
                return Err(e.into());
            }
        }
        Ok(Flow::Continue)
    }

    /// Asks the connection that just ran a `SET` what the client's character set and
    /// sql_mode are now: the server's answer, not shardgate's reading of the SQL,
    /// decides how statements are decoded and read. What cannot be asked counts as
    /// unreadable (and as NO_BACKSLASH_ESCAPES, the stricter reading for checks).
    pub(super) async fn refresh_reading(&mut self, held: &mut super::Held) {
        let answer = held
            .conn
            .query_rows(b"SELECT @@character_set_client, @@sql_mode")
            .await;
        let row = match &answer {
            Ok((_, rows)) => rows.first(),
            Err(_) => None,
        };
        let value = |i: usize| {
            row.and_then(|r| r.get(i).cloned().flatten())
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        };
        self.charset = match value(0) {
            Some(name) => super::charset::ClientCharset::from_name(&name),
            None => super::charset::ClientCharset::Unsupported("unknown".into()),
        };
        let mode = |flag: &str| {
            value(1).is_none_or(|m| m.split(',').any(|f| f.eq_ignore_ascii_case(flag)))
        };
        self.reading = router::reading::Reading {
            backslash_escapes: !mode("NO_BACKSLASH_ESCAPES"),
            // ANSI mode includes ANSI_QUOTES.
            ansi_quotes: mode("ANSI_QUOTES") || mode("ANSI"),
            // So does PIPES_AS_CONCAT.
            pipes_as_concat: mode("PIPES_AS_CONCAT") || mode("ANSI"),
        };
        self.lease.no_backslash_escapes = !self.reading.backslash_escapes;
    }

    /// The statement in `payload` (command byte first) with its executable comments
    /// resolved as the backend reads them (see `router::comments`); `None`: none.
    pub(super) fn resolve_comments(&self, payload: &[u8]) -> Option<Vec<u8>> {
        let (&cmd, sql) = payload.split_first()?;
        let sql = router::comments::resolve(sql, self.reading, self.shared.backend_version)?;
        let mut p = Vec::with_capacity(1 + sql.len());
        p.push(cmd);
        p.extend_from_slice(&sql);
        Some(p)
    }
}
