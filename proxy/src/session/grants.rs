//! Questions about the account and the server that shardgate answers in its own
//! terms: every backend connection logs in as shardgate's account, so the backend's
//! answers (its grants with a password hash, its process list, its user name) would
//! describe that account and other clients' connections, not this client.

use router::privilege::Need;

use super::{Flow, Reply, Session};
use crate::wire::resultset::LocalColumn;
use crate::wire::SqlError;

impl Session {
    /// `SHOW GRANTS`: the user's rights in shardgate's model, as GRANT statements.
    pub(super) async fn show_grants(&mut self, own: bool, seq: u8) -> Reply {
        let Some(user) = self.user.clone() else {
            return Ok(Flow::Continue);
        };
        if !own {
            let e = SqlError::new(
                1044,
                "42000",
                format!(
                    "Access denied for user '{}'@'%' to database 'mysql' (shardgate shows only your own grants)",
                    user.name
                ),
            );
            return Err(e.into());
        }
        let who = format!("`{}`@`%`", user.name.replace('`', "``"));
        let mut global = Vec::new();
        for (need, privilege) in [
            (Need::Account, "CREATE USER"),
            (Need::File, "FILE"),
            (Need::Admin, "SUPER, RELOAD, SHUTDOWN, PROCESS"),
        ] {
            if user.may(need) {
                global.push(privilege);
            }
        }
        let mut rows = vec![format!(
            "GRANT {} ON *.* TO {who}",
            if global.is_empty() {
                "USAGE".to_string()
            } else {
                global.join(", ")
            }
        )];
        let mut on_schema = Vec::new();
        for (need, privileges) in [
            (Need::Read, "SELECT"),
            (Need::Write, "INSERT, UPDATE, DELETE"),
            (Need::Ddl, "CREATE, ALTER, DROP, INDEX"),
        ] {
            if user.may(need) {
                on_schema.push(privileges);
            }
        }
        if !on_schema.is_empty() {
            let rt = self.lease.topo.runtime.clone();
            let schemas: Vec<String> = if user.schemas.iter().any(|s| s == "*") {
                vec!["*".to_string()]
            } else if user.schemas.is_empty() {
                rt.schemas.keys().map(|s| format!("`{s}`")).collect()
            } else {
                user.schemas.iter().map(|s| format!("`{s}`")).collect()
            };
            for s in schemas {
                rows.push(format!("GRANT {} ON {s}.* TO {who}", on_schema.join(", ")));
            }
        }
        // Rights of single tables replace the schema's: MySQL's grammar has no
        // narrowing, so each says so.
        for (table, rights) in &user.tables {
            let (s, t) = table.split_once('.').unwrap_or(("", table));
            let on = format!("`{s}`.`{t}`");
            let granted: Vec<&str> = [
                (Need::Read, "SELECT"),
                (Need::Write, "INSERT, UPDATE, DELETE"),
                (Need::Ddl, "CREATE, ALTER, DROP, INDEX"),
            ]
            .iter()
            .filter(|(n, _)| rights.iter().any(|r| Need::parse(r) == Some(*n)))
            .map(|(_, p)| *p)
            .collect();
            // Every row stays a GRANT statement a tool can replay; the comment
            // says what MySQL's grammar cannot (narrowing).
            let granted = if granted.is_empty() {
                "USAGE".to_string()
            } else {
                granted.join(", ")
            };
            rows.push(format!(
                "GRANT {granted} ON {on} TO {who} -- shardgate: only these, in place of its schema's"
            ));
        }
        let mut notes = Vec::new();
        if user.require_where {
            notes.push("require_where".to_string());
        }
        if !user.deny_digests.is_empty() || !user.deny_patterns.is_empty() {
            notes.push(format!(
                "SQL firewall: {} denied digests, {} denied patterns",
                user.deny_digests.len(),
                user.deny_patterns.len()
            ));
        }
        if let (Some(first), false) = (rows.first_mut(), notes.is_empty()) {
            first.push_str(&format!(" -- shardgate: {}", notes.join("; ")));
        }
        let rows: Vec<Vec<Option<String>>> = rows.into_iter().map(|r| vec![Some(r)]).collect();
        let column = LocalColumn::text(&format!("Grants for {}@%", user.name));
        self.send_result_set(seq, "", &[column], &rows).await
    }

    /// `SHOW [FULL] PROCESSLIST`: shardgate's sessions (the user's own; all of them
    /// for a user with the `admin` grant), with the ids KILL takes.
    /// The user's own sessions (every session with the admin grant), as MySQL shows
    /// its threads: statements cut at 100 characters unless FULL.
    pub(super) async fn show_processlist(&mut self, full: bool, seq: u8) -> Reply {
        let (me, all) = match &self.user {
            Some(u) => (
                u.name.clone(),
                u.may(Need::Admin) || !self.shared.settings.enforce_privileges,
            ),
            None => (String::new(), false),
        };
        let rows: Vec<Vec<Option<String>>> = self
            .shared
            .sessions
            .list()
            .into_iter()
            .filter(|(_, c)| all || c.user == me)
            .map(|(id, c)| {
                let a = c.activity();
                let info = a.info().map(|mut s| {
                    if !full {
                        if let Some((at, _)) = s.char_indices().nth(100) {
                            s.truncate(at);
                        }
                    }
                    s
                });
                vec![
                    Some(id.to_string()),
                    Some(c.user.clone()),
                    Some(c.host.clone()),
                    a.db,
                    Some(a.command.to_string()),
                    Some(a.since.elapsed().as_secs().to_string()),
                    Some(String::new()),
                    info,
                ]
            })
            .collect();
        let columns = [
            LocalColumn::integer("Id"),
            LocalColumn::text("User"),
            LocalColumn::text("Host"),
            LocalColumn::text("db"),
            LocalColumn::text("Command"),
            LocalColumn::integer("Time"),
            LocalColumn::text("State"),
            LocalColumn::text("Info"),
        ];
        self.send_result_set(seq, "", &columns, &rows).await
    }

    /// `CURRENT_USER()`, `USER()`: shardgate's user.
    pub(super) async fn answer_current_user(&mut self, column: &str, seq: u8) -> Reply {
        let name = self
            .user
            .as_ref()
            .map(|u| u.name.clone())
            .unwrap_or_default();
        let rows = vec![vec![Some(format!("{name}@%"))]];
        self.send_result_set(seq, "", &[LocalColumn::text(column)], &rows)
            .await
    }

    /// The command in `payload` as a backend must run it: CONNECTION_ID() gives
    /// shardgate's id (the one KILL takes), and with `users`, CURRENT_USER(), USER()
    /// and the like name shardgate's user, not the backend account. `None`: nothing
    /// to replace.
    pub(super) fn with_session_values(&self, payload: &[u8], users: bool) -> Option<Vec<u8>> {
        let numbered = self.number_connection_id(payload);
        let named = users
            .then(|| self.name_user_functions(numbered.as_deref().unwrap_or(payload)))
            .flatten();
        named.or(numbered)
    }

    fn number_connection_id(&self, payload: &[u8]) -> Option<Vec<u8>> {
        let (&cmd, sql) = payload.split_first()?;
        router::catalog::replace_connection_id(sql, self.id).map(|sql| {
            let mut p = Vec::with_capacity(1 + sql.len());
            p.push(cmd);
            p.extend_from_slice(&sql);
            p
        })
    }

    fn name_user_functions(&self, payload: &[u8]) -> Option<Vec<u8>> {
        let user = self.user.as_ref()?;
        if !self.shared.settings.enforce_privileges {
            return None;
        }
        let (&cmd, sql) = payload.split_first()?;
        // Most statements name no user function: no names are made for them.
        if !router::catalog::mentions_user(sql) {
            return None;
        }
        let host = self.peer.ip();
        let sql = router::catalog::replace_user_functions(
            sql,
            &format!("{}@%", user.name),
            &format!("{}@{host}", user.name),
        )?;
        let mut p = Vec::with_capacity(1 + sql.len());
        p.push(cmd);
        p.extend_from_slice(&sql);
        Some(p)
    }
}
