//! Statement classification without a full parse: the first keyword after comments,
//! plus a token scan for the few things that decide where a statement may run
//! (locking reads, user variables, functions tied to one connection).
//!
//! Errs on the side of the primary: anything not known to be a plain read goes there.

use crate::hint::{HintError, Hints};
use crate::lexer::{Lexer, Token};
use transaction_words::ending_options;
pub use transaction_words::{
    chains, releases, sets_completion_type, starts_read_only, takes_snapshot,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    Select,
    Insert,
    Update,
    Delete,
    Replace,
    /// CREATE / ALTER / DROP / TRUNCATE / RENAME.
    Ddl,
    /// BEGIN, START TRANSACTION, COMMIT, ROLLBACK, SAVEPOINT, XA ...
    Transaction,
    Set,
    Use,
    Show,
    /// Empty text or comments only.
    Empty,
    Other,
}

/// Why a session must keep using one backend connection: state that lives in that
/// connection and cannot be rebuilt on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PinReason {
    SessionVariable,
    UserVariable,
    TemporaryTable,
    TableLock,
    NamedLock,
    /// `HANDLER t OPEN`: the handler lives on the connection until closed.
    TableHandler,
    /// `CALL`: a procedure may leave user variables, session settings and temporary
    /// tables behind, which the client may read next.
    RoutineCall,
    PreparedStatement,
    FoundRows,
    LastInsertId,
    /// An open cursor (COM_STMT_EXECUTE with a cursor flag): its rows are fetched from
    /// the connection that holds it, until the last is sent or it is closed.
    Cursor,
}

impl PinReason {
    pub fn as_str(self) -> &'static str {
        match self {
            PinReason::SessionVariable => "session_variable",
            PinReason::UserVariable => "user_variable",
            PinReason::TemporaryTable => "temporary_table",
            PinReason::TableLock => "table_lock",
            PinReason::NamedLock => "named_lock",
            PinReason::TableHandler => "table_handler",
            PinReason::RoutineCall => "routine_call",
            PinReason::PreparedStatement => "prepared_statement",
            PinReason::FoundRows => "found_rows",
            PinReason::LastInsertId => "last_insert_id",
            PinReason::Cursor => "cursor",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub kind: StatementKind,
    /// May run on a replica: an autocommit read that locks nothing and changes nothing.
    pub read_only: bool,
    /// Running this statement ties the session to its connection.
    pub pin: Option<PinReason>,
    /// Reads state the previous statement left in its connection (warnings, row counts).
    pub needs_previous: bool,
    pub hints: Hints,
    /// The database of a `USE db` statement.
    pub use_db: Option<String>,
    /// A multi-statement batch with a `USE` in it: the database changes mid-batch.
    pub batch_changes_database: bool,
    /// More than one statement (a multi-statement batch).
    pub batch: bool,
    /// What a transaction-control statement does.
    pub transaction: Option<TxnOp>,
    /// A `SET` of session variables only: shardgate remembers it and repeats it on
    /// whichever connection runs the session's next statement, instead of pinning.
    pub replayable: bool,
    /// `SET TRANSACTION …` without SESSION or GLOBAL: it applies to the next
    /// transaction only, so it must run on that transaction's connection.
    pub next_transaction: bool,
    /// May name a table. False for statements that provably touch no data
    /// (`SELECT 1`, `SELECT NOW()`, `SELECT @@port`, `SET`, transaction control): they
    /// can run wherever the session's transaction is.
    pub names_tables: bool,
    /// Reads the session's last insert id (`LAST_INSERT_ID()`, `@@identity`,
    /// `@@last_insert_id`), which shardgate keeps per session.
    pub reads_insert_id: bool,
    /// The savepoint a `SAVEPOINT`, `RELEASE SAVEPOINT` or `ROLLBACK TO` names.
    pub savepoint: Option<String>,
    /// DDL that commits the session's transaction before it runs, as the server
    /// does (not on temporary tables).
    pub commits_first: bool,
    /// `SET [SESSION] autocommit = 1 | 0` alone: the session's autocommit, which
    /// shardgate keeps itself (applied to the connection its next statement runs on).
    pub autocommit: Option<bool>,
}

/// Transaction control that shardgate acts on itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnOp {
    /// `BEGIN`, `START TRANSACTION [READ ONLY|READ WRITE|WITH CONSISTENT SNAPSHOT]`.
    Begin,
    /// `COMMIT [WORK]`.
    Commit,
    /// `ROLLBACK [WORK]` (not `ROLLBACK TO SAVEPOINT`).
    Rollback,
    /// `SAVEPOINT name`.
    Savepoint,
    /// `RELEASE SAVEPOINT name`.
    ReleaseSavepoint,
    /// `ROLLBACK [WORK] TO [SAVEPOINT] name`.
    RollbackTo,
    /// XA, `COMMIT AND CHAIN` ...: forwarded as they are.
    Other,
}

/// Functions whose result depends on, or changes, state of one connection or the primary.
const PRIMARY_FUNCTIONS: &[&[u8]] = &[
    b"get_lock",
    b"release_lock",
    b"release_all_locks",
    b"is_used_lock",
    b"is_free_lock",
    b"last_insert_id",
    b"found_rows",
    b"row_count",
    b"nextval",
    b"lastval",
    b"setval",
    b"master_pos_wait",
    b"master_gtid_wait",
    b"source_pos_wait",
];

fn eq(word: &[u8], kw: &[u8]) -> bool {
    word.eq_ignore_ascii_case(kw)
}

/// Classifies one statement (or the first of a multi-statement batch, with the
/// strictest routing of all of them), read the default way.
pub fn classify(sql: &[u8]) -> Result<Statement, HintError> {
    classify_in(sql, crate::reading::Reading::DEFAULT)
}

/// [`classify`], reading strings and quotes as the session's sql_mode does: where a
/// string ends decides where a batch's next statement begins.
pub fn classify_in(sql: &[u8], reading: crate::reading::Reading) -> Result<Statement, HintError> {
    let mut hints = Hints::default();
    let mut tokens = Vec::with_capacity(16);
    for t in reading.lexer(sql) {
        match t {
            Token::Comment(body) => hints.add_comment(body)?,
            other => tokens.push(other),
        }
    }

    // A batch: classify each statement and keep the strictest answer.
    let mut parts = tokens
        .split(|t| *t == Token::Punct(b";"))
        .filter(|p| !p.is_empty());
    let first = match parts.next() {
        Some(p) => p,
        None => {
            return Ok(Statement {
                kind: StatementKind::Empty,
                read_only: false,
                pin: None,
                needs_previous: false,
                hints,
                use_db: None,
                batch_changes_database: false,
                batch: false,
                transaction: None,
                replayable: false,
                next_transaction: false,
                names_tables: false,
                reads_insert_id: false,
                savepoint: None,
                commits_first: false,
                autocommit: None,
            })
        }
    };
    let mut stmt = classify_tokens(first, hints);
    let mut batch = false;
    for part in parts {
        let next = classify_tokens(part, Hints::default());
        // A SET in a batch changes the connection that runs the batch; it is not
        // remembered and replayed as a SET of its own is: the session stays on it.
        if !batch && (stmt.replayable || stmt.next_transaction || stmt.autocommit.is_some()) {
            stmt.pin = stmt.pin.or(Some(PinReason::SessionVariable));
        }
        if next.replayable || next.next_transaction {
            stmt.pin = stmt.pin.or(Some(PinReason::SessionVariable));
        }
        batch = true;
        stmt.batch = true;
        stmt.commits_first |= next.commits_first;
        stmt.autocommit = None;
        if next.autocommit.is_some() {
            stmt.pin = stmt.pin.or(Some(PinReason::SessionVariable));
        }
        stmt.batch_changes_database |=
            stmt.kind == StatementKind::Use || next.kind == StatementKind::Use;
        stmt.transaction = stmt.transaction.or(next.transaction).map(|_| TxnOp::Other);
        stmt.read_only &= next.read_only;
        stmt.pin = stmt.pin.or(next.pin);
        stmt.needs_previous |= next.needs_previous;
        stmt.names_tables |= next.names_tables;
        stmt.reads_insert_id |= next.reads_insert_id;
        stmt.next_transaction = false;
        stmt.replayable = false;
        stmt.savepoint = None;
        stmt.use_db = None;
        if stmt.kind != next.kind {
            stmt.kind = StatementKind::Other;
        }
    }
    if stmt.hints.primary {
        stmt.read_only = false;
    }
    Ok(stmt)
}

fn classify_tokens(tokens: &[Token<'_>], hints: Hints) -> Statement {
    let mut stmt = Statement {
        kind: StatementKind::Other,
        read_only: false,
        pin: None,
        needs_previous: false,
        hints,
        use_db: None,
        batch_changes_database: false,
        batch: false,
        transaction: None,
        replayable: false,
        next_transaction: false,
        names_tables: true,
        reads_insert_id: false,
        savepoint: None,
        commits_first: false,
        autocommit: None,
    };
    let first_word = tokens.iter().find_map(|t| match t {
        Token::Word(w) => Some(*w),
        _ => None,
    });
    let Some(first) = first_word else {
        return stmt;
    };
    let second = tokens.iter().filter_map(Token::word).nth(1).unwrap_or(b"");

    stmt.kind = match first.to_ascii_lowercase().as_slice() {
        b"select" | b"with" | b"values" | b"table" => StatementKind::Select,
        b"insert" => StatementKind::Insert,
        b"update" => StatementKind::Update,
        b"delete" => StatementKind::Delete,
        b"replace" => StatementKind::Replace,
        b"create" | b"alter" | b"drop" | b"truncate" | b"rename" => StatementKind::Ddl,
        b"begin" | b"start" | b"commit" | b"rollback" | b"savepoint" | b"release" | b"xa" => {
            StatementKind::Transaction
        }
        b"set" => StatementKind::Set,
        b"use" => StatementKind::Use,
        b"show" => StatementKind::Show,
        _ => StatementKind::Other,
    };

    match stmt.kind {
        StatementKind::Select => analyse_select(tokens, &mut stmt),
        StatementKind::Set => {
            stmt.names_tables = tokens
                .iter()
                .any(|t| matches!(t, Token::Word(w) if eq(w, b"select")));
            let one_shot = eq(second, b"transaction")
                || (tokens
                    .iter()
                    .any(|t| matches!(t, Token::Word(w) if eq(w, b"transaction")))
                    && !tokens.iter().any(
                        |t| matches!(t, Token::Word(w) if eq(w, b"session") || eq(w, b"global")),
                    ));
            let word = |w: &[u8]| {
                tokens
                    .iter()
                    .any(|t| matches!(t, Token::Word(x) if eq(x, w)))
            };
            let global = tokens.iter().any(|t| match t {
                Token::SysVar(v) => v.len() > 9 && eq(&v[..9], b"@@global."),
                _ => false,
            });
            if let Some(on) = autocommit_only(tokens) {
                stmt.autocommit = Some(on);
            } else if tokens.iter().any(|t| matches!(t, Token::UserVar(_))) {
                stmt.pin = Some(PinReason::UserVariable);
            } else if one_shot && !global && !word(b"global") {
                stmt.next_transaction = true;
            } else if eq(second, b"statement") {
                // SET STATEMENT ... FOR <stmt>: scoped to that one statement.
            } else if !one_shot {
                // Plain session variables can be set again on another connection;
                // autocommit (a transaction's state), roles, passwords and anything
                // computed by a query cannot.
                // One statement only: a batch's other results would not be read.
                let batch = tokens
                    .iter()
                    .position(|t| *t == Token::Punct(b";"))
                    .is_some_and(|i| i + 1 < tokens.len());
                let replayable = !global
                    && !batch
                    && !word(b"global")
                    && !word(b"autocommit")
                    && !word(b"select")
                    && !eq(second, b"password")
                    && !eq(second, b"role")
                    && !eq(second, b"default");
                if replayable {
                    stmt.replayable = true;
                } else {
                    stmt.pin = Some(PinReason::SessionVariable);
                }
            }
        }
        StatementKind::Transaction => {
            let words: Vec<&[u8]> = tokens.iter().filter_map(Token::word).collect();
            let only =
                |allowed: &[&[u8]]| words[1..].iter().all(|w| allowed.iter().any(|a| eq(w, a)));
            let idents = tokens
                .iter()
                .filter(|t| matches!(t, Token::Word(_) | Token::Quoted(_)))
                .count();
            let op = match first.to_ascii_lowercase().as_slice() {
                b"begin" if only(&[b"work"]) => TxnOp::Begin,
                b"start" if eq(second, b"transaction") => TxnOp::Begin,
                // `[WORK] [AND [NO] CHAIN] [[NO] RELEASE]`: see `chains`, `releases`.
                b"commit" if ending_options(&words[1..]).is_some() => TxnOp::Commit,
                b"rollback" if ending_options(&words[1..]).is_some() => TxnOp::Rollback,
                // The savepoint's name may be quoted: it is the last identifier.
                b"savepoint" if idents == 2 => TxnOp::Savepoint,
                b"release" if idents == 3 && eq(second, b"savepoint") => TxnOp::ReleaseSavepoint,
                b"rollback"
                    if idents >= 3
                        && idents - 1 <= words.len()
                        && words[1..idents - 1].iter().any(|w| eq(w, b"to"))
                        && words[1..idents - 1]
                            .iter()
                            .all(|w| eq(w, b"work") || eq(w, b"to") || eq(w, b"savepoint")) =>
                {
                    TxnOp::RollbackTo
                }
                _ => TxnOp::Other,
            };
            if matches!(
                op,
                TxnOp::Savepoint | TxnOp::ReleaseSavepoint | TxnOp::RollbackTo
            ) {
                stmt.savepoint = tokens.iter().rev().find_map(|t| match t {
                    Token::Word(w) | Token::Quoted(w) => {
                        Some(String::from_utf8_lossy(w).replace("``", "`"))
                    }
                    _ => None,
                });
            }
            stmt.transaction = Some(op);
            stmt.names_tables = false;
        }
        StatementKind::Use => {
            stmt.use_db = tokens.get(1).and_then(|t| match t {
                Token::Word(w) | Token::Quoted(w) => {
                    Some(String::from_utf8_lossy(w).replace("``", "`"))
                }
                _ => None,
            });
        }
        StatementKind::Ddl => {
            // CREATE [OR REPLACE] TEMPORARY TABLE, DROP TEMPORARY TABLE: no commit.
            let temporary = tokens
                .iter()
                .take(5)
                .any(|t| matches!(t, Token::Word(w) if eq(w, b"temporary")));
            if temporary && eq(first, b"create") {
                stmt.pin = Some(PinReason::TemporaryTable);
            }
            // DROP PREPARE is DEALLOCATE PREPARE: no DDL.
            let deallocate = eq(first, b"drop") && eq(second, b"prepare");
            stmt.commits_first = !(temporary || deallocate);
        }
        StatementKind::Show => {
            let w = second.to_ascii_lowercase();
            stmt.needs_previous = w == b"warnings" || w == b"errors" || w == b"count";
        }
        StatementKind::Other => {
            if eq(first, b"lock") {
                stmt.pin = Some(PinReason::TableLock);
                // LOCK TABLES commits the transaction first, as DDL does.
                stmt.commits_first = eq(second, b"tables") || eq(second, b"table");
            } else if eq(first, b"handler") {
                stmt.pin = Some(PinReason::TableHandler);
            } else if eq(first, b"call") {
                stmt.pin = Some(PinReason::RoutineCall);
            } else if eq(first, b"prepare") {
                stmt.pin = Some(PinReason::PreparedStatement);
            } else if eq(first, b"get") && eq(second, b"diagnostics") {
                stmt.needs_previous = true;
            }
        }
        _ => {}
    }
    analyse_insert_id(tokens, &mut stmt);
    stmt
}

/// A `SET` that may change the client's character set (`SET NAMES`, `SET CHARACTER
/// SET`, `character_set_client`). Broad on purpose: shardgate then asks the server
/// what `@@character_set_client` became, rather than reading the SQL itself.
pub fn may_change_client_charset(sql: &[u8]) -> bool {
    let mut tokens = Lexer::new(sql).filter(|t| !matches!(t, Token::Comment(_)));
    if !matches!(tokens.next(), Some(Token::Word(w)) if eq(w, b"set")) {
        return false;
    }
    tokens.any(|t| match t {
        Token::Word(w) => {
            eq(w, b"names")
                || eq(w, b"charset")
                || eq(w, b"character")
                || eq(w, b"character_set_client")
        }
        Token::SysVar(v) => eq(crate::lexer::sysvar_name(v), b"character_set_client"),
        _ => false,
    })
}

/// A statement of `sql` (a batch's too) is `DROP DATABASE` or `DROP SCHEMA`: dropping
/// the connection's current database leaves it with none, without a COM_INIT_DB, so
/// the caller asks the server which database is current afterwards. A byte search
/// first: the lexer runs only for text that has `drop` in it.
pub fn drops_database(sql: &[u8]) -> bool {
    if !sql.windows(4).any(|w| w.eq_ignore_ascii_case(b"drop")) {
        return false;
    }
    let tokens: Vec<Token<'_>> = Lexer::new(sql)
        .filter(|t| !matches!(t, Token::Comment(_)))
        .collect();
    tokens.split(|t| *t == Token::Punct(b";")).any(|stmt| {
        matches!(stmt, [Token::Word(a), Token::Word(b), ..]
            if eq(a, b"drop") && (eq(b, b"database") || eq(b, b"schema")))
    })
}

/// A `SET` that may change the session's sql_mode (which changes how strings and
/// identifiers are read): shardgate then asks the server what it became.
pub fn may_change_sql_mode(sql: &[u8]) -> bool {
    let mut tokens = Lexer::new(sql).filter(|t| !matches!(t, Token::Comment(_)));
    if !matches!(tokens.next(), Some(Token::Word(w)) if eq(w, b"set")) {
        return false;
    }
    tokens.any(|t| match t {
        Token::Word(w) => eq(w, b"sql_mode"),
        Token::SysVar(v) => eq(crate::lexer::sysvar_name(v), b"sql_mode"),
        _ => false,
    })
}

/// `SET [SESSION | LOCAL] autocommit = <value>` and nothing else: the value.
fn autocommit_only(tokens: &[Token<'_>]) -> Option<bool> {
    let rest: Vec<&Token<'_>> = tokens[1..]
        .iter()
        .filter(|t| !matches!(t, Token::Word(w) if eq(w, b"session") || eq(w, b"local")))
        .collect();
    let (name, value) = match rest.as_slice() {
        [Token::Word(n), Token::Punct(b"=" | b":="), v] => (*n, *v),
        [Token::SysVar(v), Token::Punct(b"=" | b":="), value] => {
            let scope = v.to_ascii_lowercase();
            if scope.starts_with(b"@@global.") {
                return None;
            }
            (crate::lexer::sysvar_name(v), *value)
        }
        _ => return None,
    };
    if !eq(name, b"autocommit") {
        return None;
    }
    match value {
        Token::Number(b"1") => Some(true),
        Token::Number(b"0") => Some(false),
        Token::Word(w) if eq(w, b"on") || eq(w, b"true") => Some(true),
        Token::Word(w) if eq(w, b"off") || eq(w, b"false") => Some(false),
        _ => None,
    }
}

/// A statement after which the session's sql_mode or client character set may differ:
/// a SET of them anywhere in a batch or under SET STATEMENT, or an EXECUTE of a
/// prepared SET. A byte scan, so that no reading of the text can hide it; a false
/// match costs one query to the server.
pub fn may_change_reading(sql: &[u8]) -> bool {
    let mentions = |w: &[u8]| sql.windows(w.len()).any(|x| x.eq_ignore_ascii_case(w));
    mentions(b"sql_mode")
        || mentions(b"names")
        || mentions(b"charset")
        || mentions(b"character")
        || mentions(b"execute")
}

/// For `EXPLAIN SHARDING <sql>`: the byte offset where `<sql>` starts.
pub fn explain_sharding(sql: &[u8]) -> Option<usize> {
    let mut lexer = Lexer::new(sql);
    let mut words = lexer.by_ref().filter(|t| !matches!(t, Token::Comment(_)));
    match (words.next(), words.next()) {
        (Some(Token::Word(e)), Some(Token::Word(s))) if eq(e, b"explain") && eq(s, b"sharding") => {
            let end = s.as_ptr() as usize + s.len() - sql.as_ptr() as usize;
            Some(end)
        }
        _ => None,
    }
}

/// For `SHOW DATABASES` / `SHOW SCHEMAS` (optionally `LIKE 'pattern'`), given a
/// statement's significant tokens: `Some(pattern)`.
pub fn show_databases_in(tokens: &[Token<'_>]) -> Option<Option<String>> {
    match tokens {
        [Token::Word(s), Token::Word(d)]
            if eq(s, b"show") && (eq(d, b"databases") || eq(d, b"schemas")) =>
        {
            Some(None)
        }
        [Token::Word(s), Token::Word(d), Token::Word(l), Token::Str(p)]
            if eq(s, b"show") && (eq(d, b"databases") || eq(d, b"schemas")) && eq(l, b"like") =>
        {
            let inner = &p[1..p.len().saturating_sub(1).max(1)];
            Some(Some(String::from_utf8_lossy(inner).into_owned()))
        }
        _ => None,
    }
}

/// `FOR UPDATE`, `FOR SHARE` / `LOCK IN SHARE MODE`, `INTO OUTFILE|DUMPFILE`.
fn locks_or_writes(w: &[u8], prev: Option<Token<'_>>, next: Option<&Token<'_>>) -> bool {
    let prev_is = |kw: &[u8]| matches!(prev, Some(Token::Word(p)) if eq(p, kw));
    let next_is = |kw: &[u8]| matches!(next, Some(Token::Word(n)) if eq(n, kw));
    (eq(w, b"update") && prev_is(b"for"))
        || (eq(w, b"share") && (prev_is(b"for") || prev_is(b"in")))
        || (eq(w, b"into") && (next_is(b"outfile") || next_is(b"dumpfile")))
}

fn analyse_select(tokens: &[Token<'_>], stmt: &mut Statement) {
    let mut read_only = true;
    let mut names_tables = false;
    let mut prev: Option<Token<'_>> = None;
    for (i, t) in tokens.iter().enumerate() {
        match *t {
            Token::Punct(b":=") => {
                read_only = false;
                stmt.pin = Some(PinReason::UserVariable);
            }
            Token::UserVar(_) if matches!(prev, Some(Token::Word(w)) if eq(w, b"into")) => {
                read_only = false;
                stmt.pin = Some(PinReason::UserVariable);
            }
            Token::SysVar(v) => {
                let name = crate::lexer::sysvar_name(v);
                if eq(name, b"warning_count") || eq(name, b"error_count") {
                    stmt.needs_previous = true;
                    read_only = false;
                }
            }
            Token::Word(w) => {
                let next = tokens.get(i + 1);
                if eq(w, b"from") && !matches!(next, Some(Token::Word(d)) if eq(d, b"dual")) {
                    names_tables = true;
                }
                if eq(w, b"sql_calc_found_rows") {
                    read_only = false;
                    stmt.pin = Some(PinReason::FoundRows);
                } else if locks_or_writes(w, prev, next) {
                    read_only = false;
                } else if matches!(next, Some(Token::Punct(b"(")))
                    && PRIMARY_FUNCTIONS.iter().any(|f| eq(w, f))
                {
                    read_only = false;
                    let lower = w.to_ascii_lowercase();
                    if lower.ends_with(b"_lock") || lower == b"release_all_locks" {
                        stmt.pin = stmt.pin.or(Some(PinReason::NamedLock));
                    }
                    if lower == b"found_rows" || lower == b"row_count" {
                        stmt.needs_previous = true;
                    }
                }
            }
            _ => {}
        }
        prev = Some(*t);
    }
    stmt.read_only = read_only;
    stmt.names_tables = names_tables;
}

/// `LAST_INSERT_ID()` and `@@identity` read the session's last insert id, which
/// shardgate keeps (so an INSERT pins nothing); `LAST_INSERT_ID(expr)` sets it on the
/// connection, which then holds the session's value.
fn analyse_insert_id(tokens: &[Token<'_>], stmt: &mut Statement) {
    for (i, t) in tokens.iter().enumerate() {
        match *t {
            Token::SysVar(v) => {
                let name = crate::lexer::sysvar_name(v);
                if eq(name, b"identity") || eq(name, b"last_insert_id") {
                    stmt.reads_insert_id = true;
                }
            }
            Token::Word(w) if eq(w, b"last_insert_id") => {
                match (tokens.get(i + 1), tokens.get(i + 2)) {
                    (Some(Token::Punct(b"(")), Some(Token::Punct(b")"))) => {
                        stmt.reads_insert_id = true;
                    }
                    (Some(Token::Punct(b"(")), _) => {
                        stmt.pin = stmt.pin.or(Some(PinReason::LastInsertId));
                        stmt.read_only = false;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

mod transaction_words;

#[cfg(test)]
mod tests;
