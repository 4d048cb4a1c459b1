//! The SHOW / DESCRIBE statements whose answers name tables, so that a schema with
//! configured tables shows logical names, never physical ones.

use crate::lexer::{Lexer, Token};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Show {
    /// `SHOW [FULL] TABLES [FROM db] [LIKE 'p']`
    Tables {
        full: bool,
        pattern: Option<String>,
        from: Option<String>,
    },
    /// `SHOW [FULL] COLUMNS|FIELDS FROM t`, `DESCRIBE t`: the answer names no table.
    Columns(TableAt),
    /// `SHOW CREATE TABLE t`
    CreateTable(TableAt),
    /// `SHOW INDEX|INDEXES|KEYS FROM t`
    Index(TableAt),
}

/// A table name and the byte range it takes in the statement (quotes included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableAt {
    pub name: String,
    pub start: usize,
    pub end: usize,
}

fn eq(w: &[u8], kw: &str) -> bool {
    w.eq_ignore_ascii_case(kw.as_bytes())
}

pub fn parse(sql: &[u8]) -> Option<Show> {
    let base = sql.as_ptr() as usize;
    let tokens: Vec<Token<'_>> = Lexer::new(sql)
        .filter(|t| !matches!(t, Token::Comment(_) | Token::Punct(b";")))
        .collect();
    let word = |i: usize| match tokens.get(i) {
        Some(Token::Word(w)) => Some(*w),
        _ => None,
    };
    let table = |i: usize| -> Option<TableAt> {
        let (name, start, end) = match tokens.get(i)? {
            Token::Word(w) => {
                let s = w.as_ptr() as usize - base;
                (*w, s, s + w.len())
            }
            Token::Quoted(w) => {
                let s = w.as_ptr() as usize - base;
                (*w, s - 1, s + w.len() + 1)
            }
            _ => return None,
        };
        Some(TableAt {
            name: String::from_utf8_lossy(name).replace("``", "`"),
            start,
            end,
        })
    };
    let first = word(0)?;
    if eq(first, "describe") || eq(first, "desc") || eq(first, "explain") {
        // `DESCRIBE t [column]`; `EXPLAIN SELECT ...` is something else.
        let t = table(1)?;
        if tokens.len() > 3
            || word(1).is_some_and(|w| {
                [
                    "select",
                    "insert",
                    "update",
                    "delete",
                    "replace",
                    "with",
                    "format",
                    "extended",
                    "partitions",
                    "analyze",
                ]
                .iter()
                .any(|k| eq(w, k))
            })
        {
            return None;
        }
        return Some(Show::Columns(t));
    }
    if !eq(first, "show") {
        return None;
    }
    let mut i = 1;
    let full = word(i).is_some_and(|w| eq(w, "full"));
    if full {
        i += 1;
    }
    let what = word(i)?;
    if eq(what, "tables") {
        // `FROM db` / `IN db` names the schema whose tables are listed.
        let (from, rest) = match (word(i + 1), tokens.get(i + 2)) {
            (Some(f), Some(Token::Word(d) | Token::Quoted(d))) if eq(f, "from") || eq(f, "in") => {
                (Some(String::from_utf8_lossy(d).replace("``", "`")), i + 3)
            }
            _ => (None, i + 1),
        };
        return match tokens.len() - rest {
            0 => Some(Show::Tables {
                full,
                pattern: None,
                from,
            }),
            2 if word(rest).is_some_and(|w| eq(w, "like")) => match tokens.get(rest + 1) {
                Some(Token::Str(p)) => Some(Show::Tables {
                    full,
                    pattern: Some(
                        String::from_utf8_lossy(&p[1..p.len().saturating_sub(1).max(1)])
                            .into_owned(),
                    ),
                    from,
                }),
                _ => None,
            },
            _ => None,
        };
    }
    let from = |j: usize| word(j).is_some_and(|w| eq(w, "from") || eq(w, "in"));
    let qualified_elsewhere =
        |j: usize| from(j) || matches!(tokens.get(j), Some(Token::Punct(b".")));
    if (eq(what, "columns") || eq(what, "fields")) && from(i + 1) {
        let t = table(i + 2)?;
        if qualified_elsewhere(i + 3) {
            return None;
        }
        return Some(Show::Columns(t));
    }
    if !full && eq(what, "create") && word(i + 1).is_some_and(|w| eq(w, "table")) {
        let t = table(i + 2)?;
        if tokens.len() > i + 3 {
            return None;
        }
        return Some(Show::CreateTable(t));
    }
    if (eq(what, "index") || eq(what, "indexes") || eq(what, "keys")) && from(i + 1) {
        let t = table(i + 2)?;
        if qualified_elsewhere(i + 3) {
            return None;
        }
        return Some(Show::Index(t));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(name: &str, start: usize, end: usize) -> TableAt {
        TableAt {
            name: name.into(),
            start,
            end,
        }
    }

    #[test]
    fn recognises_the_table_naming_forms() {
        assert_eq!(
            parse(b"SHOW FULL TABLES FROM `shop` LIKE 'o%'"),
            Some(Show::Tables {
                full: true,
                pattern: Some("o%".into()),
                from: Some("shop".into())
            })
        );
        assert_eq!(
            parse(b"SHOW TABLES"),
            Some(Show::Tables {
                full: false,
                pattern: None,
                from: None
            })
        );
        assert_eq!(
            parse(b"show full tables like 'o%';"),
            Some(Show::Tables {
                full: true,
                pattern: Some("o%".into()),
                from: None
            })
        );
        assert_eq!(
            parse(b"SHOW TABLES IN other"),
            Some(Show::Tables {
                full: false,
                pattern: None,
                from: Some("other".into())
            })
        );
        assert_eq!(parse(b"SHOW TABLES FROM other WHERE 1"), None);
        assert_eq!(
            parse(b"SHOW COLUMNS FROM orders"),
            Some(Show::Columns(at("orders", 18, 24)))
        );
        assert_eq!(
            parse(b"DESC `orders`"),
            Some(Show::Columns(at("orders", 5, 13)))
        );
        assert_eq!(
            parse(b"describe orders id"),
            Some(Show::Columns(at("orders", 9, 15)))
        );
        assert_eq!(parse(b"EXPLAIN SELECT 1"), None);
        assert_eq!(
            parse(b"SHOW CREATE TABLE orders"),
            Some(Show::CreateTable(at("orders", 18, 24)))
        );
        assert_eq!(
            parse(b"SHOW INDEX FROM orders"),
            Some(Show::Index(at("orders", 16, 22)))
        );
        assert_eq!(parse(b"SHOW COLUMNS FROM orders FROM shop"), None);
        assert_eq!(parse(b"SHOW DATABASES"), None);
    }
}
