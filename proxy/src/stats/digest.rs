//! Statement digests: a statement with its literals replaced by `?`, lists of them
//! folded to one, comments dropped, whitespace collapsed and keywords in lower case,
//! so that `SELECT * FROM t WHERE id IN (1, 2)` and `select * from t where id in (7)`
//! count as one statement. One pass over the text, into a buffer the session reuses.

/// Digest text kept per statement, at most: long generated statements share a prefix.
pub const MAX_DIGEST: usize = 1024;

/// What a token is, for the spacing between two: the digest spells every statement
/// with the same spaces, whatever the client's (`id=1` is `id = ?`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    Literal,
    Operator,
    Open,
    Close,
    Comma,
    Dot,
}

/// Whether a space goes between a token of kind `prev` and one of kind `next`.
fn spaced(prev: Kind, next: Kind) -> bool {
    use Kind::*;
    !matches!(
        (prev, next),
        (Open, _) | (_, Close | Comma | Open) | (Dot, _) | (_, Dot) | (Operator, Operator)
    )
}

/// Writes the digest of `sql` into `out` (cleared first) and returns its hash: as a
/// session with the default sql_mode reads it, at most [`MAX_DIGEST`] bytes.
pub fn digest(sql: &[u8], out: &mut Vec<u8>) -> u64 {
    digest_as(sql, out, router::reading::Reading::DEFAULT, MAX_DIGEST)
}

/// [`digest`] as `reading` reads the text (`"x"` is a name under ANSI_QUOTES, `\` no
/// escape under NO_BACKSLASH_ESCAPES), at most `limit` bytes. The code in
/// executable comments (`/*! … */`, `/*M!100000 … */`) is the statement's, as the
/// server runs it.
pub fn digest_as(
    sql: &[u8],
    out: &mut Vec<u8>,
    reading: router::reading::Reading,
    limit: usize,
) -> u64 {
    out.clear();
    let backslash = reading.backslash_escapes;
    let mut i = 0;
    // Inside an executable comment: its `*/` is no operator.
    let mut executable = false;
    let mut prev: Option<Kind> = None;
    // Whitespace came since the last token (a digit after it starts a number).
    let mut gap = false;
    let put = |out: &mut Vec<u8>, prev: &mut Option<Kind>, kind: Kind| {
        if prev.is_some_and(|p| spaced(p, kind)) {
            out.push(b' ');
        }
        *prev = Some(kind);
    };
    while i < sql.len() && out.len() < limit {
        let b = sql[i];
        match b {
            // The server's whitespace: space and \t \n \x0b \x0c \r.
            b' ' | b'\t'..=b'\r' => {
                gap = true;
                i += 1;
                continue;
            }
            b'\'' | b'"' if !(b == b'"' && reading.ansi_quotes) => {
                i = skip_quoted(sql, i, backslash);
                put(out, &mut prev, Kind::Literal);
                literal(out);
            }
            b'`' | b'"' => {
                let end = skip_quoted(sql, i, false);
                put(out, &mut prev, Kind::Word);
                // A quoted name that needs no quotes is spelled as the bare word
                // (`Orders` is orders); others keep their quotes.
                let inner = &sql[i + 1..end.saturating_sub(1).max(i + 1)];
                let bare = end - i >= 3
                    && sql[end - 1] == b
                    && inner
                        .iter()
                        .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'$');
                let room = limit.saturating_sub(out.len());
                if bare {
                    out.extend(inner.iter().take(room).map(u8::to_ascii_lowercase));
                } else {
                    out.extend_from_slice(&sql[i..end.min(i.saturating_add(room))]);
                }
                i = end;
            }
            b'/' if sql.get(i + 1) == Some(&b'*') && executable_opening(&sql[i..]) > 0 => {
                i += executable_opening(&sql[i..]);
                executable = true;
                gap = true;
                continue;
            }
            b'*' if executable && sql.get(i + 1) == Some(&b'/') => {
                i += 2;
                executable = false;
                gap = true;
                continue;
            }
            b'/' if sql.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(sql.len(), |p| i + 2 + p + 2);
                gap = true;
                continue;
            }
            // `--` starts a comment only before whitespace or a control byte, as the
            // server reads it (`5--1` is five minus minus one).
            b'-' if sql.get(i + 1) == Some(&b'-')
                && sql.get(i + 2).is_none_or(|&c| c <= b' ' || c == 0x7f) =>
            {
                i = line_end(sql, i);
                gap = true;
                continue;
            }
            b'#' => {
                i = line_end(sql, i);
                gap = true;
                continue;
            }
            b'0'..=b'9' if gap || prev != Some(Kind::Word) => {
                while i < sql.len()
                    && (sql[i].is_ascii_alphanumeric()
                        || sql[i] == b'.'
                        || ((sql[i] == b'-' || sql[i] == b'+')
                            && matches!(sql[i - 1], b'e' | b'E')))
                {
                    i += 1;
                }
                put(out, &mut prev, Kind::Literal);
                literal(out);
            }
            b'(' | b')' | b',' | b'.' | b';' => {
                let kind = match b {
                    b'(' => Kind::Open,
                    b')' => Kind::Close,
                    b'.' => Kind::Dot,
                    _ => Kind::Comma,
                };
                put(out, &mut prev, kind);
                out.push(b);
                i += 1;
            }
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'@' || b >= 0x80 => {
                // A word continues when nothing came between (`t1`, `@@x`).
                if gap || prev != Some(Kind::Word) {
                    put(out, &mut prev, Kind::Word);
                }
                out.push(b.to_ascii_lowercase());
                i += 1;
            }
            _ => {
                put(out, &mut prev, Kind::Operator);
                out.push(b);
                i += 1;
            }
        }
        gap = false;
    }
    out.truncate(limit);
    while out.last() == Some(&b' ') {
        out.pop();
    }
    while out.last() == Some(&b';') {
        out.pop();
    }
    fnv1a(out)
}

/// A literal: `?`, unless it continues a list of them (`?, ?` is `?`).
fn literal(out: &mut Vec<u8>) {
    let trimmed = out.len() - out.iter().rev().take_while(|&&b| b == b' ').count();
    let body = &out[..trimmed];
    if body.ends_with(b"?,") {
        out.truncate(trimmed - 1);
        return;
    }
    // A sign before a number belongs to it, after an operator or a comma.
    if body.ends_with(b"-") || body.ends_with(b"+") {
        let before = body[..body.len() - 1].trim_ascii_end();
        if before.is_empty() || matches!(before.last(), Some(b'(' | b',' | b'=' | b'<' | b'>')) {
            out.truncate(trimmed - 1);
            while out.last() == Some(&b' ') {
                out.pop();
            }
            if out.last().is_some_and(|&b| b != b'(') {
                out.push(b' ');
            }
        }
    }
    out.push(b'?');
}

/// The length of `/*!`, `/*M!` and the version after it, when `rest` opens an
/// executable comment; 0 otherwise.
fn executable_opening(rest: &[u8]) -> usize {
    let head = match rest {
        [b'/', b'*', b'!', ..] => 3,
        [b'/', b'*', b'M' | b'm', b'!', ..] => 4,
        _ => return 0,
    };
    head + rest[head..]
        .iter()
        .take(6)
        .take_while(|b| b.is_ascii_digit())
        .count()
}

/// The end of the quoted text at `start`; `backslash`: a backslash escapes the next
/// byte (never in a name).
fn skip_quoted(sql: &[u8], start: usize, backslash: bool) -> usize {
    let q = sql[start];
    let mut i = start + 1;
    while i < sql.len() {
        if backslash && sql[i] == b'\\' && q != b'`' {
            i += 2;
            continue;
        }
        if sql[i] == q {
            if sql.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    sql.len()
}

fn line_end(sql: &[u8], start: usize) -> usize {
    sql[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(sql.len(), |p| start + p + 1)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(sql: &str) -> String {
        let mut out = Vec::new();
        digest(sql.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn literals_lists_comments_and_case_fold() {
        assert_eq!(
            d("SELECT  *\nFROM t1 WHERE id IN (1, 2, 3) AND name = 'x''y' -- c\n"),
            "select * from t1 where id in(?) and name = ?"
        );
        assert_eq!(
            d("select * from t1 where id in(7) and name=\"z\""),
            "select * from t1 where id in(?) and name = ?"
        );
        assert_eq!(
            d("INSERT INTO t VALUES (1,'a'),(2,'b');"),
            "insert into t values(?),(?)"
        );
        // A list of literals folds to one; a sign after a word stays (`x-1` is
        // arithmetic, and a keyword is not told from a column).
        assert_eq!(
            d("/* hint */ SELECT -5, 1.5e-3, x-1 FROM `T 1`"),
            "select - ?, x - ? from `T 1`"
        );
        assert_eq!(
            d("SELECT a FROM t WHERE b = -1"),
            "select a from t where b = ?"
        );
        assert_eq!(
            d("SELECT COUNT(*) FROM s.t WHERE a<=-2"),
            "select count(*) from s.t where a <= ?"
        );
    }

    /// What the server runs is what the digest spells: the code of executable
    /// comments, names however quoted, strings as the session's sql_mode reads them.
    #[test]
    fn the_digest_reads_as_the_server_does() {
        use router::reading::Reading;
        let as_read = |sql: &str, reading: Reading| {
            let mut out = Vec::new();
            digest_as(sql.as_bytes(), &mut out, reading, usize::MAX);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(d("/*!DROP*/ TABLE `Notes`"), "drop table notes");
        assert_eq!(
            d("SELECT 5--1, pay FROM salaries"),
            "select ? -- ?, pay from salaries"
        );
        assert_eq!(d("DROP\x0cTABLE notes -- gone"), "drop table notes");
        assert_eq!(
            d("SELECT 1 --\x7f'\nFROM salaries"),
            "select ? from salaries"
        );
        assert_eq!(
            d("/*M!100000 DELETE */ FROM t /* plain */"),
            "delete from t"
        );
        assert_eq!(d("SELECT * FROM `my table`"), "select * from `my table`");
        // Unbounded (the firewall's): found by the route_sql fuzzer, an overflow.
        assert_eq!(
            as_read("SELECT * FROM `my table`", Reading::DEFAULT),
            "select * from `my table`"
        );
        let ansi = Reading {
            ansi_quotes: true,
            ..Reading::DEFAULT
        };
        assert_eq!(
            as_read("SELECT * FROM \"salaries\"", ansi),
            "select * from salaries"
        );
        let plain = Reading {
            backslash_escapes: false,
            ..Reading::DEFAULT
        };
        assert_eq!(
            as_read("SELECT 'a\\' FROM salaries -- '", plain),
            "select ? from salaries"
        );
        let long = format!("SELECT {} pay FROM salaries", "id, ".repeat(400));
        assert!(as_read(&long, Reading::DEFAULT).ends_with("from salaries"));
        assert!(d(&long).len() <= MAX_DIGEST);
    }

    /// The client's spacing does not make another statement.
    #[test]
    fn spacing_is_the_digest_s_own() {
        for sql in [
            "UPDATE t SET v=v+1 WHERE user_id=7",
            "update t set v = v + 1 where user_id = 8",
            "UPDATE  t\n SET v =v+ 1 WHERE user_id =9 ;",
        ] {
            assert_eq!(d(sql), "update t set v = v + ? where user_id = ?", "{sql}");
        }
    }

    /// Any bytes at all: no panic, and the digest stays within its bound.
    #[test]
    fn never_panics() {
        let alphabet = b"0123456789eE+-.,'\"`\\/*#\n ?()aZx_@$;";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut out = Vec::new();
        for len in 0..2000usize {
            let sql: Vec<u8> = (0..len % 64)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            digest(&sql, &mut out);
            assert!(out.len() <= MAX_DIGEST);
        }
        digest(&vec![b'1'; 5000], &mut out);
        let mut long = b"SELECT `".to_vec();
        long.extend(vec![b'x'; 5000]);
        digest(&long, &mut out);
        assert!(out.len() <= MAX_DIGEST);
        digest(&[b'-'; 3], &mut out);
        digest(b"e-", &mut out);
        digest(b"1e", &mut out);
    }

    #[test]
    fn one_hash_per_shape() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        assert_eq!(
            digest(b"SELECT * FROM t WHERE id = 1", &mut a),
            digest(b"select * from t where id = 99", &mut b)
        );
        assert_ne!(
            digest(b"SELECT * FROM t WHERE id = 1", &mut a),
            digest(b"SELECT * FROM u WHERE id = 1", &mut b)
        );
    }
}
