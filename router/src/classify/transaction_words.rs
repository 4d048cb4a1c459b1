//! What transaction statements say past their verb: `AND CHAIN`, `RELEASE`, `READ
//! ONLY`, `WITH CONSISTENT SNAPSHOT`, and a `SET` of `completion_type`.

use super::{eq, Lexer, Token};

/// `START TRANSACTION WITH CONSISTENT SNAPSHOT`: the snapshot is taken at START.
pub fn takes_snapshot(sql: &[u8]) -> bool {
    has_word_pair(sql, b"consistent", b"snapshot")
}

/// Words `a` and `b` next to each other in `sql` (comments and literals aside).
fn has_word_pair(sql: &[u8], a: &[u8], b: &[u8]) -> bool {
    let words: Vec<&[u8]> = Lexer::new(sql).filter_map(|t| t.word()).collect();
    words.windows(2).any(|w| eq(w[0], a) && eq(w[1], b))
}

/// What follows COMMIT or ROLLBACK: `[WORK] [AND [NO] CHAIN] [[NO] RELEASE]`, as
/// (chains, releases); `None` for anything else (the server's syntax error), and
/// for chaining and releasing at once, which the server refuses too.
pub(super) fn ending_options(words: &[&[u8]]) -> Option<(bool, bool)> {
    let mut rest = words;
    let mut take = |w: &[u8]| match rest.first() {
        Some(x) if eq(x, w) => {
            rest = &rest[1..];
            true
        }
        _ => false,
    };
    take(b"work");
    let mut chain = false;
    if take(b"and") {
        chain = !take(b"no");
        if !take(b"chain") {
            return None;
        }
    }
    let no_release = take(b"no");
    let release = take(b"release");
    if (no_release && !release) || !rest.is_empty() || (chain && release && !no_release) {
        return None;
    }
    Some((chain, release && !no_release))
}

fn ending_of(sql: &[u8]) -> Option<(bool, bool)> {
    let words: Vec<&[u8]> = Lexer::new(sql).filter_map(|t| t.word()).collect();
    match words.first() {
        Some(w) if eq(w, b"commit") || eq(w, b"rollback") => ending_options(&words[1..]),
        _ => None,
    }
}

/// `COMMIT RELEASE` / `ROLLBACK RELEASE` (not `NO RELEASE`): the session ends after it.
pub fn releases(sql: &[u8]) -> bool {
    ending_of(sql).is_some_and(|(_, release)| release)
}

/// A `SET` of `completion_type` to a value other than `NO_CHAIN` (0): COMMIT and
/// ROLLBACK would then chain or release on their own.
pub fn sets_completion_type(sql: &[u8]) -> bool {
    let tokens: Vec<Token<'_>> = Lexer::new(sql)
        .filter(|t| !matches!(t, Token::Comment(_)))
        .collect();
    let named = |t: &Token<'_>| match t {
        Token::Word(w) => eq(w, b"completion_type"),
        Token::SysVar(v) => v
            .rsplit(|b| *b == b'.')
            .next()
            .is_some_and(|n| eq(n, b"completion_type")),
        _ => false,
    };
    tokens.iter().enumerate().any(|(i, t)| {
        if !named(t) {
            return false;
        }
        let value = tokens[i + 1..]
            .iter()
            .find(|v| !matches!(v, Token::Punct(p) if *p == b"=" || *p == b":="));
        let plain = match value {
            Some(Token::Word(w) | Token::Quoted(w)) => eq(w, b"no_chain") || eq(w, b"default"),
            Some(Token::Str(s)) => {
                let inner = s.get(1..s.len().saturating_sub(1)).unwrap_or(&[]);
                eq(inner, b"no_chain") || inner == b"0"
            }
            Some(Token::Number(n)) => *n == b"0",
            _ => true,
        };
        !plain
    })
}

/// `COMMIT AND CHAIN` / `ROLLBACK AND CHAIN`: a new transaction begins at once.
pub fn chains(sql: &[u8]) -> bool {
    ending_of(sql).is_some_and(|(chain, _)| chain)
}

/// `START TRANSACTION READ ONLY`: a transaction that cannot write anywhere.
pub fn starts_read_only(sql: &[u8]) -> bool {
    has_word_pair(sql, b"read", b"only")
}
