//! Commands shardgate answers from its own state: USE, SHOW DATABASES of logical
//! schemas, COM_SET_OPTION.

use super::{Flow, Reply, Session};
use crate::wire::response::Mode;
use crate::wire::resultset::LocalColumn;
use crate::wire::{SqlError, WireError};
use mysql_common::constants::CapabilityFlags;

impl Session {
    /// Makes `db` the session's database, if the user may use it and it exists.
    pub(super) async fn select_database(&mut self, db: &str) -> Result<(), SqlError> {
        let runtime = self.lease.topo.runtime.clone();
        let logical = runtime.is_known_database(db);
        if !logical && runtime.passthrough.is_none() {
            return Err(SqlError::unknown_database(db));
        }
        if let Some(user) = &self.user {
            // information_schema as the current database would be read without the
            // per-user filter that queries naming it get.
            let allowed = !self.shared.settings.enforce_privileges
                || (super::access::may_name(user, db, &runtime)
                    && (!db.eq_ignore_ascii_case("information_schema")
                        || user.may(router::privilege::Need::Admin)));
            if !allowed {
                return Err(SqlError::db_access_denied(
                    &user.name,
                    &self.peer.ip().to_string(),
                    db,
                ));
            }
        }
        if runtime.is_known_database(db) {
            self.db = Some(db.to_string());
            return Ok(());
        }
        let Some(node) = runtime.passthrough else {
            return Err(SqlError::unknown_database(db));
        };
        drop(runtime);
        // A passthrough database: ask the backend whether it exists and may be used.
        let mut held = self.checkout(node, false, false).await?;
        let result = held.conn.use_database(db).await;
        match result {
            Ok(()) => {
                self.db = Some(db.to_string());
                self.keep_or_release(held, 0).await;
                Ok(())
            }
            Err(e @ WireError::Server { .. }) => {
                self.keep_or_release(held, 0).await;
                Err(e.to_client(""))
            }
            Err(e) => Err(SqlError::backend_lost(format!(
                "shardgate: backend connection failed while selecting database `{db}`: {e}"
            ))),
        }
    }

    /// `SHOW DATABASES [LIKE 'pattern']` in a config with logical schemas and no
    /// passthrough node: the logical schemas this user may see.
    pub(super) async fn show_logical_databases(&mut self, pattern: Option<&str>, seq: u8) -> Reply {
        let allowed = self
            .user
            .as_ref()
            .map(|u| u.schemas.clone())
            .unwrap_or_default();
        let runtime = self.lease.topo.runtime.clone();
        let mut rows = vec![vec![Some("information_schema".to_string())]];
        rows.extend(
            runtime
                .schemas
                .keys()
                .filter(|s| allowed.is_empty() || allowed.contains(s))
                .map(|s| vec![Some(s.clone())]),
        );
        if let Some(p) = pattern {
            rows.retain(|r| {
                r[0].as_deref()
                    .is_some_and(|name| like(p.as_bytes(), name.as_bytes()))
            });
        }
        let header = match pattern {
            Some(p) => format!("Database ({p})"),
            None => "Database".to_string(),
        };
        self.send_result_set(seq, "SCHEMATA", &[LocalColumn::text(&header)], &rows)
            .await
    }

    /// COM_SET_OPTION: multi-statements on or off. Changes the flavor of backend
    /// connections the session uses from now on.
    pub(super) async fn set_option(&mut self, payload: &[u8], seq: u8) -> Reply {
        let on = match payload.get(1..3) {
            Some([0, 0]) => true,
            Some([1, 0]) => false,
            _ => {
                let e = SqlError::new(1047, "08S01", "Unknown COM_SET_OPTION value");
                return Err(e.into());
            }
        };
        self.capabilities
            .set(CapabilityFlags::CLIENT_MULTI_STATEMENTS, on);
        self.flavor
            .capabilities
            .set(CapabilityFlags::CLIENT_MULTI_STATEMENTS, on);
        if self.lease.must_keep() && self.lease.held.is_some() {
            // The held connection keeps serving this session: switch it too.
            let flow = self.forward_to_primary(payload, seq, Mode::Single).await;
            if let Some(h) = &mut self.lease.held {
                h.conn
                    .conn
                    .flavor
                    .capabilities
                    .set(CapabilityFlags::CLIENT_MULTI_STATEMENTS, on);
            }
            return flow;
        }
        self.release_held().await;
        self.send_eof(seq).await?;
        Ok(Flow::Continue)
    }
}

/// SQL `LIKE` with `%`, `_` and backslash escapes, ASCII case-insensitive.
pub(super) fn like(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'%', rest)) => (0..=text.len()).any(|i| like(rest, &text[i..])),
        Some((b'_', rest)) => !text.is_empty() && like(rest, &text[1..]),
        Some((b'\\', rest)) if !rest.is_empty() => {
            !text.is_empty()
                && text[0].eq_ignore_ascii_case(&rest[0])
                && like(&rest[1..], &text[1..])
        }
        Some((c, rest)) => {
            !text.is_empty() && text[0].eq_ignore_ascii_case(c) && like(rest, &text[1..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn like_patterns() {
        assert!(like(b"app%", b"app_db"));
        assert!(like(b"a_p", b"APP"));
        assert!(!like(b"a_p", b"ap"));
        assert!(like(b"a\\_b", b"a_b"));
        assert!(!like(b"a\\_b", b"axb"));
        assert!(like(b"%", b""));
    }
}
