//! What a statement needs the right to do, read from its words before anything is
//! sent. Every client statement runs with shardgate's backend account, so shardgate
//! checks its own user model first: statements that act on the server as a whole
//! (accounts, files, administration) need a grant in the config, and reads, writes
//! and DDL need the user's privileges on the schema.

use crate::lexer::Token;

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

pub use crate::reading::Reading;

fn eq(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The statements of a batch, split at top-level `;` as `reading` sees them.
pub fn statements(sql: &[u8], reading: Reading) -> Vec<&[u8]> {
    let base = sql.as_ptr() as usize;
    let mut parts = Vec::new();
    let mut start = 0;
    for t in reading.lexer(sql) {
        if let Token::Punct(p @ b";") = t {
            let at = p.as_ptr() as usize - base;
            parts.push(&sql[start..at]);
            start = at + 1;
        }
    }
    parts.push(&sql[start..]);
    parts.retain(|p| !p.trim_ascii().is_empty());
    parts
}

/// Every right the statements of `sql` (a batch: each statement) need.
pub fn needs(sql: &[u8]) -> Vec<Need> {
    let mut all = Vec::new();
    for part in statements(sql, Reading::DEFAULT) {
        for n in needs_in(part, Reading::DEFAULT) {
            if !all.contains(&n) {
                all.push(n);
            }
        }
    }
    all.sort();
    all
}

/// The rights one statement needs, read as `reading` says.
pub fn needs_in(sql: &[u8], reading: Reading) -> Vec<Need> {
    let tokens = reading.tokens(sql);
    let mut needs = statement_needs(&tokens);
    needs.sort();
    needs.dedup();
    needs
}

/// `SET STATEMENT var = value, ... FOR <statement>`: the statement it runs.
pub fn set_statement_inner(sql: &[u8], reading: Reading) -> Option<&[u8]> {
    if !reading.first_word(sql).is_some_and(|w| eq(w, b"set")) {
        return None;
    }
    let base = sql.as_ptr() as usize;
    let tokens = reading.tokens(sql);
    match tokens.as_slice() {
        [Token::Word(s), Token::Word(st), ..] if eq(s, b"set") && eq(st, b"statement") => {}
        _ => return None,
    }
    let f = tokens.iter().find_map(|t| match t {
        Token::Word(w) if eq(w, b"for") => Some(*w),
        _ => None,
    })?;
    Some(&sql[f.as_ptr() as usize - base + f.len()..])
}

/// The databases a statement names without a dot: `USE db`, and SHOW's (`SHOW
/// TABLES FROM db`, `SHOW COLUMNS FROM t IN db`, `SHOW CREATE DATABASE db`).
pub fn show_databases(sql: &[u8], reading: Reading) -> Vec<String> {
    if reading.first_word(sql).is_some_and(|w| eq(w, b"use")) {
        return match reading.tokens(sql).get(1) {
            Some(Token::Word(db) | Token::Quoted(db)) => {
                vec![String::from_utf8_lossy(db).replace("``", "`")]
            }
            _ => Vec::new(),
        };
    }
    if !reading.first_word(sql).is_some_and(|w| eq(w, b"show")) {
        return Vec::new();
    }
    let tokens = reading.tokens(sql);
    let word = |i: usize, w: &[u8]| matches!(tokens.get(i), Some(Token::Word(x)) if eq(x, w));
    if !word(0, b"show") {
        return Vec::new();
    }
    let name = |t: Option<&Token<'_>>| match t {
        Some(Token::Word(w) | Token::Quoted(w)) => Some(String::from_utf8_lossy(w).into_owned()),
        _ => None,
    };
    if word(1, b"create") && (word(2, b"database") || word(2, b"schema")) {
        let at = if word(3, b"if") { 6 } else { 3 };
        return name(tokens.get(at)).into_iter().collect();
    }
    // SHOW COLUMNS/INDEX FROM <table> [FROM|IN <db>]: the first FROM names a table.
    let on_table = [
        b"columns".as_slice(),
        b"fields",
        b"index",
        b"indexes",
        b"keys",
    ]
    .iter()
    .any(|w| word(1, w) || word(2, w));
    let mut dbs = Vec::new();
    let mut skipped_table = !on_table;
    for (i, t) in tokens.iter().enumerate() {
        if !matches!(t, Token::Word(w) if eq(w, b"from") || eq(w, b"in")) {
            continue;
        }
        // `FROM db.t` is a qualified name, checked as such.
        if tokens.get(i + 2) == Some(&Token::Punct(b".")) {
            skipped_table = true;
            continue;
        }
        if !skipped_table {
            skipped_table = true;
            continue;
        }
        dbs.extend(name(tokens.get(i + 1)));
    }
    dbs
}

/// Words that stand before the object a CREATE/ALTER/DROP names.
const OBJECT_PREFIX: [&[u8]; 12] = [
    b"or",
    b"replace",
    b"if",
    b"not",
    b"exists",
    b"temporary",
    b"online",
    b"offline",
    b"ignore",
    b"aggregate",
    b"definer",
    b"current_user",
];

fn statement_needs(tokens: &[Token<'_>]) -> Vec<Need> {
    let words: Vec<&[u8]> = tokens.iter().filter_map(Token::word).collect();
    let Some(&first) = words.first() else {
        return Vec::new();
    };
    let second = words.get(1).copied().unwrap_or(b"");
    let has = |w: &[u8]| words.iter().any(|x| eq(x, w));
    let has_name = |w: &[u8]| {
        tokens
            .iter()
            .any(|t| matches!(t, Token::Word(x) | Token::Quoted(x) if eq(x, w)))
    };
    let mut needs = Vec::new();
    // Functions and clauses that reach the file system, wherever they appear.
    let file_function = tokens.windows(2).any(|w| {
        matches!(w, [Token::Word(f) | Token::Quoted(f), Token::Punct(b"(")] if eq(f, b"load_file"))
    });
    let into_file = words
        .windows(2)
        .any(|w| eq(w[0], b"into") && (eq(w[1], b"outfile") || eq(w[1], b"dumpfile")));
    if file_function || into_file {
        needs.push(Need::File);
    }
    // A sequence's next value is a write, wherever it appears (MariaDB asks INSERT).
    let sequence_write = tokens.windows(2).any(|w| {
        matches!(w, [Token::Word(f) | Token::Quoted(f), Token::Punct(b"(")]
            if eq(f, b"nextval") || eq(f, b"setval"))
    }) || words
        .windows(3)
        .any(|w| eq(w[0], b"next") && eq(w[1], b"value") && eq(w[2], b"for"));
    if sequence_write {
        needs.push(Need::Write);
    }
    // The backend's process list and open transactions show every client's statements.
    if has_name(b"information_schema") && (has_name(b"processlist") || has_name(b"innodb_trx")) {
        needs.push(Need::Admin);
    }
    // information_schema is answered per user only in queries (the catalog path);
    // copied by INSERT … SELECT or CREATE … AS SELECT it would be whole.
    let query = [
        b"select".as_slice(),
        b"with",
        b"show",
        b"describe",
        b"desc",
        b"explain",
        b"table",
    ]
    .iter()
    .any(|q| eq(first, q));
    if has_name(b"information_schema") && !query {
        needs.push(Need::Admin);
    }
    // Dynamic SQL inside a routine, event or trigger body hides its statements from
    // these checks, and the body runs with shardgate's account.
    if eq(first, b"create") || eq(first, b"alter") {
        let body = has(b"procedure") || has(b"function") || has(b"event") || has(b"trigger");
        if body && (has(b"prepare") || has(b"execute")) {
            needs.push(Need::Admin);
        }
        // DEFINER = someone other than the current user acts as that account.
        if has(b"definer") && !has(b"current_user") {
            needs.push(Need::Account);
        }
    }
    let lower = first.to_ascii_lowercase();
    let object = words[1..]
        .iter()
        .copied()
        .find(|w| !OBJECT_PREFIX.iter().any(|p| eq(w, p)))
        .unwrap_or(b"");
    let object_is = |w: &[u8]| eq(object, w);
    // The data statement after WITH or ANALYZE decides what WITH … DELETE needs.
    let dml = words.iter().find_map(|w| {
        let l = w.to_ascii_lowercase();
        matches!(l.as_slice(), b"insert" | b"update" | b"delete" | b"replace").then_some(l)
    });
    match lower.as_slice() {
        // ANALYZE runs the statement, whatever its FORMAT; EXPLAIN FORMAT=… does not.
        b"with" | b"analyze" | b"explain"
            if dml.is_some() && (!has(b"format") || has(b"analyze")) =>
        {
            needs.push(Need::Write)
        }
        // A read-write transaction undoes the read-only session a user without the
        // write right runs in.
        b"start" | b"begin" if has(b"write") => needs.push(Need::Write),
        // XA transactions outlive their client (a prepared branch survives the
        // disconnect, keeps its locks, and any client may commit it): shardgate's own
        // distributed transactions will use them, clients may not.
        b"xa" => needs.push(Need::Admin),
        // Another client's plan: EXPLAIN FOR CONNECTION n.
        b"explain" if has(b"connection") => needs.push(Need::Admin),
        // ANALYZE TABLE rewrites statistics (MariaDB asks for INSERT).
        b"analyze"
            if eq(second, b"table")
                || eq(second, b"no_write_to_binlog")
                || eq(second, b"local") =>
        {
            needs.push(Need::Write)
        }
        b"select" | b"with" | b"values" | b"table" | b"describe" | b"desc" | b"explain"
        | b"help" | b"checksum" | b"analyze" | b"check" => needs.push(Need::Read),
        b"show" => {
            let l2 = second.to_ascii_lowercase();
            if matches!(
                l2.as_slice(),
                b"binlog"
                    | b"relaylog"
                    | b"engine"
                    | b"master"
                    | b"slave"
                    | b"replica"
                    | b"binary"
                    | b"explain"
                    | b"analyze"
                    | b"all"
                    | b"open"
                    | b"table_statistics"
                    | b"index_statistics"
                    | b"user_statistics"
                    | b"client_statistics"
            ) || (eq(second, b"create") && (has(b"user") || has(b"role")))
                // Every database's routines (information_schema.ROUTINES is narrowed).
                || (matches!(l2.as_slice(), b"procedure" | b"function" | b"package")
                    && has(b"status"))
            {
                needs.push(Need::Admin);
            } else {
                needs.push(Need::Read);
            }
        }
        b"insert" | b"update" | b"delete" | b"replace" | b"call" => needs.push(Need::Write),
        // DO evaluates expressions as SELECT does; HANDLER reads a table row by row.
        b"do" | b"handler" => needs.push(Need::Read),
        b"load" => {
            // LOCAL before INFILE reads the client's file; without it, the server's.
            let local = words
                .iter()
                .position(|w| eq(w, b"local"))
                .zip(words.iter().position(|w| eq(w, b"infile")))
                .is_some_and(|(l, i)| l < i);
            if local {
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
                || object_is(b"instance")
                || object_is(b"resource")
                || has(b"soname")
            {
                needs.push(Need::Admin);
            } else {
                needs.push(Need::Ddl);
            }
        }
        b"truncate" | b"optimize" | b"repair" => needs.push(Need::Ddl),
        b"set" => {
            // Variables that change what the server writes to its binary log (and so
            // what replicas apply) are the server's, not a session's.
            let replication = [
                &b"server_id"[..],
                b"gtid_domain_id",
                b"gtid_seq_no",
                b"skip_replication",
                b"pseudo_slave_mode",
                b"pseudo_thread_id",
                b"binlog_format",
                b"wsrep_on",
            ]
            .iter()
            .any(|v| {
                has(v)
                    || tokens.iter().any(
                        |t| matches!(t, Token::SysVar(s) if eq(crate::lexer::sysvar_name(s), v)),
                    )
            });
            let global = has(b"global")
                || replication
                || has(b"persist")
                || has(b"persist_only")
                || has(b"sql_log_bin")
                || (eq(second, b"resource") && has(b"group"))
                || tokens.iter().any(|t| match t {
                    Token::SysVar(v) => {
                        let v = v.to_ascii_lowercase();
                        v.starts_with(b"@@global.")
                            || v.starts_with(b"@@persist")
                            || v.ends_with(b"sql_log_bin")
                    }
                    _ => false,
                });
            if eq(second, b"password") || eq(second, b"role") || has(b"default") && has(b"role") {
                needs.push(Need::Account);
            } else if global {
                needs.push(Need::Admin);
            }
            // Turning off a read-only session is a write right's.
            let read_write = has(b"tx_read_only")
                || has(b"transaction_read_only")
                || (has(b"transaction") && has(b"write"))
                || tokens.iter().any(|t| {
                    matches!(t, Token::SysVar(v)
                    if eq(crate::lexer::sysvar_name(v), b"tx_read_only")
                        || eq(crate::lexer::sysvar_name(v), b"transaction_read_only"))
                });
            if read_write {
                needs.push(Need::Write);
            }
            // `SET @x = (SELECT …)` reads what its subquery reads (`TABLE t` too).
            if has(b"select") || has(b"table") {
                needs.push(Need::Read);
            }
        }
        // LOCK TABLES holds other clients off its tables: MySQL asks SELECT on them.
        b"lock" if has(b"tables") || has(b"table") => needs.push(Need::Read),
        b"shutdown" | b"restart" | b"install" | b"uninstall" | b"flush" | b"reset" | b"purge"
        | b"binlog" | b"change" | b"cache" | b"clone" | b"import" | b"backup" | b"lock" => {
            needs.push(Need::Admin)
        }
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
    dynamic_sql_in(sql, Reading::DEFAULT)
}

/// [`dynamic_sql`] of one statement, read as `reading` says.
pub fn dynamic_sql_in(sql: &[u8], reading: Reading) -> Option<Result<String, ()>> {
    let first = reading.first_word(sql)?;
    if !eq(first, b"prepare") && !eq(first, b"execute") {
        return None;
    }
    let tokens: Vec<Token<'_>> = reading
        .lexer(sql)
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
        [Token::Str(s)] if s.len() >= 2 => Ok(unquote(s, reading.backslash_escapes)),
        _ => Err(()),
    })
}

/// A string literal's text: quotes removed, doubled quotes and backslash escapes undone.
fn unquote(s: &[u8], backslash_escapes: bool) -> String {
    let text = crate::lexer::string_literal(s, backslash_escapes).unwrap_or_default();
    String::from_utf8_lossy(&text).into_owned()
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
        // EXPLAIN ANALYZE runs its statement, whatever its FORMAT.
        assert_eq!(
            n("EXPLAIN ANALYZE FORMAT=TREE DELETE FROM t"),
            [Need::Write]
        );
        assert_eq!(n("EXPLAIN FORMAT=JSON DELETE FROM t"), [Need::Read]);
        assert_eq!(n("SET @x = (SELECT 1 FROM t)"), [Need::Read]);
        assert_eq!(n("LOCK TABLES t READ"), [Need::Read]);
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
