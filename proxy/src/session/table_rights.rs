//! Rights per table (`[users.tables]`) and the guard against UPDATE and DELETE without
//! WHERE on sharded tables (`require_where`): both need to know what a statement does
//! to each table it names, so they share one parse, made only for users that have
//! either and only for statements that touch tables.

use router::plan::{on_tables, TableAccess};
use router::privilege::{Need, Reading};
use rules::Runtime;

use super::access::command_word;
use super::Session;
use crate::config::UserConfig;
use crate::wire::SqlError;

/// A statement being checked, as read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Checked<'a> {
    pub(super) sql: &'a [u8],
    pub(super) reading: Reading,
    pub(super) scope: Scope,
}

/// Where a statement's unqualified names are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// In the session's database.
    Session,
    /// In a routine's, trigger's or event's own schema, which may be another: an
    /// unqualified name may be that table of any schema. (The statement around a
    /// body is also read word by word, being of no shape whose tables are known.)
    Body,
}

impl Session {
    /// `needs`: what the statement needs as a whole; `by_table`: those of them the
    /// user holds only on some tables, to be found on every table that needs them.
    pub(super) fn check_tables(
        &self,
        user: &UserConfig,
        stmt: Checked<'_>,
        rt: &Runtime,
        needs: &[Need],
        by_table: &[Need],
    ) -> Result<(), SqlError> {
        let Checked {
            sql,
            reading,
            scope,
        } = stmt;
        let host = || self.peer.ip().to_string();
        let touches_tables = needs.iter().any(|n| on_tables(*n));
        if !touches_tables && user.rules.has_tables() && evaluates(stmt) {
            // No right on tables is needed, yet a table may hide in what is read
            // (`SET @x = EXISTS(TABLE t)`): one with rights of its own must allow it.
            if let Some((name, need)) = ruled_table_lacking(user, sql, reading, &[]) {
                return Err(lacking(user, &host(), &name, need, stmt));
            }
        }
        let guard = user.require_where && needs.contains(&Need::Write) && changes_rows(stmt);
        if !touches_tables || !(user.rules.has_tables() || guard) {
            return Ok(());
        }
        // Unparsed, it is read by its words only (not exact).
        let access = router::plan::table_access(sql, reading, needs).unwrap_or_default();
        for &need in by_table {
            // A read of no table at all (`SELECT @@version`, what drivers ask at
            // login) needs no right on one, unless it calls what may be a stored
            // function, which reads with its definer's rights.
            let tableless = need == Need::Read
                && access.exact
                && access.uses.is_empty()
                && calls_only_builtins(sql, reading);
            if tableless {
                continue;
            }
            // Only a statement whose every table is known may use a right granted
            // on some tables (never CALL, whose routine acts on any).
            if !access.exact || !access.uses.iter().any(|u| u.need == need) {
                return Err(SqlError::table_access_denied(format!(
                    "{} command denied to user '{}'@'{}' (the user's privileges in shardgate: {}; \
                     its rights on single tables do not cover this statement)",
                    need.mysql_name(),
                    user.name,
                    host(),
                    user.privileges.join(", ")
                )));
            }
        }
        for u in &access.uses {
            let schema = self.schema_of(u.schema.as_deref(), scope);
            let rights = rights_on(user, schema, &u.table);
            let granted = rights
                .as_deref()
                .map_or(user.may(u.need), |r| r.contains(&u.need));
            // A view reads its tables with the view's rights: a table of rights of its
            // own may be reached through one only if they allow reading and writing.
            let through_view = access.defines_view
                && u.need == Need::Read
                && rights
                    .as_deref()
                    .is_some_and(|r| !(r.contains(&Need::Read) && r.contains(&Need::Write)));
            if granted && !through_view {
                continue;
            }
            let (need, why) = if granted {
                (
                    Need::Ddl,
                    "a view over it would let its rows be read and changed past them; select \
                     from it directly"
                        .to_string(),
                )
            } else {
                (
                    u.need,
                    format!(
                        "shardgate's privileges for it: {}",
                        shown(user, rights.as_deref())
                    ),
                )
            };
            return Err(SqlError::table_access_denied(format!(
                "{} command denied to user '{}'@'{}' for table {} ({why})",
                command(need, stmt),
                user.name,
                host(),
                table_name(schema, &u.table),
            )));
        }
        // A shape whose tables are not all known: a word that names a table with rights
        // of its own needs on it everything the statement needs, and reading.
        if !access.exact {
            if let Some((name, need)) = ruled_table_lacking(user, sql, reading, needs) {
                return Err(lacking(user, &host(), &name, need, stmt));
            }
        }
        if guard {
            self.check_bounded(user, stmt, rt, &access)?;
        }
        Ok(())
    }

    /// The schema of a name written with `written` as its qualifier (`None`: unknown).
    fn schema_of<'a>(&'a self, written: Option<&'a str>, scope: Scope) -> Option<&'a str> {
        match scope {
            Scope::Session => written.or(self.db.as_deref()),
            Scope::Body => written,
        }
    }

    /// `require_where`: an UPDATE or DELETE without WHERE on a sharded table, or one
    /// whose targets cannot be told, is refused.
    fn check_bounded(
        &self,
        user: &UserConfig,
        stmt: Checked<'_>,
        rt: &Runtime,
        access: &TableAccess,
    ) -> Result<(), SqlError> {
        let refuse = |what: String| {
            SqlError::new(
                1175,
                "HY000",
                format!(
                    "{} {what} refused: user `{}` has require_where (it would change every \
                     shard or copy); add a WHERE clause",
                    dml_word(stmt),
                    user.name
                ),
            )
        };
        if !access.exact {
            return Err(refuse("whose tables shardgate cannot tell".into()));
        }
        if !access.unbounded_write {
            return Ok(());
        }
        for u in access.uses.iter().filter(|u| u.need == Need::Write) {
            let schema = self.schema_of(u.schema.as_deref(), stmt.scope);
            if on_every_node(rt, schema, &u.table) {
                return Err(refuse(format!(
                    "without WHERE on sharded or broadcast table {}",
                    table_name(schema, &u.table)
                )));
            }
        }
        Ok(())
    }
}

/// The rights `user` has on `table` of `schema` when some are the table's own. With
/// the schema unknown it may be that table of any schema: a right only if every table
/// of that name with rights of its own, and the user's privileges, grant it.
fn rights_on(user: &UserConfig, schema: Option<&str>, table: &str) -> Option<Vec<Need>> {
    if let Some(s) = schema {
        return user.rules.table(s, table).map(<[Need]>::to_vec);
    }
    let mut all: Option<Vec<Need>> = None;
    for rights in user.rules.rights_named(table) {
        let common: Vec<Need> = all
            .unwrap_or_else(|| rights.to_vec())
            .into_iter()
            .filter(|n| rights.contains(n) && user.may(*n))
            .collect();
        all = Some(common);
    }
    all
}

/// Functions of the server itself that read no table, as drivers call them at login
/// and ORMs around their statements.
const BUILTINS: [&str; 24] = [
    "version",
    "database",
    "schema",
    "user",
    "current_user",
    "session_user",
    "system_user",
    "connection_id",
    "last_insert_id",
    "found_rows",
    "row_count",
    "now",
    "current_timestamp",
    "utc_timestamp",
    "unix_timestamp",
    "concat",
    "replace",
    "if",
    "ifnull",
    "coalesce",
    "lower",
    "upper",
    "cast",
    "convert",
];

/// Every function `sql` calls is one of [`BUILTINS`].
fn calls_only_builtins(sql: &[u8], reading: Reading) -> bool {
    // Comments between a name and its `(` do not hide a call; `db.f(` is a stored one.
    let tokens: Vec<router::lexer::Token<'_>> = reading
        .lexer(sql)
        .filter(|t| !matches!(t, router::lexer::Token::Comment(_)))
        .collect();
    let qualified = tokens.windows(3).any(|w| {
        matches!(
            w,
            [
                router::lexer::Token::Punct(b"."),
                router::lexer::Token::Word(_) | router::lexer::Token::Quoted(_),
                router::lexer::Token::Punct(b"(")
            ]
        )
    });
    !qualified && tokens.windows(2).all(|w| match w {
        [router::lexer::Token::Word(f) | router::lexer::Token::Quoted(f), router::lexer::Token::Punct(b"(")] => {
            BUILTINS.iter().any(|b| f.eq_ignore_ascii_case(b.as_bytes()))
        }
        _ => true,
    })
}

/// MySQL names the command the missing right is for: SELECT for reading.
fn command(need: Need, stmt: Checked<'_>) -> String {
    match need {
        Need::Read => "SELECT".to_string(),
        _ => command_word(stmt.sql, stmt.reading),
    }
}

/// An UPDATE or DELETE (also under WITH, ANALYZE or EXPLAIN ANALYZE): what the
/// require_where guard looks at. ANALYZE TABLE is none.
fn changes_rows(stmt: Checked<'_>) -> bool {
    let words: Vec<&[u8]> = stmt
        .reading
        .lexer(stmt.sql)
        .filter_map(|t| match t {
            router::lexer::Token::Word(w) => Some(w),
            _ => None,
        })
        .collect();
    let is = |i: usize, w: &[u8]| words.get(i).is_some_and(|x| x.eq_ignore_ascii_case(w));
    let dml = |w: &&[u8]| w.eq_ignore_ascii_case(b"update") || w.eq_ignore_ascii_case(b"delete");
    // ANALYZE FORMAT=JSON DELETE …: the data statement may come after options.
    let explained = (is(0, b"analyze") || is(0, b"explain")) && words.iter().any(dml);
    words.first().is_some_and(dml) || is(0, b"with") || explained
}

/// A statement that needs no right on tables yet evaluates expressions, in which a
/// table may be read: `SET x = …`, `DO …` (not `SET NAMES`, `START TRANSACTION`).
fn evaluates(stmt: Checked<'_>) -> bool {
    let mut tokens = stmt.reading.lexer(stmt.sql);
    match tokens.next() {
        Some(router::lexer::Token::Word(w)) if w.eq_ignore_ascii_case(b"do") => true,
        Some(router::lexer::Token::Word(w)) if w.eq_ignore_ascii_case(b"set") => {
            tokens.any(|t| matches!(t, router::lexer::Token::Punct(b"=" | b":=")))
        }
        _ => false,
    }
}

/// The error for a table named by a word whose own rights lack `need`.
fn lacking(user: &UserConfig, host: &str, table: &str, need: Need, stmt: Checked<'_>) -> SqlError {
    SqlError::table_access_denied(format!(
        "{} command denied to user '{}'@'{host}' for table `{table}` (shardgate's privileges \
         for it do not cover this statement, which it cannot read table by table)",
        command(need, stmt),
        user.name,
    ))
}

/// The rights shown in an error: the table's own, or the user's.
fn shown(user: &UserConfig, own: Option<&[Need]>) -> String {
    let names: Vec<&str> = match own {
        Some(r) => r.iter().map(|n| n.as_str()).collect(),
        None => user.privileges.iter().map(String::as_str).collect(),
    };
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// A word of `sql` that names a table (in any schema) whose own rights lack reading
/// or one of `needs`, and the right it lacks.
fn ruled_table_lacking(
    user: &UserConfig,
    sql: &[u8],
    reading: Reading,
    needs: &[Need],
) -> Option<(String, Need)> {
    let wanted: Vec<Need> = std::iter::once(Need::Read)
        .chain(needs.iter().copied().filter(|n| on_tables(*n)))
        .collect();
    reading.lexer(sql).find_map(|t| {
        let (router::lexer::Token::Word(w) | router::lexer::Token::Quoted(w)) = t else {
            return None;
        };
        let word = String::from_utf8_lossy(w).into_owned();
        let lacking = user
            .rules
            .rights_named(&word)
            .find_map(|rights| wanted.iter().copied().find(|n| !rights.contains(n)));
        lacking.map(|n| (word, n))
    })
}

/// `table` is a sharded or broadcast table of logical schema `schema` (`None`: of
/// any): a write to all its rows reaches every shard or copy.
fn on_every_node(rt: &Runtime, schema: Option<&str>, table: &str) -> bool {
    rt.schemas
        .values()
        .filter(|s| schema.is_none_or(|n| s.name.eq_ignore_ascii_case(n)))
        .flat_map(|s| s.tables.iter())
        .any(|(name, t)| {
            name.eq_ignore_ascii_case(table)
                && matches!(
                    t.kind,
                    rules::TableKind::Sharded(_) | rules::TableKind::Broadcast { .. }
                )
        })
}

/// A table as errors name it: `` `s`.`t` ``, or `` `t` (in any schema) `` when its
/// schema is not known.
fn table_name(schema: Option<&str>, table: &str) -> String {
    match schema {
        Some(s) => format!("`{s}`.`{table}`"),
        None => format!("`{table}` (in any schema)"),
    }
}

/// UPDATE or DELETE, whatever comes before it (WITH, ANALYZE).
fn dml_word(stmt: Checked<'_>) -> String {
    stmt.reading
        .lexer(stmt.sql)
        .find_map(|t| match t {
            router::lexer::Token::Word(w)
                if w.eq_ignore_ascii_case(b"update") || w.eq_ignore_ascii_case(b"delete") =>
            {
                Some(String::from_utf8_lossy(w).to_uppercase())
            }
            _ => None,
        })
        .unwrap_or_else(|| command_word(stmt.sql, stmt.reading))
}
