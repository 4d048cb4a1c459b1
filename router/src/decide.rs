//! One decision per statement: what shardgate does with a client's text query.
//!
//! The session asks once and executes what it is told; the policy of which statements
//! shardgate answers itself, which it refuses and which run on data lives here, in one
//! place, instead of in a chain of questions each reading the statement again. The
//! statement is classified once; the few kinds shardgate may answer itself (SHOW,
//! KILL, a short SELECT) are tokenised once more, and no other statement pays for it.

use crate::catalog::{self, OwnShow, SessionFn};
use crate::classify::{self, Statement, StatementKind};
use crate::hint::HintError;
use crate::lexer::{Lexer, Token};
use crate::reading::Reading;

/// What the session knows that changes the decision.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub reading: Reading,
    /// Databases are logical schemas (a config file), not one backend's (pass-through):
    /// SHOW DATABASES and DATABASE() are answered by shardgate.
    pub logical_databases: bool,
    /// Clients log in with shardgate's own accounts: CURRENT_USER() and SHOW GRANTS
    /// are answered by shardgate, not by the backend account every connection uses.
    pub own_accounts: bool,
}

#[derive(Debug)]
pub enum Decision {
    /// `EXPLAIN SHARDING <statement>`: the statement starts at byte `at`.
    ExplainSharding { at: usize },
    Statement {
        statement: Statement,
        action: Action,
    },
}

/// What to do with a classified statement, once the user's rights allow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Refused with 1235 (not supported), for the reason given.
    Unsupported(&'static str),
    /// `USE db`.
    Use(String),
    /// `SHOW DATABASES [LIKE 'pattern']`: the logical schemas.
    ShowDatabases { like: Option<String> },
    /// `KILL [QUERY] id`, with one of shardgate's connection ids; `None` for
    /// `KILL CONNECTION_ID()`, the session's own.
    Kill { query_only: bool, id: Option<u64> },
    /// `SHOW SHARDGATE SESSIONS`.
    ShowSessions,
    /// `SHOW SHARDGATE NODES`.
    ShowNodes,
    /// `SHOW SHARDGATE XA`.
    ShowXa,
    /// `SHOW [FULL] PROCESSLIST`: shardgate's clients, not the backend's connections.
    ShowProcesslist { full: bool },
    /// `SHOW GRANTS [FOR CURRENT_USER]` (`own`), or for another account.
    ShowGrants { own: bool },
    /// `SELECT CONNECTION_ID()` and the like: answered by shardgate, with this column
    /// name. Touches no data, so it needs no transaction's node.
    Answer { function: SessionFn, column: String },
    /// Runs on data: information_schema narrowing, a plan, or a backend, by the
    /// session's state.
    Run,
}

const USE_IN_BATCH: &str = "USE inside a multi-statement batch is not supported by shardgate yet; send USE as a statement of its own";

const OTHER_KILL: &str =
    "not supported by shardgate: KILL USER and KILL QUERY ID; backend accounts and query ids \
     are shared by every client's connections, so they would end other clients' statements. \
     Use KILL [QUERY] <id> with an id from SHOW PROCESSLIST";

/// Session functions are at most `SELECT f() AS alias`: six tokens.
const SESSION_FUNCTION_TOKENS: usize = 6;

/// The decision for text query `sql` (after executable comments are resolved).
pub fn decide(sql: &[u8], ctx: &Context) -> Result<Decision, HintError> {
    if let Some(at) = classify::explain_sharding(sql) {
        return Ok(Decision::ExplainSharding { at });
    }
    let statement = classify::classify_in(sql, ctx.reading)?;
    let action = action(sql, &statement, ctx);
    Ok(Decision::Statement { statement, action })
}

fn action(sql: &[u8], stmt: &Statement, ctx: &Context) -> Action {
    if stmt.batch_changes_database {
        return Action::Unsupported(USE_IN_BATCH);
    }
    if let (StatementKind::Use, Some(db)) = (stmt.kind, &stmt.use_db) {
        return Action::Use(db.clone());
    }
    match stmt.kind {
        StatementKind::Show => {
            let tokens = catalog::significant(sql);
            if ctx.logical_databases {
                if let Some(like) = classify::show_databases_in(&tokens) {
                    return Action::ShowDatabases { like };
                }
            }
            match catalog::shardgate_show_in(&tokens) {
                Some(catalog::ShardgateShow::Sessions) => return Action::ShowSessions,
                Some(catalog::ShardgateShow::Nodes) => return Action::ShowNodes,
                Some(catalog::ShardgateShow::Xa) => return Action::ShowXa,
                None => {}
            }
            match catalog::own_show_in(&tokens) {
                Some(OwnShow::Processlist(full)) => Action::ShowProcesslist { full },
                Some(OwnShow::Grants(own)) if ctx.own_accounts => Action::ShowGrants { own },
                _ => Action::Run,
            }
        }
        StatementKind::Other => {
            let tokens = catalog::significant(sql);
            if !matches!(tokens.first(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(b"kill")) {
                return Action::Run;
            }
            match catalog::kill_in(&tokens) {
                Some((query_only, id)) => Action::Kill { query_only, id },
                None => Action::Unsupported(OTHER_KILL),
            }
        }
        StatementKind::Select if stmt.hints.node.is_none() => session_function(sql, ctx),
        _ => Action::Run,
    }
}

/// A short SELECT of one session function: read only as far as such a statement goes.
fn session_function(sql: &[u8], ctx: &Context) -> Action {
    if !sql.iter().any(|&b| b == b'(' || b == b'@') {
        return Action::Run;
    }
    let tokens: Vec<Token<'_>> = Lexer::new(sql)
        .filter(|t| !matches!(t, Token::Comment(_) | Token::Punct(b";")))
        .take(SESSION_FUNCTION_TOKENS + 1)
        .collect();
    match catalog::session_function_in(&tokens) {
        Some((function, column)) => {
            let answered = match function {
                SessionFn::ConnectionId | SessionFn::MaxConnections => true,
                SessionFn::CurrentUser => ctx.own_accounts,
                SessionFn::Database => ctx.logical_databases,
            };
            if answered {
                Action::Answer { function, column }
            } else {
                Action::Run
            }
        }
        None => Action::Run,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIGURED: Context = Context {
        reading: Reading::DEFAULT,
        logical_databases: true,
        own_accounts: true,
    };
    const PASSTHROUGH: Context = Context {
        reading: Reading::DEFAULT,
        logical_databases: false,
        own_accounts: false,
    };

    fn action(sql: &str, ctx: &Context) -> Action {
        match decide(sql.as_bytes(), ctx).expect("classifies") {
            Decision::Statement { action, .. } => action,
            d => panic!("{sql}: {d:?}"),
        }
    }

    #[test]
    fn local_answers() {
        assert_eq!(
            action("USE `shop`", &CONFIGURED),
            Action::Use("shop".into())
        );
        assert_eq!(
            action("show schemas like 'a%';", &CONFIGURED),
            Action::ShowDatabases {
                like: Some("a%".into())
            }
        );
        assert_eq!(action("SHOW DATABASES", &PASSTHROUGH), Action::Run);
        assert_eq!(
            action("KILL QUERY 7", &CONFIGURED),
            Action::Kill {
                query_only: true,
                id: Some(7)
            }
        );
        assert_eq!(
            action("KILL CONNECTION_ID()", &CONFIGURED),
            Action::Kill {
                query_only: false,
                id: None
            }
        );
        assert_eq!(
            action("KILL USER app", &CONFIGURED),
            Action::Unsupported(OTHER_KILL)
        );
        assert_eq!(
            action("SHOW shardgate SESSIONS", &CONFIGURED),
            Action::ShowSessions
        );
        assert_eq!(
            action("show SHARDGATE nodes", &CONFIGURED),
            Action::ShowNodes
        );
        assert_eq!(action("SHOW SHARDGATE XA", &CONFIGURED), Action::ShowXa);
        assert_eq!(
            action("SHOW FULL PROCESSLIST", &PASSTHROUGH),
            Action::ShowProcesslist { full: true }
        );
        assert_eq!(
            action("SHOW GRANTS", &CONFIGURED),
            Action::ShowGrants { own: true }
        );
        assert_eq!(action("SHOW GRANTS", &PASSTHROUGH), Action::Run);
        assert_eq!(
            action("SELECT 1; USE crm", &CONFIGURED),
            Action::Unsupported(USE_IN_BATCH)
        );
        assert!(matches!(
            decide(b"EXPLAIN SHARDING SELECT 1", &CONFIGURED),
            Ok(Decision::ExplainSharding { at: 16 })
        ));
    }

    #[test]
    fn session_functions_whatever_their_alias() {
        let long = "SELECT CURRENT_USER() AS a_column_alias_long_enough_to_pass_sixty_four_bytes";
        assert_eq!(
            action(long, &CONFIGURED),
            Action::Answer {
                function: SessionFn::CurrentUser,
                column: "a_column_alias_long_enough_to_pass_sixty_four_bytes".into()
            }
        );
        assert_eq!(action("SELECT CURRENT_USER()", &PASSTHROUGH), Action::Run);
        assert_eq!(
            action("SELECT DATABASE() d", &CONFIGURED),
            Action::Answer {
                function: SessionFn::Database,
                column: "d".into()
            }
        );
        assert_eq!(
            action("SELECT @@max_connections", &PASSTHROUGH),
            Action::Answer {
                function: SessionFn::MaxConnections,
                column: "@@max_connections".into()
            }
        );
        assert_eq!(
            action("SELECT CONNECTION_ID() + 1", &CONFIGURED),
            Action::Run
        );
        assert_eq!(
            action(
                "/* shardgate:node=dn1 */ SELECT CONNECTION_ID()",
                &CONFIGURED
            ),
            Action::Run
        );
        assert_eq!(
            action("SELECT * FROM t WHERE id = 1", &CONFIGURED),
            Action::Run
        );
    }
}
