//! Statements about the catalog that must show logical names: `SELECT DATABASE()` and
//! information_schema queries about a logical schema's tables.

use rules::runtime::LogicalSchema;
use rules::{Runtime, TableKind};

use crate::lexer::{Lexer, Token};

fn eq(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// A statement's tokens without comments and its closing `;`: what the questions
/// below read.
pub fn significant(sql: &[u8]) -> Vec<Token<'_>> {
    Lexer::new(sql)
        .filter(|t| !matches!(t, Token::Comment(_) | Token::Punct(b";")))
        .collect()
}

/// True when `sql` contains `<before>_<after>` in any case. Runs on every statement,
/// so it looks only around underscores: one pass, no allocation.
pub fn contains_word(sql: &[u8], before: &[u8], after: &[u8]) -> bool {
    sql.iter().enumerate().any(|(i, b)| {
        *b == b'_'
            && i >= before.len()
            && sql[i - before.len()..i].eq_ignore_ascii_case(before)
            && sql
                .get(i + 1..i + 1 + after.len())
                .is_some_and(|a| a.eq_ignore_ascii_case(after))
    })
}

/// A function of the session that shardgate answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionFn {
    /// `DATABASE()`, `SCHEMA()`: the logical schema.
    Database,
    /// `CONNECTION_ID()`: shardgate's id, the one `KILL` takes.
    ConnectionId,
    /// `@@max_connections`: how many clients shardgate accepts, not what one backend
    /// accepts from shardgate.
    MaxConnections,
    /// `CURRENT_USER()`, `USER()`, `SESSION_USER()`: shardgate's user, not the backend
    /// account every connection logs in as.
    CurrentUser,
}

/// `SELECT DATABASE()` / `SCHEMA()` / `CONNECTION_ID()` / `@@max_connections`, with an
/// optional alias: the function and the column name to answer with.
pub fn session_function_in(tokens: &[Token<'_>]) -> Option<(SessionFn, String)> {
    if let [Token::Word(s), Token::SysVar(v), rest @ ..] = tokens {
        let name = crate::lexer::sysvar_name(v);
        if !eq(s, b"select") || !eq(name, b"max_connections") {
            return None;
        }
        let alias = match rest {
            [] => None,
            [a] => Some(*a),
            [Token::Word(kw), a] if eq(kw, b"as") => Some(*a),
            _ => return None,
        };
        let column = match alias {
            None => String::from_utf8_lossy(v).into_owned(),
            Some(Token::Word(a) | Token::Quoted(a)) => String::from_utf8_lossy(a).into_owned(),
            Some(Token::Str(a)) => {
                String::from_utf8_lossy(&a[1..a.len().saturating_sub(1).max(1)]).into_owned()
            }
            Some(_) => return None,
        };
        return Some((SessionFn::MaxConnections, column));
    }
    let (head, alias) = match tokens {
        [s, f, o, c] => ([*s, *f, *o, *c], None),
        [s, f, o, c, a] => ([*s, *f, *o, *c], Some(*a)),
        [s, f, o, c, Token::Word(kw), a] if eq(kw, b"as") => ([*s, *f, *o, *c], Some(*a)),
        _ => return None,
    };
    let [Token::Word(s), Token::Word(f), Token::Punct(b"("), Token::Punct(b")")] = head else {
        return None;
    };
    if !eq(s, b"select") {
        return None;
    }
    let function = if eq(f, b"database") || eq(f, b"schema") {
        SessionFn::Database
    } else if eq(f, b"connection_id") {
        SessionFn::ConnectionId
    } else if eq(f, b"current_user")
        || eq(f, b"user")
        || eq(f, b"session_user")
        || eq(f, b"system_user")
    {
        SessionFn::CurrentUser
    } else {
        return None;
    };
    let column = match alias {
        None => format!("{}()", String::from_utf8_lossy(f)),
        Some(Token::Word(a) | Token::Quoted(a)) => String::from_utf8_lossy(a).into_owned(),
        Some(Token::Str(a)) => {
            String::from_utf8_lossy(&a[1..a.len().saturating_sub(1).max(1)]).into_owned()
        }
        Some(_) => return None,
    };
    Some((function, column))
}

/// A cheap byte test: `sql` may call a user function (`CURRENT_USER()`, `USER()` …);
/// most statements do not, and need no more work.
pub fn mentions_user(sql: &[u8]) -> bool {
    sql.windows(4).any(|w| w.eq_ignore_ascii_case(b"user"))
}

/// The statement with every `CONNECTION_ID()` call replaced by `id`, shardgate's own
/// connection id (the backend's would name a pooled connection). `None`: no call.
pub fn replace_connection_id(sql: &[u8], id: u32) -> Option<Vec<u8>> {
    if !contains_word(sql, b"connection", b"id") {
        return None;
    }
    let base = sql.as_ptr() as usize;
    let tokens: Vec<Token<'_>> = Lexer::new(sql).collect();
    let mut out = Vec::with_capacity(sql.len());
    let mut pos = 0;
    let mut found = false;
    for w in tokens.windows(3) {
        if let [Token::Word(f), Token::Punct(b"("), Token::Punct(close @ b")")] = w {
            if eq(f, b"connection_id") {
                let start = f.as_ptr() as usize - base;
                let end = close.as_ptr() as usize - base + 1;
                out.extend_from_slice(&sql[pos..start]);
                out.extend_from_slice(id.to_string().as_bytes());
                pos = end;
                found = true;
            }
        }
    }
    if !found {
        return None;
    }
    out.extend_from_slice(&sql[pos..]);
    Some(out)
}

/// The SELECT with every `CURRENT_USER()`/`CURRENT_USER` replaced by `current`, and
/// every `USER()`, `SESSION_USER()`, `SYSTEM_USER()` by `user` (quoted string
/// literals): each would name the backend account every connection logs in as.
/// `None`: not a SELECT, or no such call.
pub fn replace_user_functions(sql: &[u8], current: &str, user: &str) -> Option<Vec<u8>> {
    if !mentions_user(sql) {
        return None;
    }
    let base = sql.as_ptr() as usize;
    let tokens: Vec<Token<'_>> = Lexer::new(sql)
        .filter(|t| !matches!(t, Token::Comment(_)))
        .collect();
    if !matches!(tokens.first(), Some(Token::Word(w)) if eq(w, b"select")) {
        return None;
    }
    let quote = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"));
    let mut out = Vec::with_capacity(sql.len() + 16);
    let mut pos = 0;
    let mut found = false;
    for (i, t) in tokens.iter().enumerate() {
        let Token::Word(f) = t else { continue };
        let after_dot = i > 0 && tokens[i - 1] == Token::Punct(b".");
        let call = matches!(
            (tokens.get(i + 1), tokens.get(i + 2)),
            (Some(Token::Punct(b"(")), Some(Token::Punct(b")")))
        );
        let value = if eq(f, b"current_user") && !after_dot {
            current
        } else if call && (eq(f, b"user") || eq(f, b"session_user") || eq(f, b"system_user")) {
            user
        } else {
            continue;
        };
        let start = f.as_ptr() as usize - base;
        let end = match (call, tokens.get(i + 2)) {
            (true, Some(Token::Punct(close))) => close.as_ptr() as usize - base + 1,
            _ => start + f.len(),
        };
        out.extend_from_slice(&sql[pos..start]);
        out.extend_from_slice(quote(value).as_bytes());
        pos = end;
        found = true;
    }
    if !found {
        return None;
    }
    out.extend_from_slice(&sql[pos..]);
    Some(out)
}

/// What `SHOW SHARDGATE …` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardgateShow {
    /// `SESSIONS`: shardgate's own process list.
    Sessions,
    /// `NODES`: every backend server, its role, health, lag and pool.
    Nodes,
    /// `XA`: prepared XA branches of this instance, and what recovery does with them.
    Xa,
}

/// `SHOW SHARDGATE SESSIONS`, `SHOW SHARDGATE NODES` or `SHOW SHARDGATE XA`.
pub fn shardgate_show_in(tokens: &[Token<'_>]) -> Option<ShardgateShow> {
    match tokens {
        [Token::Word(a), Token::Word(b), Token::Word(c)]
            if eq(a, b"show") && eq(b, b"shardgate") =>
        {
            if eq(c, b"sessions") {
                Some(ShardgateShow::Sessions)
            } else if eq(c, b"nodes") {
                Some(ShardgateShow::Nodes)
            } else if eq(c, b"xa") {
                Some(ShardgateShow::Xa)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// A statement shardgate answers in its own terms only when it comes alone as text
/// (KILL, SHOW PROCESSLIST, SHOW GRANTS, SHOW DATABASES): inside a batch, a routine,
/// dynamic SQL or a binary PREPARE it would reach the backend, which answers about
/// every client and the backend account.
pub fn answered_alone(sql: &[u8]) -> bool {
    let words: Vec<&[u8]> = Lexer::new(sql).filter_map(|t| t.word()).take(3).collect();
    let show = |w: &[u8]| {
        words.first().is_some_and(|f| eq(f, b"show")) && words[1..].iter().any(|x| eq(x, w))
    };
    words.first().is_some_and(|w| eq(w, b"kill"))
        || own_show(sql).is_some()
        || show(b"grants")
        || show(b"processlist")
        || show(b"databases")
        || show(b"schemas")
}

/// What a backend-wide SHOW asks that shardgate answers in its own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnShow {
    /// `SHOW GRANTS [FOR CURRENT_USER[()]]`; `false` for another account.
    Grants(bool),
    /// `SHOW [FULL] PROCESSLIST`: whether FULL (whole statements).
    Processlist(bool),
}

pub fn own_show(sql: &[u8]) -> Option<OwnShow> {
    own_show_in(&significant(sql))
}

pub fn own_show_in(tokens: &[Token<'_>]) -> Option<OwnShow> {
    let word = |i: usize, w: &[u8]| matches!(tokens.get(i), Some(Token::Word(x)) if eq(x, w));
    if !word(0, b"show") {
        return None;
    }
    if word(1, b"grants") {
        let own = tokens.len() == 2
            || (word(2, b"for")
                && word(3, b"current_user")
                && matches!(&tokens[4..], [] | [Token::Punct(b"("), Token::Punct(b")")]));
        return Some(OwnShow::Grants(own));
    }
    if word(1, b"processlist") && tokens.len() == 2 {
        return Some(OwnShow::Processlist(false));
    }
    if word(1, b"full") && word(2, b"processlist") && tokens.len() == 3 {
        return Some(OwnShow::Processlist(true));
    }
    None
}

/// `KILL [HARD|SOFT] [CONNECTION|QUERY] id`, of a statement's significant tokens:
/// (only the query?, id); the id is `None` for `CONNECTION_ID()`, the session's own.
pub fn kill_in(tokens: &[Token<'_>]) -> Option<(bool, Option<u64>)> {
    let (first, mut rest) = tokens.split_first()?;
    if !matches!(first, Token::Word(w) if eq(w, b"kill")) {
        return None;
    }
    if let [head @ .., Token::Word(f), Token::Punct(b"("), Token::Punct(b")")] = rest {
        if !eq(f, b"connection_id") {
            return None;
        }
        rest = head;
        if rest
            .iter()
            .all(|t| matches!(t, Token::Word(w) if eq(w, b"hard") || eq(w, b"soft") || eq(w, b"connection") || eq(w, b"query")))
        {
            let query = rest.iter().any(|t| matches!(t, Token::Word(w) if eq(w, b"query")));
            return Some((query, None));
        }
        return None;
    }
    let mut query = false;
    let mut id = None;
    for t in rest {
        match t {
            Token::Word(w) if eq(w, b"hard") || eq(w, b"soft") || eq(w, b"connection") => {}
            Token::Word(w) if eq(w, b"query") => query = true,
            Token::Number(n) if id.is_none() => id = std::str::from_utf8(n).ok()?.parse().ok(),
            _ => return None,
        }
    }
    Some((query, Some(id?)))
}

/// The text inside a string literal's quotes.
fn literal<'a>(t: &Token<'a>) -> Option<&'a str> {
    match t {
        Token::Str(s) if s.len() >= 2 => std::str::from_utf8(&s[1..s.len() - 1]).ok(),
        _ => None,
    }
}

/// An information_schema query rewritten for one node, and how to map its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogQuery {
    pub schema: String,
    pub sql: String,
    /// Values to replace in the answer: physical → logical.
    pub renames: Vec<(String, String)>,
    /// Rows holding one of these values are dropped: the other physical tables of a
    /// sharded table, which the client knows as one.
    pub hidden: Vec<String>,
}

/// `None` unless `sql` reads information_schema about a logical schema: one named in
/// a string literal, else the session's `current`.
pub fn information_schema(sql: &[u8], rt: &Runtime, current: Option<&str>) -> Option<CatalogQuery> {
    let text = std::str::from_utf8(sql).ok()?;
    let tokens: Vec<Token<'_>> = Lexer::new(sql).collect();
    let mentions = tokens
        .iter()
        .any(|t| matches!(t, Token::Word(w) | Token::Quoted(w) if eq(w, b"information_schema")));
    if !mentions {
        return None;
    }
    let named = tokens
        .iter()
        .filter_map(literal)
        .find_map(|s| rt.schemas.get(s));
    let schema: &LogicalSchema = match named {
        Some(s) => s,
        None => rt.schemas.get(current?)?,
    };
    let node = schema.node;
    let physical_db = schema.database_on(&rt.nodes, node).to_string();
    let mut renames = Vec::new();
    let mut hidden = Vec::new();
    if physical_db != schema.name {
        renames.push((physical_db.clone(), schema.name.clone()));
    }
    for (name, table) in &schema.tables {
        if let TableKind::Sharded(t) = &table.kind {
            let mut here = t.shards.iter().filter(|l| l.node == node).map(|l| &l.table);
            if let Some(first) = here.next() {
                if first != name {
                    renames.push((first.clone(), name.clone()));
                }
                hidden.extend(here.filter(|p| *p != name).cloned());
            }
        }
    }
    // String literals naming logical things name their physical twins.
    let base = text.as_ptr() as usize;
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for t in &tokens {
        let (Token::Str(s), Some(value)) = (t, literal(t)) else {
            continue;
        };
        let Some((physical, _)) = renames.iter().find(|(_, l)| l == value) else {
            continue;
        };
        let start = s.as_ptr() as usize - base;
        out.push_str(&text[pos..start]);
        out.push('\'');
        out.push_str(&physical.replace('\'', "''"));
        out.push('\'');
        pos = start + s.len();
    }
    out.push_str(&text[pos..]);
    Some(CatalogQuery {
        schema: schema.name.clone(),
        sql: out,
        renames,
        hidden,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session_function(sql: &[u8]) -> Option<(SessionFn, String)> {
        session_function_in(&significant(sql))
    }

    fn kill(sql: &[u8]) -> Option<(bool, Option<u64>)> {
        kill_in(&significant(sql))
    }

    #[test]
    fn recognises_session_functions() {
        let f = |s: &str| session_function(s.as_bytes());
        assert_eq!(
            f("SELECT DATABASE()"),
            Some((SessionFn::Database, "DATABASE()".into()))
        );
        assert_eq!(
            f("select schema() ;"),
            Some((SessionFn::Database, "schema()".into()))
        );
        assert_eq!(
            f("SELECT DATABASE() AS db"),
            Some((SessionFn::Database, "db".into()))
        );
        assert_eq!(
            f("SELECT CONNECTION_ID()"),
            Some((SessionFn::ConnectionId, "CONNECTION_ID()".into()))
        );
        assert_eq!(f("SELECT DATABASE(), 1"), None);
        assert_eq!(f("SELECT DATABASE() FROM t"), None);
        assert_eq!(
            f("SELECT USER()"),
            Some((SessionFn::CurrentUser, "USER()".into()))
        );
        assert_eq!(f("SELECT NOW()"), None);
    }

    #[test]
    fn replaces_user_functions_in_selects() {
        let r = |s: &str| {
            replace_user_functions(s.as_bytes(), "app@%", "app@10.0.0.1")
                .map(|v| String::from_utf8(v).unwrap())
        };
        assert_eq!(
            r("SELECT CURRENT_USER(), USER() AS u, 1").as_deref(),
            Some("SELECT 'app@%', 'app@10.0.0.1' AS u, 1")
        );
        assert_eq!(r("select current_user").as_deref(), Some("select 'app@%'"));
        assert_eq!(r("SELECT t.user FROM t").as_deref(), None);
        assert_eq!(r("CREATE DEFINER = CURRENT_USER VIEW v AS SELECT 1"), None);
    }

    #[test]
    fn replaces_connection_id_calls() {
        let r = |s: &str| {
            replace_connection_id(s.as_bytes(), 42).map(|v| String::from_utf8(v).unwrap())
        };
        assert_eq!(
            r("SELECT @a, CONNECTION_ID(), connection_id ( ) FROM t WHERE x = 'CONNECTION_ID()'")
                .as_deref(),
            Some("SELECT @a, 42, 42 FROM t WHERE x = 'CONNECTION_ID()'")
        );
        assert_eq!(r("SELECT connection_id FROM t"), None);
        assert_eq!(r("SELECT 1"), None);
    }

    #[test]
    fn recognises_kill() {
        assert_eq!(kill(b"KILL 12"), Some((false, Some(12))));
        assert_eq!(kill(b"kill query 7;"), Some((true, Some(7))));
        assert_eq!(kill(b"KILL HARD CONNECTION 3"), Some((false, Some(3))));
        assert_eq!(kill(b"KILL QUERY CONNECTION_ID()"), Some((true, None)));
        assert_eq!(kill(b"KILL CONNECTION_ID() + 1"), None);
        assert_eq!(kill(b"KILL QUERY ID 3"), None);
        assert_eq!(kill(b"KILL USER bob"), None);
        assert_eq!(kill(b"SELECT 1"), None);
    }
}
