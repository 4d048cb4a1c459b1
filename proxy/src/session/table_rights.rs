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

/// Where a statement's unqualified names are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// In the session's database.
    Session,
    /// In a routine's, trigger's or event's own schema, which may be another: an
    /// unqualified name may be that table of any schema.
    Body,
}

impl Session {
    /// `needs`: what the statement needs as a whole; `by_table`: those of them the
    /// user holds only on some tables, to be found on every table that needs them.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_tables(
        &self,
        user: &UserConfig,
        sql: &[u8],
        reading: Reading,
        rt: &Runtime,
        scope: Scope,
        needs: &[Need],
        by_table: &[Need],
    ) -> Result<(), SqlError> {
        let touches_tables = needs.iter().any(|n| on_tables(*n));
        let guard = user.require_where
            && needs.contains(&Need::Write)
            && reading.first_word(sql).is_some_and(|w| {
                [&b"update"[..], b"delete", b"with", b"analyze"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k))
            });
        if !touches_tables || !(user.rules.has_tables() || guard) {
            return Ok(());
        }
        let host = || self.peer.ip().to_string();
        let denied = |message: String| SqlError::table_access_denied(message);
        // Unparsed, it is read by its words only (not exact).
        let access = router::plan::table_access(sql, reading, needs).unwrap_or_default();
        // MySQL names the command the missing right is for.
        let command = |need: Need| match need {
            Need::Read => "SELECT".to_string(),
            _ => command_word(sql, reading),
        };
        for &need in by_table {
            // Only a statement whose every table is known may use a right granted
            // on some tables (never CALL, whose routine acts on any).
            if !access.exact || !access.uses.iter().any(|u| u.need == need) {
                return Err(denied(format!(
                    "{} command denied to user '{}'@'{}' (shardgate's privileges for it: {}; \
                     its rights on single tables do not cover this statement)",
                    need.mysql_name(),
                    user.name,
                    host(),
                    user.privileges.join(", ")
                )));
            }
        }
        for u in &access.uses {
            let schema = match scope {
                Scope::Session => u.schema.as_deref().or(self.db.as_deref()),
                Scope::Body => u.schema.as_deref(),
            };
            let rights = self.rights_on(user, schema, &u.table);
            if !rights
                .as_deref()
                .map_or(user.may(u.need), |r| r.contains(&u.need))
            {
                return Err(denied(format!(
                    "{} command denied to user '{}'@'{}' for table `{}`.`{}` (shardgate's privileges \
                     for it: {})",
                    command(u.need),
                    user.name,
                    host(),
                    schema.unwrap_or("?"),
                    u.table,
                    shown(user, rights.as_deref())
                )));
            }
            // A view reads its tables with the rights of the view: a table of its
            // own rights may be read and written through it only if those allow it.
            let through_view = access.defines_view && u.need == Need::Read;
            if through_view
                && rights.is_some_and(|r| !(r.contains(&Need::Read) && r.contains(&Need::Write)))
            {
                return Err(denied(format!(
                    "{} command denied to user '{}'@'{}' for table `{}`.`{}`: a view over it would \
                     let its rows be read and changed past its own rights; select from it directly",
                    command(Need::Ddl),
                    user.name,
                    host(),
                    schema.unwrap_or("?"),
                    u.table,
                )));
            }
        }
        // A shape whose tables are not all known: a word that names a table with rights
        // of its own needs on it everything the statement needs, and reading.
        if !access.exact {
            if let Some((name, need)) = ruled_table_lacking(user, sql, reading, needs) {
                return Err(denied(format!(
                    "{} command denied to user '{}'@'{}' for table `{name}` (shardgate's privileges \
                     for it do not cover this statement, which it cannot read table by table)",
                    command(need),
                    user.name,
                    host(),
                )));
            }
        }
        if guard {
            self.check_bounded(user, sql, reading, rt, &access)?;
        }
        Ok(())
    }

    /// The rights `user` has on `table` of `schema` (`None`: unknown, so that table
    /// of any schema) when some are the table's own; several apply all at once.
    fn rights_on(&self, user: &UserConfig, schema: Option<&str>, table: &str) -> Option<Vec<Need>> {
        if let Some(s) = schema {
            return user.rules.table(s, table).map(<[Need]>::to_vec);
        }
        let mut all: Option<Vec<Need>> = None;
        for rights in user.rules.rights_named(table) {
            let common = match all {
                None => rights.to_vec(),
                Some(v) => v.into_iter().filter(|n| rights.contains(n)).collect(),
            };
            all = Some(common);
        }
        all
    }

    /// `require_where`: an UPDATE or DELETE without WHERE on a sharded table, or one
    /// whose targets cannot be told, is refused.
    fn check_bounded(
        &self,
        user: &UserConfig,
        sql: &[u8],
        reading: Reading,
        rt: &Runtime,
        access: &TableAccess,
    ) -> Result<(), SqlError> {
        let refuse = |what: String| {
            SqlError::new(
                1175,
                "HY000",
                format!(
                    "{} {what} refused: user `{}` has require_where (it would change every \
                     shard); add a WHERE clause",
                    command_word(sql, reading),
                    user.name
                ),
            )
        };
        if !access.exact {
            return Err(refuse(
                "whose tables shardgate cannot tell (it parses no such statement)".into(),
            ));
        }
        if !access.unbounded_write {
            return Ok(());
        }
        for u in access.uses.iter().filter(|u| u.need == Need::Write) {
            let schema = u.schema.as_deref().or(self.db.as_deref());
            if is_sharded(rt, schema, &u.table) {
                return Err(refuse(format!(
                    "without WHERE on sharded table `{}`.`{}`",
                    schema.unwrap_or("?"),
                    u.table
                )));
            }
        }
        Ok(())
    }
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

/// `table` is a sharded table of logical schema `schema` (`None`: of any).
fn is_sharded(rt: &Runtime, schema: Option<&str>, table: &str) -> bool {
    rt.schemas
        .values()
        .filter(|s| schema.is_none_or(|n| s.name.eq_ignore_ascii_case(n)))
        .flat_map(|s| s.tables.iter())
        .any(|(name, t)| {
            name.eq_ignore_ascii_case(table) && matches!(t.kind, rules::TableKind::Sharded(_))
        })
}
