//! Byte ranges of a single SELECT's clauses, found lexically.
//!
//! sqlparser's spans cover identifiers reliably but not whole expressions or clauses,
//! and the merge rewrite must splice whole clauses (ORDER BY, LIMIT, HAVING) and copy
//! expressions as the client wrote them. Only statements without subqueries come here,
//! so every clause keyword at parenthesis depth 0 belongs to the one query.

use crate::lexer::Token;
use crate::reading::Reading;

/// A byte range of the statement text, end exclusive.
pub type Range = (usize, usize);

#[derive(Debug, Default)]
pub struct Clauses {
    /// Each select item, split at top-level commas.
    pub items: Vec<Range>,
    /// Where FROM starts: hidden columns are inserted here.
    pub from: usize,
    /// Whole clause, keyword included, and its items.
    pub group: Option<(Range, Vec<Range>)>,
    pub having: Option<Range>,
    /// Items with any trailing ASC/DESC removed.
    pub order: Option<(Range, Vec<Range>)>,
    pub limit: Option<Range>,
    /// Where an ORDER BY or LIMIT that the client did not write goes: before the
    /// locking clause or INTO, or at the end of the statement.
    pub tail: usize,
    /// A WINDOW clause or an OVER: window functions see only one shard's rows.
    pub windows: bool,
}

struct Tok<'a> {
    token: Token<'a>,
    start: usize,
    end: usize,
    depth: u32,
}

fn tokens(text: &str, reading: Reading) -> Vec<Tok<'_>> {
    let base = text.as_ptr() as usize;
    let mut depth = 0u32;
    let mut out = Vec::new();
    for token in reading.lexer(text.as_bytes()) {
        let (slice, pad) = match token {
            Token::Word(s) | Token::Str(s) | Token::Number(s) | Token::UserVar(s) => (s, 0),
            Token::SysVar(s) | Token::Punct(s) => (s, 0),
            Token::Quoted(s) => (s, 1),
            Token::Comment(_) => continue,
        };
        let start = (slice.as_ptr() as usize - base).saturating_sub(pad);
        let end = (slice.as_ptr() as usize - base + slice.len() + pad).min(text.len());
        if token == Token::Punct(b")") {
            depth = depth.saturating_sub(1);
        }
        out.push(Tok {
            token,
            start,
            end,
            depth,
        });
        if token == Token::Punct(b"(") {
            depth += 1;
        }
    }
    out
}

fn is_word(t: &Tok<'_>, w: &str) -> bool {
    matches!(t.token, Token::Word(x) if x.eq_ignore_ascii_case(w.as_bytes()))
}

const MODIFIERS: &[&str] = &[
    "ALL",
    "DISTINCT",
    "DISTINCTROW",
    "HIGH_PRIORITY",
    "STRAIGHT_JOIN",
    "SQL_SMALL_RESULT",
    "SQL_BIG_RESULT",
    "SQL_BUFFER_RESULT",
    "SQL_CACHE",
    "SQL_NO_CACHE",
    "SQL_CALC_FOUND_ROWS",
];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    From,
    Where,
    Group,
    Having,
    Window,
    Order,
    Limit,
    Tail,
}

/// `None` when the text does not have the shape of one plain SELECT.
pub fn find(text: &str, reading: Reading) -> Option<Clauses> {
    let toks = tokens(text, reading);
    let select = toks
        .iter()
        .position(|t| t.depth == 0 && is_word(t, "SELECT"))?;
    if select != 0 {
        return None;
    }
    let mut i = select + 1;
    while i < toks.len() && MODIFIERS.iter().any(|m| is_word(&toks[i], m)) {
        i += 1;
    }
    let list_start = toks.get(i)?.start;

    // Clause keywords at depth 0, in order.
    let mut marks: Vec<(Kind, usize, usize)> = Vec::new(); // kind, token index, byte start
    let mut windows = false;
    let mut j = i;
    while j < toks.len() {
        let t = &toks[j];
        if is_word(t, "OVER") {
            windows = true;
        }
        if t.depth != 0 {
            j += 1;
            continue;
        }
        let next_is_by = toks.get(j + 1).is_some_and(|n| is_word(n, "BY"));
        let after_index_word =
            j > 0 && (is_word(&toks[j - 1], "INDEX") || is_word(&toks[j - 1], "KEY"));
        let kind = if is_word(t, "FROM") && marks.is_empty() {
            Some(Kind::From)
        } else if marks.is_empty() {
            None
        } else if is_word(t, "WHERE") {
            Some(Kind::Where)
        } else if is_word(t, "GROUP") && next_is_by {
            Some(Kind::Group)
        } else if is_word(t, "HAVING") {
            Some(Kind::Having)
        } else if is_word(t, "WINDOW") {
            windows = true;
            Some(Kind::Window)
        } else if is_word(t, "ORDER") && next_is_by {
            Some(Kind::Order)
        } else if is_word(t, "LIMIT") {
            Some(Kind::Limit)
        } else if is_word(t, "FOR") && after_index_word {
            // `USE INDEX FOR ORDER BY (...)`: an index hint, not a clause.
            j += if next_is_by { 3 } else { 2 };
            continue;
        } else if is_word(t, "FOR")
            || is_word(t, "LOCK")
            || is_word(t, "INTO")
            || is_word(t, "PROCEDURE")
            || t.token == Token::Punct(b";")
        {
            Some(Kind::Tail)
        } else {
            None
        };
        if let Some(k) = kind {
            marks.push((k, j, t.start));
            if k == Kind::Tail {
                break;
            }
        }
        j += 1;
    }
    let (first, _, from) = *marks.first()?;
    if first != Kind::From {
        return None;
    }
    let tail = match marks.last() {
        Some((Kind::Tail, _, at)) => *at,
        _ => text.trim_end().len(),
    };
    let end_of = |m: usize| marks.get(m + 1).map_or(tail, |n| n.2);

    let mut c = Clauses {
        from,
        tail,
        windows,
        ..Clauses::default()
    };
    c.items = split(&toks, text, list_start, from);
    for (m, &(kind, idx, start)) in marks.iter().enumerate() {
        let end = end_of(m);
        match kind {
            Kind::Group => {
                let body = toks[idx + 2..].first().map_or(end, |t| t.start.min(end));
                let mut items = split(&toks, text, body, end);
                // `WITH ROLLUP` is not an item; the caller refuses rollups anyway.
                if let Some(last) = items.last_mut() {
                    strip_words(text, &toks, last, &["ROLLUP", "WITH"]);
                }
                c.group = Some(((start, end), items));
            }
            Kind::Having => c.having = Some((start, end)),
            Kind::Order => {
                let body = toks[idx + 2..].first().map_or(end, |t| t.start.min(end));
                let mut items = split(&toks, text, body, end);
                for item in &mut items {
                    strip_words(text, &toks, item, &["ASC", "DESC"]);
                }
                c.order = Some(((start, end), items));
            }
            Kind::Limit => c.limit = Some((start, end)),
            _ => {}
        }
    }
    Some(c)
}

/// Splits `[start, end)` at top-level commas, trimming whitespace.
fn split(toks: &[Tok<'_>], text: &str, start: usize, end: usize) -> Vec<Range> {
    let mut out = Vec::new();
    let mut from = start;
    for t in toks {
        if t.start >= start && t.end <= end && t.depth == 0 && t.token == Token::Punct(b",") {
            out.push(trim(text, from, t.start));
            from = t.end;
        }
    }
    out.push(trim(text, from, end));
    out.retain(|r| r.0 < r.1);
    out
}

fn trim(text: &str, mut a: usize, mut b: usize) -> Range {
    let bytes = text.as_bytes();
    while a < b && bytes[a].is_ascii_whitespace() {
        a += 1;
    }
    while b > a && bytes[b - 1].is_ascii_whitespace() {
        b -= 1;
    }
    (a, b)
}

/// Drops trailing words (in any order, each at most once) from the end of `r`.
fn strip_words(text: &str, toks: &[Tok<'_>], r: &mut Range, words: &[&str]) {
    loop {
        let last = toks
            .iter()
            .rfind(|t| t.start >= r.0 && t.end <= r.1 && t.start < r.1);
        match last {
            Some(t) if t.start > r.0 && words.iter().any(|w| is_word(t, w)) => {
                *r = trim(text, r.0, t.start);
            }
            _ => return,
        }
    }
}

/// The parts of `a UNION ALL b UNION ALL c`, without parentheses around a part.
pub fn union_all_parts(text: &str, reading: Reading) -> Vec<&str> {
    let toks = tokens(text, reading);
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        if t.depth == 0 && is_word(t, "UNION") {
            parts.push(&text[start..t.start]);
            // skip ALL
            i += 1;
            start = toks.get(i).map_or(
                text.len(),
                |n| if is_word(n, "ALL") { n.end } else { n.start },
            );
        }
        i += 1;
    }
    parts.push(&text[start..]);
    parts
        .into_iter()
        .map(|p| {
            let p = p.trim().trim_end_matches(';').trim();
            match p.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
                Some(inner) => inner.trim(),
                None => p,
            }
        })
        .collect()
}

/// The expression part of a select item: `expr [AS] alias` → `expr`.
pub fn without_alias(text: &str, item: Range, reading: Reading) -> Range {
    let toks = tokens(&text[..item.1], reading);
    let inside: Vec<&Tok<'_>> = toks.iter().filter(|t| t.start >= item.0).collect();
    let [.., before, _alias] = inside.as_slice() else {
        return item;
    };
    let end = if is_word(before, "AS") {
        before.start
    } else {
        before.end
    };
    trim(text, item.0, end)
}

/// The inside of the outermost parentheses of a call such as `AVG(x)`.
pub fn call_argument(text: &str, expr: Range) -> Option<Range> {
    let s = &text[expr.0..expr.1];
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    if close <= open {
        return None;
    }
    let (a, b) = trim(text, expr.0 + open + 1, expr.0 + close);
    // `COUNT(DISTINCT x)`: the argument is `x`.
    for word in ["DISTINCT", "ALL"] {
        let inner = &text[a..b];
        if inner.len() > word.len()
            && inner[..word.len()].eq_ignore_ascii_case(word)
            && inner.as_bytes()[word.len()].is_ascii_whitespace()
        {
            return Some(trim(text, a + word.len(), b));
        }
    }
    Some((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(text: &'a str, r: &[Range]) -> Vec<&'a str> {
        r.iter().map(|(a, b)| &text[*a..*b]).collect()
    }

    #[test]
    fn finds_clauses() {
        let sql = "SELECT DISTINCT a, SUM(b) AS s, EXTRACT(YEAR FROM d) FROM t USE INDEX FOR ORDER BY (i) \
                   WHERE x = 1 GROUP BY a, d HAVING s > 1 ORDER BY a DESC, s LIMIT 5, 10 FOR UPDATE";
        let c = find(sql, crate::reading::Reading::DEFAULT).unwrap();
        assert_eq!(
            texts(sql, &c.items),
            ["a", "SUM(b) AS s", "EXTRACT(YEAR FROM d)"]
        );
        assert_eq!(&sql[c.from..c.from + 4], "FROM");
        let (g, gi) = c.group.as_ref().unwrap();
        assert_eq!(&sql[g.0..g.1], "GROUP BY a, d ");
        assert_eq!(texts(sql, gi), ["a", "d"]);
        let h = c.having.unwrap();
        assert_eq!(&sql[h.0..h.1], "HAVING s > 1 ");
        let (_, oi) = c.order.as_ref().unwrap();
        assert_eq!(texts(sql, oi), ["a", "s"]);
        let l = c.limit.unwrap();
        assert_eq!(&sql[l.0..l.1], "LIMIT 5, 10 ");
        assert_eq!(&sql[c.tail..], "FOR UPDATE");
        assert!(!c.windows);
    }

    #[test]
    fn aliases_and_arguments() {
        let sql = "SELECT AVG(o.amount) AS `avg amount`, b c FROM t";
        let c = find(sql, crate::reading::Reading::DEFAULT).unwrap();
        let a = without_alias(sql, c.items[0], crate::reading::Reading::DEFAULT);
        assert_eq!(&sql[a.0..a.1], "AVG(o.amount)");
        let b = without_alias(sql, c.items[1], crate::reading::Reading::DEFAULT);
        assert_eq!(&sql[b.0..b.1], "b");
        let arg = call_argument(sql, a).unwrap();
        assert_eq!(&sql[arg.0..arg.1], "o.amount");
        let sql = "SELECT COUNT( DISTINCT  x) FROM t";
        let c = find(sql, crate::reading::Reading::DEFAULT).unwrap();
        let arg = call_argument(sql, c.items[0]).unwrap();
        assert_eq!(&sql[arg.0..arg.1], "x");
        assert_eq!(c.tail, sql.len());
        assert!(find("(SELECT 1 FROM t)", crate::reading::Reading::DEFAULT).is_none());
    }
}
