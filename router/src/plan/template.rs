//! Statements that differ only in their literal values share one plan.
//!
//! In the text protocol every point query carries a new literal, so a cache keyed by
//! the exact text never hits and every statement would be parsed. Here the literals
//! are lifted out lexically (`WHERE id = 42` → `WHERE id = ?`), the template is planned
//! once like a prepared statement, and each statement is routed by its literals and
//! given its physical text by putting the client's own literal bytes back.
//!
//! Only statements that land on a single target take this path; anything else (a
//! merge, a multi-shard write, a template the parser refuses) is planned in full.

use rules::Value;

use super::{Merge, Plan, Prepared, Target};
use crate::lexer::Token;
use crate::reading::Reading;

/// A statement with its literals lifted out.
pub struct Lifted<'a> {
    /// The text with each lifted literal replaced by `?`: the cache key.
    pub key: Vec<u8>,
    /// The literals' values, in order, for routing.
    pub values: Vec<Value>,
    /// The literals as the client wrote them, in order.
    pub texts: Vec<&'a [u8]>,
}

/// Words after which a literal is a value the template may stand in for.
fn value_position(prev: Option<&Token<'_>>) -> bool {
    match prev {
        Some(Token::Punct(p)) => matches!(
            *p,
            b"=" | b"<" | b">" | b"(" | b"," | b"<=" | b">=" | b"<>" | b"!="
        ),
        Some(Token::Word(w)) => ["IN", "BETWEEN", "AND", "VALUES", "LIMIT", "OFFSET", "OR"]
            .iter()
            .any(|k| w.eq_ignore_ascii_case(k.as_bytes())),
        _ => false,
    }
}

/// A single-quoted literal's text.
fn unquote(s: &[u8], backslash_escapes: bool) -> Option<String> {
    if s.first() != Some(&b'\'') {
        return None;
    }
    String::from_utf8(crate::lexer::string_literal(s, backslash_escapes)?).ok()
}

/// Lifts the literals out of `sql`. `None` when there is none to lift (or the text
/// already holds a `?`, which the template would confuse with its own).
pub fn lift(sql: &[u8], reading: Reading) -> Option<Lifted<'_>> {
    let base = sql.as_ptr() as usize;
    let mut key = Vec::with_capacity(sql.len());
    let mut values = Vec::new();
    let mut texts = Vec::new();
    let mut pos = 0;
    let mut prev: Option<Token<'_>> = None;
    for t in reading.lexer(sql) {
        if t == Token::Punct(b"?") {
            return None;
        }
        let lifted = match t {
            Token::Number(n) if value_position(prev.as_ref()) => std::str::from_utf8(n)
                .ok()
                .and_then(Value::literal)
                .map(|v| (n, v)),
            Token::Str(s) if s.first() == Some(&b'\'') && value_position(prev.as_ref()) => {
                unquote(s, reading.backslash_escapes).map(|v| (s, Value::text(v)))
            }
            _ => None,
        };
        if let Some((raw, value)) = lifted {
            let start = raw.as_ptr() as usize - base;
            key.extend_from_slice(&sql[pos..start]);
            key.push(b'?');
            pos = start + raw.len();
            values.push(value);
            texts.push(raw);
        }
        if !matches!(t, Token::Comment(_)) {
            prev = Some(t);
        }
    }
    if values.is_empty() {
        return None;
    }
    key.extend_from_slice(&sql[pos..]);
    Some(Lifted { key, values, texts })
}

/// The plan for one statement of a template, when it has a single target.
pub fn instantiate(template: &Prepared, lifted: &Lifted<'_>, reading: Reading) -> Option<Plan> {
    if template.plan.fill_global_id.is_some() || template.params != lifted.values.len() {
        return None;
    }
    let targets = template.targets(&lifted.values).ok()?;
    let [target] = targets.as_slice() else {
        return None;
    };
    // The physical text has a `?` where each literal was: put the client's bytes back.
    let text = target.sql.as_bytes();
    let base = text.as_ptr() as usize;
    let mut sql = Vec::with_capacity(text.len() + 32);
    let mut pos = 0;
    let mut next = lifted.texts.iter();
    for t in reading.lexer(text) {
        if let Token::Punct(q @ b"?") = t {
            let at = q.as_ptr() as usize - base;
            sql.extend_from_slice(&text[pos..at]);
            sql.extend_from_slice(next.next()?);
            pos = at + 1;
        }
    }
    if next.next().is_some() {
        return None;
    }
    sql.extend_from_slice(&text[pos..]);
    Some(Plan {
        targets: vec![Target {
            node: target.node,
            shard: target.shard,
            sql: String::from_utf8(sql).ok()?,
        }],
        write: template.plan.write,
        scatter: false,
        // A template with one target keeps its merge (`Any` for broadcast reads).
        merge: if template.plan.targets.len() == 1 {
            template.plan.merge.clone()
        } else {
            Merge::Single
        },
        fill_global_id: None,
        gather: None,
        load: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifts_value_literals_only() {
        let l = lift(
            b"SELECT c, 1 FROM t WHERE id = 42 AND s IN ('a''b', 'x\\'y') LIMIT 5",
            crate::reading::Reading::DEFAULT,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(l.key).unwrap(),
            "SELECT c, ? FROM t WHERE id = ? AND s IN (?, ?) LIMIT ?"
        );
        assert_eq!(
            l.values,
            [
                Value::Int(1),
                Value::Int(42),
                Value::text("a'b"),
                Value::text("x'y"),
                Value::Int(5)
            ]
        );
        // Typed and introduced literals, double quotes, and hex stay in the key.
        let l = lift(b"SELECT * FROM t WHERE d = DATE '2024-01-01' AND c = _utf8mb4'x' AND q = \"y\" AND h = 0x1F AND id = 7", crate::reading::Reading::DEFAULT).unwrap();
        assert_eq!(
            String::from_utf8(l.key).unwrap(),
            "SELECT * FROM t WHERE d = DATE '2024-01-01' AND c = _utf8mb4'x' AND q = \"y\" AND h = 0x1F AND id = ?"
        );
        assert!(lift(b"SELECT * FROM t", crate::reading::Reading::DEFAULT).is_none());
    }
}
