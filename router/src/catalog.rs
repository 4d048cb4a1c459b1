//! Statements about the catalog that must show logical names: `SELECT DATABASE()` and
//! information_schema queries about a logical schema's tables.

use rules::runtime::LogicalSchema;
use rules::{Runtime, TableKind};

use crate::lexer::{Lexer, Token};

fn eq(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// `SELECT DATABASE()` / `SELECT SCHEMA()`, with an optional alias: the column name
/// to answer with.
pub fn select_database(sql: &[u8]) -> Option<String> {
    let tokens: Vec<Token<'_>> = Lexer::new(sql)
        .filter(|t| !matches!(t, Token::Comment(_) | Token::Punct(b";")))
        .collect();
    let (head, alias) = match tokens.as_slice() {
        [s, f, o, c] => ([*s, *f, *o, *c], None),
        [s, f, o, c, a] => ([*s, *f, *o, *c], Some(*a)),
        [s, f, o, c, Token::Word(kw), a] if eq(kw, b"as") => ([*s, *f, *o, *c], Some(*a)),
        _ => return None,
    };
    let [Token::Word(s), Token::Word(f), Token::Punct(b"("), Token::Punct(b")")] = head else {
        return None;
    };
    if !eq(s, b"select") || !(eq(f, b"database") || eq(f, b"schema")) {
        return None;
    }
    match alias {
        None => Some(format!("{}()", String::from_utf8_lossy(f))),
        Some(Token::Word(a) | Token::Quoted(a)) => Some(String::from_utf8_lossy(a).into_owned()),
        Some(Token::Str(a)) => {
            Some(String::from_utf8_lossy(&a[1..a.len().saturating_sub(1).max(1)]).into_owned())
        }
        Some(_) => None,
    }
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
    let physical_db = rt.nodes[node]
        .database
        .clone()
        .unwrap_or_else(|| schema.name.clone());
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

    #[test]
    fn recognises_select_database() {
        assert_eq!(
            select_database(b"SELECT DATABASE()").as_deref(),
            Some("DATABASE()")
        );
        assert_eq!(
            select_database(b"select schema() ;").as_deref(),
            Some("schema()")
        );
        assert_eq!(
            select_database(b"SELECT DATABASE() AS db").as_deref(),
            Some("db")
        );
        assert_eq!(select_database(b"SELECT DATABASE(), 1"), None);
        assert_eq!(select_database(b"SELECT DATABASE() FROM t"), None);
    }
}
