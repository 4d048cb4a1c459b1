//! The statements inside a stored routine, trigger or event body. A body runs later
//! with its definer's rights, and every definer is shardgate's backend account, so
//! each statement in it must pass the checks it would need if the user sent it now:
//! `CREATE PROCEDURE p() GRANT ALL ON *.* TO x` needs the account grant.
//!
//! Bodies are compound statements (BEGIN … END, IF … THEN, loops, labels, handlers),
//! which shardgate does not parse. Instead every place where a statement may begin is
//! a candidate: each word that starts a statement, except a SET that is a clause of
//! UPDATE, INSERT, LOAD DATA or a character set. A candidate runs to the next `;`.
//! Reading too much is safe: a candidate that is not a statement asks for rights a
//! statement of its first word would need, or for none.

use crate::lexer::Token;
use crate::reading::Reading;

/// Words that begin a statement.
const STATEMENT_WORDS: [&str; 45] = [
    "select",
    "insert",
    "update",
    "delete",
    "replace",
    "set",
    "create",
    "drop",
    "alter",
    "rename",
    "truncate",
    "grant",
    "revoke",
    "load",
    "call",
    "do",
    "handler",
    "flush",
    "kill",
    "shutdown",
    "restart",
    "install",
    "uninstall",
    "purge",
    "reset",
    "change",
    "start",
    "stop",
    "lock",
    "prepare",
    "execute",
    "binlog",
    "backup",
    "cache",
    "clone",
    "import",
    "optimize",
    "repair",
    "analyze",
    "with",
    "show",
    "explain",
    "xa",
    "table",
    "values",
];

/// Words after which the next statement of a body begins.
const BOUNDARIES: [&str; 8] = [
    "begin", "then", "else", "do", "loop", "repeat", "row", "end",
];

/// Kinds of object a CREATE or ALTER may name; the first one written is the kind.
const KINDS: [&str; 16] = [
    "procedure",
    "function",
    "trigger",
    "event",
    "table",
    "view",
    "index",
    "database",
    "schema",
    "user",
    "role",
    "server",
    "sequence",
    "tablespace",
    "logfile",
    "package",
];

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

/// The candidate statements of the body when `sql` creates a procedure, function,
/// trigger or event (or alters an event), or is a compound statement; empty
/// otherwise.
pub fn body_statements(sql: &[u8], reading: Reading) -> Vec<&[u8]> {
    let base = sql.as_ptr() as usize;
    let tokens: Vec<Token<'_>> = reading.tokens(sql);
    let words = tokens.iter().filter_map(Token::word);
    let mut words = words.peekable();
    let first = words.next().unwrap_or(b"");
    // An anonymous compound statement (BEGIN NOT ATOMIC, IF, CASE, loops, a label)
    // runs its statements at once; a stored body runs them later. Both are checked.
    let compound = ["if", "case", "repeat", "while", "loop", "for"]
        .iter()
        .any(|w| eq(first, w))
        || (eq(first, "begin") && words.peek().is_some_and(|w| eq(w, "not")))
        || matches!(tokens.get(1), Some(Token::Punct(b":")));
    if !compound {
        if !(eq(first, "create") || eq(first, "alter")) {
            return Vec::new();
        }
        let kind = words.find(|w| KINDS.iter().any(|k| eq(w, k)));
        let routine = kind.is_some_and(|k| {
            ["procedure", "function", "trigger", "event"]
                .iter()
                .any(|r| eq(k, r))
        });
        if !routine {
            return Vec::new();
        }
    }
    let start_of = |t: &Token<'_>| -> Option<usize> {
        match t {
            Token::Word(w) => Some(w.as_ptr() as usize - base),
            _ => None,
        }
    };
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate().skip(1) {
        let Token::Word(w) = t else { continue };
        if !STATEMENT_WORDS.iter().any(|s| eq(w, s)) {
            continue;
        }
        // `db.insert`, `t.set`: a name after a dot, not a statement.
        if matches!(tokens[i - 1], Token::Punct(b".")) {
            continue;
        }
        if eq(w, "set") && is_clause(&tokens[..i]) {
            continue;
        }
        let Some(start) = start_of(t) else { continue };
        let end = tokens[i..]
            .iter()
            .find_map(|t| match t {
                Token::Punct(p @ b";") => Some(p.as_ptr() as usize - base),
                _ => None,
            })
            .unwrap_or(sql.len());
        out.push(&sql[start..end]);
    }
    out
}

/// A SET preceded by these tokens is part of another statement: `UPDATE t SET`,
/// `INSERT … SET`, `LOAD DATA … SET`, `CHARACTER SET`.
fn is_clause(before: &[Token<'_>]) -> bool {
    if matches!(before.last(), Some(Token::Word(w)) if eq(w, "character")) {
        return true;
    }
    for (i, t) in before.iter().enumerate().rev() {
        // A name after a dot (`shop.insert`) is no statement word.
        if i > 0 && matches!(before[i - 1], Token::Punct(b".")) {
            continue;
        }
        match t {
            Token::Punct(b";") => return false,
            Token::Word(w) if BOUNDARIES.iter().any(|b| eq(w, b)) => return false,
            Token::Word(w)
                if ["update", "insert", "replace", "load"]
                    .iter()
                    .any(|s| eq(w, s)) =>
            {
                return true
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(sql: &str) -> Vec<String> {
        body_statements(sql.as_bytes(), Reading::DEFAULT)
            .into_iter()
            .map(|s| String::from_utf8_lossy(s).trim().to_string())
            .collect()
    }

    #[test]
    fn finds_each_statement_a_body_may_run() {
        assert_eq!(
            body("CREATE PROCEDURE p() SET GLOBAL x = 1"),
            ["SET GLOBAL x = 1"]
        );
        assert_eq!(
            body("CREATE DEFINER = CURRENT_USER PROCEDURE p() BEGIN IF a THEN GRANT ALL ON *.* TO e; END IF; DROP DATABASE d; END"),
            ["GRANT ALL ON *.* TO e", "DROP DATABASE d"]
        );
        assert_eq!(
            body("CREATE FUNCTION f() RETURNS VARCHAR(9) CHARACTER SET utf8 SET GLOBAL y = 2"),
            ["SET GLOBAL y = 2"]
        );
        assert_eq!(
            body("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW FOLLOWS t2 SET NEW.a = 1"),
            [
                "INSERT ON t FOR EACH ROW FOLLOWS t2 SET NEW.a = 1",
                "SET NEW.a = 1"
            ]
        );
        assert_eq!(
            body("CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO CREATE USER u"),
            ["DO CREATE USER u", "CREATE USER u"]
        );
        // SET as a clause of another statement is not a statement of its own.
        assert_eq!(
            body("CREATE PROCEDURE p() BEGIN UPDATE t SET password = 'x'; END"),
            ["UPDATE t SET password = 'x'"]
        );
    }

    #[test]
    fn compound_statements_are_bodies_run_at_once() {
        assert_eq!(body("IF 1 THEN CREATE USER e; END IF"), ["CREATE USER e"]);
        assert_eq!(
            body("BEGIN NOT ATOMIC SET GLOBAL max_connections = 9; END"),
            ["SET GLOBAL max_connections = 9"]
        );
        assert_eq!(
            body("FOR i IN 1..2 DO INSERT INTO t VALUES (i); END FOR"),
            [
                "DO INSERT INTO t VALUES (i)",
                "INSERT INTO t VALUES (i)",
                "VALUES (i)"
            ]
        );
        assert_eq!(body("lbl: LOOP LEAVE lbl; END LOOP"), Vec::<String>::new());
        // A routine named like a statement word hides nothing.
        assert_eq!(
            body("CREATE PROCEDURE shop.insert() SET GLOBAL general_log = 1"),
            ["SET GLOBAL general_log = 1"]
        );
        assert_eq!(body("BEGIN NOT ATOMIC SHOW GRANTS; END"), ["SHOW GRANTS"]);
        assert!(body("BEGIN").is_empty());
        assert!(body("BEGIN WORK").is_empty());
    }

    #[test]
    fn other_statements_have_no_body() {
        assert!(body("CREATE TABLE t (procedure_id INT)").is_empty());
        assert!(body("SELECT 1").is_empty());
        assert!(body("CREATE VIEW v AS SELECT 1").is_empty());
    }
}
