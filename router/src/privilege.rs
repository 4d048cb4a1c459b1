//! What a statement needs the right to do, read from its words before anything is
//! sent. Every client statement runs with shardgate's backend account, so shardgate
//! checks its own user model first: statements that act on the server as a whole
//! (accounts, files, administration) need a grant in the config, and reads, writes
//! and DDL need the user's privileges on the schema.

use crate::lexer::{Lexer, Token};

/// A right a statement needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    Read,
    Write,
    Ddl,
    /// Accounts and roles: CREATE/DROP/ALTER/RENAME USER, GRANT, REVOKE, SET PASSWORD.
    Account,
    /// The server's file system: LOAD_FILE, INTO OUTFILE/DUMPFILE, LOAD DATA INFILE.
    File,
    /// The server as a whole: SET GLOBAL, SHUTDOWN, plugins, replication, FLUSH,
    /// RESET, PURGE, databases that are not logical schemas, servers.
    Admin,
}

impl Need {
    /// The config's name for it (`privileges = [...]`).
    pub fn as_str(self) -> &'static str {
        match self {
            Need::Read => "read",
            Need::Write => "write",
            Need::Ddl => "ddl",
            Need::Account => "account",
            Need::File => "file",
            Need::Admin => "admin",
        }
    }

    /// MySQL's name for the privilege, for error messages.
    pub fn mysql_name(self) -> &'static str {
        match self {
            Need::Read => "SELECT",
            Need::Write => "INSERT, UPDATE, DELETE",
            Need::Ddl => "CREATE, ALTER, DROP",
            Need::Account => "CREATE USER",
            Need::File => "FILE",
            Need::Admin => "SUPER",
        }
    }

    pub fn parse(name: &str) -> Option<Need> {
        Some(match name.to_ascii_lowercase().as_str() {
            "read" => Need::Read,
            "write" => Need::Write,
            "ddl" => Need::Ddl,
            "account" => Need::Account,
            "file" => Need::File,
            "admin" => Need::Admin,
            _ => return None,
        })
    }
}

fn eq(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Every right the statements of `sql` (a batch: each statement) need.
pub fn needs(sql: &[u8]) -> Vec<Need> {
    needs_in(sql, true)
}

/// [`needs`], reading strings with or without backslash escapes.
pub fn needs_in(sql: &[u8], backslash_escapes: bool) -> Vec<Need> {
    let tokens: Vec<Token<'_>> = Lexer::with_backslash_escapes(sql, backslash_escapes)
        .filter(|t| !matches!(t, Token::Comment(_)))
        .collect();
    let mut all = Vec::new();
    for part in tokens.split(|t| *t == Token::Punct(b";")) {
        for n in statement_needs(part) {
            if !all.contains(&n) {
                all.push(n);
            }
        }
    }
    all.sort();
    all
}

fn statement_needs(tokens: &[Token<'_>]) -> Vec<Need> {
    let words: Vec<&[u8]> = tokens
        .iter()
        .filter_map(|t| match t {
            Token::Word(w) => Some(*w),
            _ => None,
        })
        .collect();
    let Some(&first) = words.first() else {
        return Vec::new();
    };
    let second = words.get(1).copied().unwrap_or(b"");
    let has = |w: &[u8]| words.iter().any(|x| eq(x, w));
    let mut needs = Vec::new();
    // Functions and clauses that reach the file system, wherever they appear.
    let file_function = tokens
        .windows(2)
        .any(|w| matches!(w, [Token::Word(f), Token::Punct(b"(")] if eq(f, b"load_file")));
    let into_file = words
        .windows(2)
        .any(|w| eq(w[0], b"into") && (eq(w[1], b"outfile") || eq(w[1], b"dumpfile")));
    if file_function || into_file {
        needs.push(Need::File);
    }
    // The backend's process list shows every client's connection and statement.
    if has(b"information_schema") && has(b"processlist") {
        needs.push(Need::Admin);
    }
    let lower = first.to_ascii_lowercase();
    let object_is = |w: &[u8]| eq(second, w) || (words.len() > 2 && eq(words[2], w));
    match lower.as_slice() {
        b"select" | b"with" | b"values" | b"table" | b"show" | b"describe" | b"desc"
        | b"explain" | b"help" | b"checksum" | b"analyze" | b"check" => needs.push(Need::Read),
        b"insert" | b"update" | b"delete" | b"replace" | b"call" | b"do" | b"handler" => {
            needs.push(Need::Write)
        }
        b"load" => {
            // LOAD DATA LOCAL INFILE reads the client's file; without LOCAL, the server's.
            if has(b"local") {
                needs.push(Need::Write);
            } else {
                needs.push(Need::File);
            }
        }
        b"grant" | b"revoke" => needs.push(Need::Account),
        b"create" | b"drop" | b"alter" | b"rename" => {
            if object_is(b"user") || object_is(b"role") {
                needs.push(Need::Account);
            } else if object_is(b"database")
                || object_is(b"schema")
                || object_is(b"server")
                || object_is(b"tablespace")
                || object_is(b"logfile")
                || has(b"soname")
            {
                needs.push(Need::Admin);
            } else {
                needs.push(Need::Ddl);
            }
        }
        b"truncate" | b"optimize" | b"repair" => needs.push(Need::Ddl),
        b"set" => {
            let global = has(b"global")
                || has(b"persist")
                || tokens.iter().any(|t| match t {
                    Token::SysVar(v) => v.len() > 9 && eq(&v[..9], b"@@global."),
                    _ => false,
                });
            if eq(second, b"password") || eq(second, b"role") || has(b"default") && has(b"role") {
                needs.push(Need::Account);
            } else if global {
                needs.push(Need::Admin);
            }
        }
        b"shutdown" | b"install" | b"uninstall" | b"flush" | b"reset" | b"purge" | b"binlog"
        | b"change" | b"cache" => needs.push(Need::Admin),
        // START/STOP SLAVE, REPLICA, ALL SLAVES, GROUP_REPLICATION ...
        b"start" | b"stop" if !eq(second, b"transaction") => needs.push(Need::Admin),
        _ => {}
    }
    needs
}

/// The statement a `PREPARE name FROM …` or `EXECUTE IMMEDIATE …` runs: `Ok` with its
/// text when written as a literal, `Err` when it comes from a variable or an
/// expression. `None` for other statements.
pub fn dynamic_sql(sql: &[u8]) -> Option<Result<String, ()>> {
    let tokens: Vec<Token<'_>> = Lexer::new(sql)
        .filter(|t| !matches!(t, Token::Comment(_) | Token::Punct(b";")))
        .collect();
    let source = match tokens.as_slice() {
        [Token::Word(p), _, Token::Word(f), rest @ ..] if eq(p, b"prepare") && eq(f, b"from") => {
            rest
        }
        [Token::Word(e), Token::Word(i), rest @ ..] if eq(e, b"execute") && eq(i, b"immediate") => {
            // EXECUTE IMMEDIATE '<sql>' [USING ...]
            match rest
                .iter()
                .position(|t| matches!(t, Token::Word(u) if eq(u, b"using")))
            {
                Some(at) => &rest[..at],
                None => rest,
            }
        }
        _ => return None,
    };
    Some(match source {
        [Token::Str(s)] if s.len() >= 2 => Ok(unquote(s)),
        _ => Err(()),
    })
}

/// A string literal's text: quotes removed, doubled quotes and backslash escapes undone.
fn unquote(s: &[u8]) -> String {
    let quote = s[0];
    let mut out = Vec::with_capacity(s.len());
    let mut i = 1;
    while i + 1 < s.len() {
        let c = s[i];
        if c == b'\\' && i + 2 < s.len() {
            out.push(s[i + 1]);
            i += 2;
        } else if c == quote && s.get(i + 1) == Some(&quote) && i + 2 < s.len() {
            out.push(quote);
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_statements_are_found() {
        assert_eq!(
            dynamic_sql(b"PREPARE s FROM 'SELECT * FROM mysql.user'"),
            Some(Ok("SELECT * FROM mysql.user".into()))
        );
        assert_eq!(
            dynamic_sql(b"PREPARE s FROM 'SELECT ''a'' FROM t'"),
            Some(Ok("SELECT 'a' FROM t".into()))
        );
        assert_eq!(dynamic_sql(b"PREPARE s FROM @q"), Some(Err(())));
        assert_eq!(
            dynamic_sql(b"EXECUTE IMMEDIATE CONCAT('SEL', 'ECT 1')"),
            Some(Err(()))
        );
        assert_eq!(
            dynamic_sql(b"EXECUTE IMMEDIATE 'SELECT ?' USING 1"),
            Some(Ok("SELECT ?".into()))
        );
        assert_eq!(dynamic_sql(b"EXECUTE s"), None);
    }

    #[test]
    fn statements_are_read_for_what_they_need() {
        let n = |s: &str| needs(s.as_bytes());
        assert_eq!(n("SELECT * FROM t"), [Need::Read]);
        assert_eq!(
            n("select load_file('/etc/hostname')"),
            [Need::Read, Need::File]
        );
        assert_eq!(
            n("SELECT * FROM t INTO OUTFILE '/tmp/x'"),
            [Need::Read, Need::File]
        );
        assert_eq!(n("INSERT INTO t VALUES (1)"), [Need::Write]);
        assert_eq!(n("LOAD DATA LOCAL INFILE 'x' INTO TABLE t"), [Need::Write]);
        assert_eq!(
            n("LOAD DATA INFILE '/etc/passwd' INTO TABLE t"),
            [Need::File]
        );
        assert_eq!(n("CREATE TABLE t (a INT)"), [Need::Ddl]);
        assert_eq!(n("CREATE USER x IDENTIFIED BY 'y'"), [Need::Account]);
        assert_eq!(n("GRANT ALL ON *.* TO x"), [Need::Account]);
        assert_eq!(n("SET PASSWORD = PASSWORD('x')"), [Need::Account]);
        assert_eq!(n("CREATE DATABASE other"), [Need::Admin]);
        assert_eq!(n("SET GLOBAL max_connections = 1"), [Need::Admin]);
        assert_eq!(n("SET @@global.read_only = 1"), [Need::Admin]);
        assert_eq!(n("SHUTDOWN"), [Need::Admin]);
        assert_eq!(n("INSTALL SONAME 'ha_blackhole'"), [Need::Admin]);
        assert_eq!(n("STOP SLAVE"), [Need::Admin]);
        assert_eq!(n("FLUSH PRIVILEGES"), [Need::Admin]);
        assert!(n("START TRANSACTION").is_empty());
        assert!(n("SET NAMES utf8mb4").is_empty());
        assert!(n("SET SESSION sql_mode = ''").is_empty());
        assert_eq!(n("SELECT 1; DROP USER x"), [Need::Read, Need::Account]);
    }
}
