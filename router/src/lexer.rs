//! A small MySQL tokenizer over raw bytes: enough to find keywords, identifiers and
//! comments without a full parse. It never fails; malformed text yields best-effort
//! tokens and the backend reports the real syntax error.

/// One token. Strings and quoted identifiers keep their quotes in `text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    /// A bare word: keyword or unquoted identifier.
    Word(&'a [u8]),
    /// A backtick-quoted identifier, without the backticks (doubled backticks not undone).
    Quoted(&'a [u8]),
    /// A string literal with its quotes.
    Str(&'a [u8]),
    Number(&'a [u8]),
    /// `@name` or `@'name'`.
    UserVar(&'a [u8]),
    /// `@@name`, `@@session.name`.
    SysVar(&'a [u8]),
    /// A `/* ... */`, `-- ...` or `# ...` comment's body (not `/*! */` code).
    Comment(&'a [u8]),
    /// Any other character or operator (`:=`, `(`, `;`, ...).
    Punct(&'a [u8]),
}

impl<'a> Token<'a> {
    /// The word, when the token is one (not a quoted name, string or number).
    pub fn word(&self) -> Option<&'a [u8]> {
        match self {
            Token::Word(w) => Some(w),
            _ => None,
        }
    }
}

pub struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    /// Inside `/*! ... */` or `/*M! ... */`: the closing `*/` is skipped as noise.
    in_exec_comment: bool,
    /// A backslash escapes the next character in a string (false under the
    /// NO_BACKSLASH_ESCAPES sql_mode, where `'a\'` is a whole string).
    backslash_escapes: bool,
    /// `"…"` quotes an identifier, as under the ANSI_QUOTES sql_mode.
    ansi_quotes: bool,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a [u8]) -> Self {
        Self::with_backslash_escapes(src, true)
    }

    /// A lexer that reads strings as a session with or without NO_BACKSLASH_ESCAPES.
    pub fn with_backslash_escapes(src: &'a [u8], backslash_escapes: bool) -> Self {
        Self::with_modes(src, backslash_escapes, false)
    }

    /// A lexer that reads as a session whose sql_mode has NO_BACKSLASH_ESCAPES (when
    /// `backslash_escapes` is false) and ANSI_QUOTES (when `ansi_quotes`).
    pub fn with_modes(src: &'a [u8], backslash_escapes: bool, ansi_quotes: bool) -> Self {
        Lexer {
            src,
            pos: 0,
            in_exec_comment: false,
            backslash_escapes,
            ansi_quotes,
        }
    }

    fn peek(&self, off: usize) -> u8 {
        self.src.get(self.pos + off).copied().unwrap_or(0)
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.pos < self.src.len() && f(self.src[self.pos]) {
            self.pos += 1;
        }
        &self.src[start..self.pos]
    }

    /// A token that starts with a digit: a number (`42`, `1.5`, `1e-3`, `0x1F`,
    /// `0b101`), or an identifier, which may start with digits (`1secret`, `2024_t`).
    fn number_or_word(&mut self) -> Token<'a> {
        let start = self.pos;
        let run = self.take_while(is_word_byte);
        let digits = |b: &[u8]| !b.is_empty() && b.iter().all(u8::is_ascii_digit);
        let hex = run.len() > 2
            && (run.starts_with(b"0x") && run[2..].iter().all(u8::is_ascii_hexdigit)
                || run.starts_with(b"0b") && run[2..].iter().all(|c| *c == b'0' || *c == b'1'));
        if hex {
            return Token::Number(run);
        }
        // 1e5, 1e-5, 1e+5: an exponent.
        let exponent = |r: &[u8]| match r.iter().position(|c| *c == b'e' || *c == b'E') {
            Some(i) => digits(&r[..i]) && (digits(&r[i + 1..]) || i + 1 == r.len()),
            None => false,
        };
        if !digits(run) && !exponent(run) {
            return Token::Word(run);
        }
        let signed_exponent = |lexer: &Self| {
            matches!(run.last(), Some(b'e' | b'E'))
                && matches!(lexer.peek(0), b'+' | b'-')
                && lexer.peek(1).is_ascii_digit()
        };
        if exponent(run) && !digits(&run[run.len() - 1..]) && !signed_exponent(self) {
            // `1e` followed by anything but a signed number is an identifier.
            return Token::Word(run);
        }
        if signed_exponent(self) {
            self.pos += 1;
            self.take_while(|c| c.is_ascii_digit());
        } else if digits(run) && self.peek(0) == b'.' {
            // A fraction, with its exponent.
            self.pos += 1;
            self.take_while(|c| c.is_ascii_alphanumeric());
            if matches!(self.src[self.pos - 1], b'e' | b'E') && matches!(self.peek(0), b'+' | b'-')
            {
                self.pos += 1;
                self.take_while(|c| c.is_ascii_digit());
            }
        }
        Token::Number(&self.src[start..self.pos])
    }

    /// Skips a quoted run starting at the opening quote; returns it with quotes.
    fn quoted(&mut self, quote: u8) -> &'a [u8] {
        let start = self.pos;
        self.pos += 1;
        while self.pos < self.src.len() {
            let c = self.src[self.pos];
            if c == b'\\'
                && quote != b'`'
                && !(quote == b'"' && self.ansi_quotes)
                && self.backslash_escapes
            {
                self.pos += 2;
                continue;
            }
            self.pos += 1;
            if c == quote {
                if self.peek(0) == quote {
                    self.pos += 1;
                    continue;
                }
                break;
            }
        }
        self.pos = self.pos.min(self.src.len());
        &self.src[start..self.pos]
    }
}

/// The bytes a string literal (its quotes included, `'` or `"`) stands for: doubled
/// quotes and, when the session reads them so, backslash escapes undone. `\%` and
/// `\_` keep their backslash, as the server keeps it outside LIKE patterns.
pub fn string_literal(s: &[u8], backslash_escapes: bool) -> Option<Vec<u8>> {
    let (&quote, rest) = s.split_first()?;
    if quote != b'\'' && quote != b'"' {
        return None;
    }
    let inner = rest.strip_suffix(&[quote])?;
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        match inner[i] {
            b'\\' if backslash_escapes => {
                let c = *inner.get(i + 1)?;
                if c == b'%' || c == b'_' {
                    out.push(b'\\');
                }
                out.push(escaped_byte(c));
                i += 2;
            }
            c if c == quote && inner.get(i + 1) == Some(&quote) => {
                out.push(quote);
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// The byte a backslash sequence stands for, in string literals and LOAD DATA
/// files alike (`\n`, `\t`, `\0`, `\Z`…; any other byte stands for itself).
pub fn escaped_byte(c: u8) -> u8 {
    match c {
        b'0' => 0,
        b'b' => 8,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'Z' => 26,
        other => other,
    }
}

/// A system variable's name without `@@` and its scope (`@@session.sql_mode` →
/// `sql_mode`).
pub fn sysvar_name(v: &[u8]) -> &[u8] {
    let name = v.rsplit(|&c| c == b'.').next().unwrap_or(v);
    name.strip_prefix(b"@@").unwrap_or(name)
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        loop {
            // The server's whitespace: \t \n \x0b \x0c \r and space.
            self.take_while(|c| matches!(c, b' ' | b'\t'..=b'\r'));
            if self.pos >= self.src.len() {
                return None;
            }
            let c = self.peek(0);
            match c {
                b'/' if self.peek(1) == b'*' => {
                    let is_exec =
                        self.peek(2) == b'!' || (self.peek(2) == b'M' && self.peek(3) == b'!');
                    if is_exec {
                        self.pos += if self.peek(2) == b'M' { 4 } else { 3 };
                        self.take_while(|c| c.is_ascii_digit());
                        self.in_exec_comment = true;
                        continue;
                    }
                    let start = self.pos + 2;
                    let end = find(&self.src[start..], b"*/").map(|i| start + i);
                    let (body, next) = match end {
                        Some(e) => (&self.src[start..e], e + 2),
                        None => (&self.src[start..], self.src.len()),
                    };
                    self.pos = next;
                    return Some(Token::Comment(body));
                }
                b'*' if self.in_exec_comment && self.peek(1) == b'/' => {
                    self.pos += 2;
                    self.in_exec_comment = false;
                    continue;
                }
                b'#' => {
                    self.pos += 1;
                    return Some(Token::Comment(self.take_while(|c| c != b'\n')));
                }
                // `--` opens a comment before whitespace or a control byte, as the
                // server reads it.
                b'-' if self.peek(1) == b'-'
                    && (self.peek(2) <= b' '
                        || self.peek(2) == 0x7f
                        || self.pos + 2 == self.src.len()) =>
                {
                    self.pos += 2;
                    return Some(Token::Comment(self.take_while(|c| c != b'\n')));
                }
                b'"' if self.ansi_quotes => {
                    let q = self.quoted(b'"');
                    let inner = &q[1..q.len().saturating_sub(1).max(1)];
                    return Some(Token::Quoted(inner));
                }
                b'\'' | b'"' => return Some(Token::Str(self.quoted(c))),
                b'`' => {
                    let q = self.quoted(b'`');
                    let inner = &q[1..q.len().saturating_sub(1).max(1)];
                    return Some(Token::Quoted(inner));
                }
                b'@' => {
                    let start = self.pos;
                    if self.peek(1) == b'@' {
                        self.pos += 2;
                        self.take_while(|c| is_word_byte(c) || c == b'.');
                        return Some(Token::SysVar(&self.src[start..self.pos]));
                    }
                    self.pos += 1;
                    match self.peek(0) {
                        q @ (b'\'' | b'"' | b'`') => {
                            self.quoted(q);
                        }
                        _ => {
                            self.take_while(|c| is_word_byte(c) || c == b'.');
                        }
                    }
                    return Some(Token::UserVar(&self.src[start..self.pos]));
                }
                b'0'..=b'9' => return Some(self.number_or_word()),
                _ if is_word_byte(c) => return Some(Token::Word(self.take_while(is_word_byte))),
                b':' if self.peek(1) == b'=' => {
                    self.pos += 2;
                    return Some(Token::Punct(&self.src[self.pos - 2..self.pos]));
                }
                _ => {
                    self.pos += 1;
                    return Some(Token::Punct(&self.src[self.pos - 1..self.pos]));
                }
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(sql: &str) -> Vec<String> {
        Lexer::new(sql.as_bytes())
            .map(|t| match t {
                Token::Word(w) => format!("W:{}", String::from_utf8_lossy(w)),
                Token::Quoted(w) => format!("Q:{}", String::from_utf8_lossy(w)),
                Token::Str(w) => format!("S:{}", String::from_utf8_lossy(w)),
                Token::Number(w) => format!("N:{}", String::from_utf8_lossy(w)),
                Token::UserVar(w) => format!("U:{}", String::from_utf8_lossy(w)),
                Token::SysVar(w) => format!("V:{}", String::from_utf8_lossy(w)),
                Token::Comment(w) => format!("C:{}", String::from_utf8_lossy(w)),
                Token::Punct(w) => format!("P:{}", String::from_utf8_lossy(w)),
            })
            .collect()
    }

    #[test]
    fn tokenizes_comments_strings_and_variables() {
        assert_eq!(
            words("/* hi */ SELECT 'a''b', `t``x`, @v, @@session.x -- end"),
            [
                "C: hi ",
                "W:SELECT",
                "S:'a''b'",
                "P:,",
                "Q:t``x",
                "P:,",
                "U:@v",
                "P:,",
                "V:@@session.x",
                "C: end"
            ]
        );
    }

    /// `--` opens a comment before whitespace or any control byte, and \x0b \x0c
    /// are whitespace, as the server reads them: a quote after `--\x01` is no string.
    #[test]
    fn comments_and_whitespace_are_the_servers() {
        assert_eq!(
            words("SELECT 1 --\x01 'x\nFROM\x0bt"),
            ["W:SELECT", "N:1", "C:\x01 'x", "W:FROM", "W:t"]
        );
        assert_eq!(
            words("SELECT 5--1"),
            ["W:SELECT", "N:5", "P:-", "P:-", "N:1"]
        );
    }

    #[test]
    fn identifiers_may_start_with_digits_numbers_may_not_hold_letters() {
        assert_eq!(
            words("SELECT 1, 1.5, 2e3, 1.5e-3, 0x1F, 0b01 FROM 1secret .t, 1db.t2, 2024_t"),
            [
                "W:SELECT",
                "N:1",
                "P:,",
                "N:1.5",
                "P:,",
                "N:2e3",
                "P:,",
                "N:1.5e-3",
                "P:,",
                "N:0x1F",
                "P:,",
                "N:0b01",
                "W:FROM",
                "W:1secret",
                "P:.",
                "W:t",
                "P:,",
                "W:1db",
                "P:.",
                "W:t2",
                "P:,",
                "W:2024_t"
            ]
        );
        assert_eq!(words("1e+5 1ex 0xZZ"), ["N:1e+5", "W:1ex", "W:0xZZ"]);
    }

    #[test]
    fn executable_comments_are_code() {
        assert_eq!(
            words("/*!40101 SET NAMES utf8 */;"),
            ["W:SET", "W:NAMES", "W:utf8", "P:;"]
        );
    }

    #[test]
    fn never_panics_on_garbage() {
        for s in [
            &b"'unterminated"[..],
            b"`",
            b"/*",
            b"@",
            b"\xff\xfe",
            b"--",
            b"@'x",
        ] {
            let _ = Lexer::new(s).count();
        }
    }
}
