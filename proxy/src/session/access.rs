//! A client never acts with more than its own rights. Every statement reaches the
//! backend with shardgate's account, so before anything is sent shardgate checks the
//! statement against its own user model: the rights it needs (reads, writes, DDL,
//! and the grants for accounts, files and administration), and every table it names
//! with a schema qualifier (`other_db.t`, `mysql.user`), which must be a schema the
//! user may use. Zero-config pass-through clients log in with the backend's own
//! account and are not checked.

use router::privilege::Need;
use rules::Runtime;

use super::Session;
use crate::config::UserConfig;
use crate::wire::SqlError;

/// Schemas of the server itself, never reachable through a logical schema; only a
/// user with the `admin` grant may name them.
const SYSTEM_SCHEMAS: [&str; 3] = ["mysql", "performance_schema", "sys"];

impl Session {
    /// `Err` is the answer to send instead of running `sql`.
    pub(super) fn check_access(&self, sql: &[u8], rt: &Runtime) -> Result<(), SqlError> {
        if !self.shared.settings.enforce_privileges {
            return Ok(());
        }
        let Some(user) = &self.user else {
            return Ok(());
        };
        // PREPARE ... FROM '<sql>' and EXECUTE IMMEDIATE '<sql>': the inner statement is
        // what runs; from a variable or an expression it is hidden from these checks.
        match router::privilege::dynamic_sql(sql) {
            Some(Ok(inner)) => return self.check_access(inner.as_bytes(), rt),
            Some(Err(())) if !user.may(Need::Admin) => {
                return Err(SqlError::new(
                    1227,
                    "42000",
                    format!(
                        "Access denied; PREPARE ... FROM a variable and EXECUTE IMMEDIATE of an expression \
                         hide their statement from shardgate's checks, so they need the admin grant \
                         (user `{}`); prepare a literal statement instead",
                        user.name
                    ),
                ))
            }
            _ => {}
        }
        let host = self.peer.ip().to_string();
        // Strings are read as the server will read them: without backslash escapes
        // under NO_BACKSLASH_ESCAPES (else `'a\', t FROM mysql.user -- '` hides a
        // table in what looks like a string); both ways when the statement sets that
        // mode for itself (SET STATEMENT sql_mode = ... FOR ...).
        let modes: &[bool] = if self.no_backslash_escapes {
            &[false]
        } else if mentions(sql, b"no_backslash_escapes") {
            &[true, false]
        } else {
            &[true]
        };
        let mut needs = Vec::new();
        let mut qualifiers: Vec<String> = Vec::new();
        for &escapes in modes {
            for n in router::privilege::needs_in(sql, escapes) {
                if !needs.contains(&n) {
                    needs.push(n);
                }
            }
            for q in router::resolve::qualifiers_in(sql, escapes) {
                if !qualifiers.contains(&q) {
                    qualifiers.push(q);
                }
            }
        }
        for need in needs {
            if user.may(need) {
                continue;
            }
            return Err(match need {
                Need::Account | Need::File | Need::Admin => SqlError::new(
                    1227,
                    "42000",
                    format!(
                        "Access denied; you need (at least one of) the {} privilege(s) for this operation \
                         (shardgate grants it with `privileges = [\"{}\"]` for user `{}`)",
                        need.mysql_name(),
                        need.as_str(),
                        user.name
                    ),
                ),
                Need::Read | Need::Write | Need::Ddl => SqlError::new(
                    1142,
                    "42000",
                    format!(
                        "{} command denied to user '{}'@'{host}' (shardgate's privileges for it: {})",
                        need.mysql_name(),
                        user.name,
                        user.privileges.join(", ")
                    ),
                ),
            });
        }
        // Qualified names: only when some qualifier is not a schema the user may use
        // (aliases like `o.id` look the same, so the statement is parsed to tell).
        let suspicious = qualifiers.iter().any(|q| !may_name(user, q, rt));
        if !suspicious {
            return Ok(());
        }
        let text = self.charset.decode(sql)?;
        let refs = router::plan::table_refs(&text).map_err(|_| {
            SqlError::new(
                1142,
                "42000",
                format!(
                    "shardgate could not analyse this statement to check the tables it names, and user `{}` \
                     may not reach every database; send statements it can parse",
                    user.name
                ),
            )
        })?;
        // MySQL names the statement's command in the error.
        let command = router::lexer::Lexer::new(sql)
            .find_map(|t| match t {
                router::lexer::Token::Word(w) => Some(String::from_utf8_lossy(w).to_uppercase()),
                _ => None,
            })
            .unwrap_or_default();
        let denied = |what: String| {
            SqlError::new(
                1142,
                "42000",
                format!(
                    "{command} command denied to user '{}'@'{host}' for {what}",
                    user.name
                ),
            )
        };
        for (schema, table) in &refs.tables {
            let Some(schema) = schema else { continue };
            if !may_name(user, schema, rt) {
                return Err(denied(format!("table `{schema}`.`{table}`")));
            }
        }
        // A qualifier that is no table or alias of the statement names a database
        // (`CALL db.proc()`, `db.func()`): it must be one the user may use too.
        for q in &qualifiers {
            let local = refs.local.iter().any(|l| l.eq_ignore_ascii_case(q));
            if !local && !may_name(user, q, rt) {
                return Err(denied(format!("database `{q}`")));
            }
        }
        Ok(())
    }
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

/// `word` appears in `sql`, in any case.
fn mentions(sql: &[u8], word: &[u8]) -> bool {
    sql.windows(word.len())
        .any(|w| w.eq_ignore_ascii_case(word))
}
