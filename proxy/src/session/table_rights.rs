//! Rights per table (`[users.tables]`) and the guard against UPDATE and DELETE without
//! WHERE on sharded tables (`require_where`): both need to know what a statement does
//! to each table it names, so they share one parse, made only for users that have
//! either and only for statements that touch tables.

use router::privilege::{Need, Reading};
use rules::Runtime;

use super::Session;
use crate::config::UserConfig;
use crate::wire::SqlError;

impl Session {
    /// `needs`: what the statement needs as a whole; `by_table`: those of them the
    /// user holds only on some tables, to be found on every table that needs them.
    pub(super) fn check_tables(
        &self,
        user: &UserConfig,
        sql: &[u8],
        reading: Reading,
        rt: &Runtime,
        needs: &[Need],
        by_table: &[Need],
    ) -> Result<(), SqlError> {
        let touches_tables = needs.iter().any(|n| router::plan::on_tables(*n));
        let guard = user.require_where
            && needs.contains(&Need::Write)
            && reading.first_word(sql).is_some_and(|w| {
                [&b"update"[..], b"delete", b"with"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k))
            });
        if !touches_tables || !(user.rules.has_tables() || guard) {
            return Ok(());
        }
        let host = || self.peer.ip().to_string();
        let access = match router::plan::table_access(sql, reading, needs) {
            Ok(a) => a,
            Err(e) if guard => {
                return Err(SqlError::table_access_denied(format!(
                "shardgate could not analyse this statement to find the tables it changes ({e}), \
                     and user `{}` has require_where; send statements it can parse",
                user.name
            )))
            }
            // Read by its words only (not exact): below.
            Err(_) => router::plan::TableAccess::default(),
        };
        // MySQL names the command the missing right is for.
        let command = |need: Need| match need {
            Need::Read => "SELECT".to_string(),
            _ => reading
                .first_word(sql)
                .map(|w| String::from_utf8_lossy(w).to_uppercase())
                .unwrap_or_default(),
        };
        for &need in by_table {
            if !access.uses.iter().any(|u| u.need == need) {
                return Err(SqlError::table_access_denied(format!(
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
            let schema = u.schema.as_deref().or(self.db.as_deref());
            let own = schema.and_then(|s| user.rules.table(s, &u.table));
            let granted = match own {
                Some(rights) => rights.contains(&u.need),
                None => user.may(u.need),
            };
            if !granted {
                let rights = own.map_or_else(
                    || user.privileges.join(", "),
                    |r| r.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", "),
                );
                return Err(SqlError::table_access_denied(format!(
                    "{} command denied to user '{}'@'{}' for table `{}`.`{}` (shardgate's privileges \
                     for it: {})",
                    command(u.need),
                    user.name,
                    host(),
                    schema.unwrap_or("?"),
                    u.table,
                    if rights.is_empty() { "none" } else { &rights }
                )));
            }
        }
        // A shape whose tables are not all known: a word that names a table with rights
        // of its own needs on it everything the statement needs.
        if !access.exact {
            if let Some(name) = ruled_table_lacking(user, sql, reading, needs) {
                return Err(SqlError::table_access_denied(format!(
                    "{} command denied to user '{}'@'{}' for table `{name}` (shardgate's privileges \
                     for it do not cover this statement, which it cannot read table by table)",
                    command(Need::Read),
                    user.name,
                    host(),
                )));
            }
        }
        if guard && access.unbounded_write {
            for u in access.uses.iter().filter(|u| u.need == Need::Write) {
                let Some(schema) = u.schema.as_deref().or(self.db.as_deref()) else {
                    continue;
                };
                if is_sharded(rt, schema, &u.table) {
                    return Err(SqlError::new(
                        1175,
                        "HY000",
                        format!(
                            "{} without WHERE on sharded table `{schema}`.`{}` refused: user `{}` has \
                             require_where (it would change every shard); add a WHERE clause",
                            command(Need::Write),
                            u.table,
                            user.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A word of `sql` that names a table (in any schema) whose own rights lack one of
/// `needs`.
fn ruled_table_lacking(
    user: &UserConfig,
    sql: &[u8],
    reading: Reading,
    needs: &[Need],
) -> Option<String> {
    words(sql, reading).find(|w| {
        user.rules.rights_named(w).any(|rights| {
            needs
                .iter()
                .any(|n| router::plan::on_tables(*n) && !rights.contains(n))
        })
    })
}

fn words(sql: &[u8], reading: Reading) -> impl Iterator<Item = String> + '_ {
    reading.lexer(sql).filter_map(|t| match t {
        router::lexer::Token::Word(w) | router::lexer::Token::Quoted(w) => {
            Some(String::from_utf8_lossy(w).into_owned())
        }
        _ => None,
    })
}

/// `schema`.`table` is a sharded table of a logical schema.
fn is_sharded(rt: &Runtime, schema: &str, table: &str) -> bool {
    rt.schemas
        .values()
        .filter(|s| s.name.eq_ignore_ascii_case(schema))
        .flat_map(|s| s.tables.iter())
        .any(|(name, t)| {
            name.eq_ignore_ascii_case(table) && matches!(t.kind, rules::TableKind::Sharded(_))
        })
}
