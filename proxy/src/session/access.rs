//! A client never acts with more than its own rights. Every statement reaches the
//! backend with shardgate's account, so before anything is sent shardgate checks the
//! statement against its own user model: the rights it needs (reads, writes, DDL,
//! and the grants for accounts, files and administration), and every table it names
//! with a schema qualifier (`other_db.t`, `mysql.user`), which must be a schema the
//! user may use. Zero-config pass-through clients log in with the backend's own
//! account and are not checked.

use router::privilege::{Need, Reading};
use rules::Runtime;

use super::table_rights::{Checked, Scope};
use super::Session;
use crate::config::UserConfig;
use crate::wire::SqlError;

/// Schemas of the server itself, never reachable through a logical schema; only a
/// user with the `admin` grant may name them.
pub(super) const SYSTEM_SCHEMAS: [&str; 3] = ["mysql", "performance_schema", "sys"];

impl Session {
    /// `Err` is the answer to send instead of running `sql`.
    /// `nested`: the text is not run as it stands (a binary PREPARE).
    pub(super) fn check_access(
        &self,
        sql: &[u8],
        rt: &Runtime,
        nested: bool,
    ) -> Result<(), SqlError> {
        if !self.shared.settings.enforce_privileges {
            return Ok(());
        }
        let Some(user) = &self.user else {
            return Ok(());
        };
        // Read as the text it is in the client's character set: in GBK or SJIS a byte
        // 0x5C may be the second half of a character, not a backslash.
        let text = self.charset.decode(sql)?;
        // Strings and identifiers are read as the server will read them: without
        // backslash escapes under NO_BACKSLASH_ESCAPES, `"x"` as an identifier under
        // ANSI_QUOTES. A statement that may change sql_mode (SET sql_mode = 2097152;
        // …, SET STATEMENT … FOR …) is read every way.
        let session = self.reading;
        let readings: Vec<Reading> = if mentions(&text, b"sql_mode") {
            [(true, false), (false, false), (true, true), (false, true)]
                .into_iter()
                .map(|(backslash_escapes, ansi_quotes)| Reading {
                    backslash_escapes,
                    ansi_quotes,
                    pipes_as_concat: false,
                })
                .collect()
        } else {
            vec![session]
        };
        for &reading in &readings {
            let parts = router::privilege::statements(&text, reading);
            let batch = parts.iter().filter(|p| !is_blank(p)).count() > 1;
            // The statements after a SET NAMES are in another character set, in which
            // a quote or backslash byte may be half of a character: they cannot be
            // read here as the server will read them.
            let last = parts.iter().rposition(|p| !is_blank(p)).unwrap_or(0);
            if batch
                && parts[..last]
                    .iter()
                    .any(|p| router::classify::may_change_client_charset(p))
            {
                return Err(SqlError::unsupported(
                    "not supported by shardgate yet: statements after a SET NAMES or SET CHARACTER SET \
                     in one batch; send the SET on its own",
                ));
            }
            for part in parts {
                if batch && router::catalog::answered_alone(part) && !user.may(Need::Admin) {
                    return Err(SqlError::specific_access_denied("Access denied; KILL, SHOW PROCESSLIST and SHOW GRANTS are answered by shardgate \
                         only when sent alone; send them as statements of their own",
                    ));
                }
                self.check_statement(user, part, reading, rt, u8::from(nested), Scope::Session)?;
            }
        }
        Ok(())
    }

    /// One statement of a batch, read one way.
    fn check_statement(
        &self,
        user: &UserConfig,
        sql: &[u8],
        reading: Reading,
        rt: &Runtime,
        depth: u8,
        scope: Scope,
    ) -> Result<(), SqlError> {
        if depth > 4 {
            return Err(SqlError::specific_access_denied(
                "Access denied; shardgate does not check statements nested this deep",
            ));
        }
        // A shard's physical table is no table clients may name, in any statement
        // (RENAME, DROP INDEX … ON, dynamic SQL, routine bodies …).
        if let Some((schema, table)) = self.shard_table_named(sql, reading, rt) {
            return Err(SqlError::no_such_table(format!(
                    "Table '{schema}.{table}' doesn't exist (it is a shard of a sharded table; use the logical table)"
                ),
            ));
        }
        // What shardgate answers itself reaches the backend from anywhere else.
        if depth > 0 && router::catalog::answered_alone(sql) && !user.may(Need::Admin) {
            return Err(SqlError::specific_access_denied("Access denied; KILL, SHOW PROCESSLIST, SHOW GRANTS and SHOW DATABASES are answered \
                 by shardgate only when sent alone as text; inside a routine, dynamic SQL or a \
                 prepared statement they need the admin grant",
            ));
        }
        // SET STATEMENT … FOR <statement>: the statement is what runs.
        if let Some(inner) = router::privilege::set_statement_inner(sql, reading) {
            self.check_statement(user, inner, reading, rt, depth + 1, scope)?;
        }
        // PREPARE … FROM '<sql>' and EXECUTE IMMEDIATE '<sql>': the inner statement is
        // what runs; from a variable or an expression it is hidden from these checks.
        match router::privilege::dynamic_sql_in(sql, reading) {
            Some(Ok(inner)) => {
                // The server runs the code of its executable comments too.
                let resolved =
                    router::comments::resolve(inner.as_bytes(), reading, self.shared.backend_version);
                let inner = resolved.as_deref().unwrap_or(inner.as_bytes());
                for part in router::privilege::statements(inner, reading) {
                    self.check_statement(user, part, reading, rt, depth + 1, scope)?;
                }
                // The statement around it is checked too (EXECUTE … USING LOAD_FILE()).
            }
            Some(Err(())) if !user.may(Need::Admin) => {
                return Err(SqlError::specific_access_denied(format!(
                        "Access denied; PREPARE ... FROM a variable and EXECUTE IMMEDIATE of an expression \
                         hide their statement from shardgate's checks, so they need the admin grant \
                         (user `{}`); prepare a literal statement instead",
                        user.name
                    ),
                ))
            }
            _ => {}
        }
        // A routine, trigger or event body runs later with the backend account's
        // rights: each statement in it is checked as if sent now, in its own schema.
        for part in router::routine::body_statements(sql, reading) {
            self.check_statement(user, part, reading, rt, depth + 1, Scope::Body)?;
        }
        // Named in errors only: not formatted for every statement.
        let host = || self.peer.ip().to_string();
        // The firewall refuses what it names whatever the rights.
        self.check_firewall(user, sql, reading)?;
        let needs = router::privilege::needs_in(sql, reading);
        // Rights on tables a table's own rights grant are checked table by table.
        let mut by_table = Vec::new();
        for &need in &needs {
            if user.may(need) {
                continue;
            }
            if router::plan::on_tables(need) && user.rules.grants_somewhere(need) {
                by_table.push(need);
                continue;
            }
            return Err(match need {
                Need::Account | Need::File | Need::Admin => SqlError::specific_access_denied(format!(
                        "Access denied; you need (at least one of) the {} privilege(s) for this operation \
                         (shardgate grants it with `privileges = [\"{}\"]` for user `{}`)",
                        need.mysql_name(),
                        need.as_str(),
                        user.name
                    ),
                ),
                Need::Read | Need::Write | Need::Ddl => SqlError::table_access_denied(format!(
                        "{} command denied to user '{}'@'{}' (shardgate's privileges for it: {})",
                        need.mysql_name(),
                        user.name,
                        host(),
                        user.privileges.join(", ")
                    ),
                ),
            });
        }
        let stmt = Checked {
            sql,
            reading,
            scope,
        };
        self.check_tables(user, stmt, rt, &needs, &by_table)?;
        // SHOW … FROM db names a database without a dot.
        for db in router::privilege::show_databases(sql, reading) {
            if !may_name(user, &db, rt) {
                // USE of a name that is no database here (a physical name, a system
                // schema) answers that it is unknown, as USE alone does.
                let is_use = reading
                    .first_word(sql)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"use"));
                if is_use && rt.passthrough.is_none() && !rt.is_known_database(&db) {
                    return Err(SqlError::unknown_database(&db));
                }
                return Err(SqlError::db_access_denied(&user.name, &host(), &db));
            }
        }
        // Qualified names: only when some qualifier is not a schema the user may use
        // (aliases like `o.id` look the same, so the statement is parsed to tell).
        // A trigger's NEW and OLD rows qualify columns, not databases.
        let row = |q: &str, strict: bool| {
            !strict && (q.eq_ignore_ascii_case("new") || q.eq_ignore_ascii_case("old"))
        };
        let uses: Vec<(String, bool)> = router::resolve::qualifier_uses(sql, reading)
            .into_iter()
            .filter(|(q, strict)| !row(q, *strict))
            .collect();
        if uses.iter().all(|(q, _)| may_name(user, q, rt)) {
            return Ok(());
        }
        // MySQL names the statement's command in the error.
        let command = command_word(sql, reading);
        let denied = |what: String| {
            SqlError::table_access_denied(format!(
                "{command} command denied to user '{}'@'{}' for {what}",
                user.name,
                host()
            ))
        };
        // A qualifier that can only be a database (in relation position, or before a
        // function call) is one, whatever aliases the statement defines.
        if let Some((q, _)) = uses
            .iter()
            .find(|(q, strict)| *strict && !may_name(user, q, rt))
        {
            return Err(denied(format!("database `{q}`")));
        }
        let refs = router::plan::table_refs(sql, reading).map_err(|e| {
            SqlError::table_access_denied(format!(
                "shardgate could not analyse this statement to check the tables it names ({e}), \
                     and user `{}` may not reach every database; send statements it can parse",
                user.name
            ))
        })?;
        for (schema, table) in &refs.tables {
            let Some(schema) = schema else { continue };
            if !may_name(user, schema, rt) {
                return Err(denied(format!("table `{schema}`.`{table}`")));
            }
        }
        // Other qualifiers name a database unless they are a table, alias or common
        // table expression of this statement (`o.id`), or a trigger's NEW/OLD row.
        for (q, _) in &uses {
            let local = refs.local.iter().any(|l| l.eq_ignore_ascii_case(q));
            if !local && !may_name(user, q, rt) {
                return Err(denied(format!("database `{q}`")));
            }
        }
        Ok(())
    }
}

/// The statement's first word in upper case: the command MySQL names in errors.
pub(super) fn command_word(sql: &[u8], reading: Reading) -> String {
    reading
        .lexer(sql)
        .find_map(|t| match t {
            router::lexer::Token::Word(w) => Some(String::from_utf8_lossy(w).to_uppercase()),
            _ => None,
        })
        .unwrap_or_default()
}

/// `db` may appear as a table's qualifier in this user's statements, be selected with
/// USE, or show in its information_schema answers.
pub(super) fn may_name(user: &UserConfig, db: &str, rt: &Runtime) -> bool {
    if db.eq_ignore_ascii_case("information_schema") {
        return true;
    }
    if SYSTEM_SCHEMAS.iter().any(|s| s.eq_ignore_ascii_case(db)) {
        return user.may(Need::Admin);
    }
    let logical = rt.schemas.contains_key(db);
    (logical || rt.passthrough.is_some()) && user.may_use(db, logical)
}

impl Session {
    /// The session's user may write somewhere (always so without checks: pass-through
    /// mode): its connections need not refuse writes. A user who writes only tables
    /// granted one by one gets connections that write too: each statement is checked
    /// table by table, and a connection's read-only state cannot change inside a
    /// transaction.
    pub(super) fn may_write(&self) -> bool {
        !self.shared.settings.enforce_privileges
            || self
                .user
                .as_ref()
                .is_none_or(|u| u.may(Need::Write) || u.rules.grants_somewhere(Need::Write))
    }

    /// A physical shard table `sql` names: unqualified, of the session's schema, or
    /// qualified with any logical schema.
    fn shard_table_named(
        &self,
        sql: &[u8],
        reading: Reading,
        rt: &Runtime,
    ) -> Option<(String, String)> {
        let shortest = rt.shortest_shard_table?;
        let current = self.db.as_deref().and_then(|d| rt.schemas.get(d));
        let tokens: Vec<router::lexer::Token<'_>> = reading
            .lexer(sql)
            .filter(|t| !matches!(t, router::lexer::Token::Comment(_)))
            .collect();
        let name = |t: &router::lexer::Token<'_>| match t {
            router::lexer::Token::Word(w) | router::lexer::Token::Quoted(w) => {
                Some(String::from_utf8_lossy(w).to_lowercase())
            }
            _ => None,
        };
        // Shorter words cannot be a shard's name: no lowercase copy is made of them.
        for (i, t) in tokens.iter().enumerate() {
            let long = matches!(t, router::lexer::Token::Word(w) | router::lexer::Token::Quoted(w) if w.len() >= shortest);
            if !long {
                continue;
            }
            let Some(n) = name(t) else { continue };
            let qualifier = match (
                i.checked_sub(2).map(|j| &tokens[j]),
                tokens.get(i.wrapping_sub(1)),
            ) {
                (Some(q), Some(router::lexer::Token::Punct(b"."))) if i >= 2 => name(q),
                _ => None,
            };
            let schema = match &qualifier {
                Some(q) => rt.schemas.values().find(|s| s.name.eq_ignore_ascii_case(q)),
                None => current,
            };
            if let Some(s) = schema.filter(|s| s.shard_tables.contains(&n)) {
                return Some((s.name.clone(), n));
            }
        }
        None
    }
}

/// Only spaces (what follows a batch's last `;`).
fn is_blank(part: &[u8]) -> bool {
    part.iter().all(u8::is_ascii_whitespace)
}

/// `word` appears in `sql`, in any case.
fn mentions(sql: &[u8], word: &[u8]) -> bool {
    sql.windows(word.len())
        .any(|w| w.eq_ignore_ascii_case(word))
}
