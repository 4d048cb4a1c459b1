//! Which logical schemas a statement names with a qualifier (`shop.orders`), so that
//! each table is routed by the schema it names, wherever the session stands. Lexical
//! and cheap: a statement without a `.` between identifiers costs one byte scan.

use rules::runtime::LogicalSchema;
use rules::Runtime;

use crate::lexer::Token;
use crate::reading::Reading;

/// The logical schemas written as `schema.` before an identifier, each once, in the
/// order they first appear.
pub fn qualified_schemas<'r>(
    sql: &[u8],
    rt: &'r Runtime,
    reading: Reading,
) -> Vec<&'r LogicalSchema> {
    if rt.schemas.is_empty() {
        return Vec::new();
    }
    qualifiers(sql, reading)
        .iter()
        .filter_map(|q| rt.schemas.get(q.as_str()))
        .collect()
}

/// Every identifier written as `a.` before another identifier (a schema, a table, or
/// an alias: the lexer cannot tell), each once.
pub fn qualifiers(sql: &[u8], reading: Reading) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for (name, _) in qualifier_uses(sql, reading) {
        if !found.contains(&name) {
            found.push(name);
        }
    }
    found
}

/// Each `a.b` of a statement read as `reading` says: `a`, and whether it can only be a
/// database (in relation position, after FROM, JOIN, TABLE, INTO, UPDATE, CALL ..., or
/// as `a.f(…)`), not a table or alias qualifying a column.
pub fn qualifier_uses(sql: &[u8], reading: Reading) -> Vec<(String, bool)> {
    let mut found: Vec<(String, bool)> = Vec::new();
    if !sql.contains(&b'.') {
        return found;
    }
    let tokens: Vec<Token<'_>> = reading
        .lexer(sql)
        .filter(|t| !matches!(t, Token::Comment(_)))
        .collect();
    const RELATION: [&[u8]; 10] = [
        b"from",
        b"join",
        b"table",
        b"into",
        b"update",
        b"call",
        b"describe",
        b"desc",
        b"straight_join",
        b"exists",
    ];
    for i in 0..tokens.len() {
        let w = &tokens[i..];
        let name = match w {
            [Token::Word(a) | Token::Quoted(a), Token::Punct(b"."), Token::Word(_) | Token::Quoted(_) | Token::Str(_) | Token::Number(_), ..] => {
                String::from_utf8_lossy(a).replace("``", "`")
            }
            // `"db"."t"`: a string to the default reading, an identifier under ANSI_QUOTES.
            [Token::Str(a), Token::Punct(b"."), Token::Word(_) | Token::Quoted(_) | Token::Str(_), ..]
                if a.first() == Some(&b'"') =>
            {
                String::from_utf8_lossy(&a[1..a.len().saturating_sub(1).max(1)]).into_owned()
            }
            _ => continue,
        };
        let after_relation = i > 0
            && matches!(tokens[i - 1], Token::Word(p) if RELATION.iter().any(|r| p.eq_ignore_ascii_case(r)));
        let call = tokens.get(i + 3) == Some(&Token::Punct(b"("));
        let strict = after_relation || call;
        if !found.iter().any(|(n, s)| *n == name && *s == strict) {
            found.push((name, strict));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifiers_that_name_logical_schemas_are_found() {
        let cfg: rules::ClusterConfig = toml::from_str(
            r#"
            [nodes.dn1]
            primary = "127.0.0.1:3306"
            user = "u"
            [schemas.shop]
            node = "dn1"
            [schemas.crm]
            node = "dn1"
            "#,
        )
        .unwrap();
        let rt = Runtime::build(&cfg).unwrap();
        let names = |sql: &str| -> Vec<String> {
            qualified_schemas(sql.as_bytes(), &rt, crate::reading::Reading::DEFAULT)
                .iter()
                .map(|s| s.name.clone())
                .collect()
        };
        assert_eq!(names("SELECT * FROM shop.orders"), ["shop"]);
        assert_eq!(
            names("SELECT * FROM `crm`.c JOIN shop.o ON c.id = o.id WHERE shop.o.x = 1"),
            ["crm", "shop"]
        );
        assert!(names("SELECT o.id, 1.5 FROM orders o").is_empty());
        assert!(names("SELECT 'shop.orders'").is_empty());
        assert!(names("SELECT * FROM other.t").is_empty());
        assert_eq!(
            qualifiers(b"SELECT * FROM \"mysql\".\"user\"", Reading::DEFAULT),
            ["mysql"]
        );
        assert_eq!(
            qualifiers(b"CALL db.p(); SELECT o.id FROM t o", Reading::DEFAULT),
            ["db", "o"]
        );
        let uses = |s: &str| qualifier_uses(s.as_bytes(), Reading::DEFAULT);
        assert_eq!(uses("TABLE mysql.user"), [("mysql".to_string(), true)]);
        assert_eq!(uses("SELECT sys.f(1) FROM t"), [("sys".to_string(), true)]);
        assert_eq!(uses("SELECT o.id FROM t o"), [("o".to_string(), false)]);
        assert_eq!(uses("SELECT * FROM 1db.t"), [("1db".to_string(), true)]);
        assert_eq!(uses("SELECT * FROM db.1t"), [("db".to_string(), true)]);
        assert!(uses("SELECT 1.5, 2e3, 0x1f FROM t").is_empty());
    }
}
