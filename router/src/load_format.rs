//! The rows of a LOAD DATA file, cut the way the server cuts them, so that each whole
//! line can go to the shard its key picks and that shard's server reads exactly the
//! line the client sent. Only the shard key's field is decoded; the rest of a line is
//! passed on as bytes.
//!
//! The rules are the server's (READ_INFO): a field may be enclosed (`"a,b"`, a
//! doubled enclosing character stands for one, and an enclosing character not
//! followed by a terminator is part of the field); the escape character makes the
//! next byte literal (`\t`, `\n`, `\0`…) and `\N` alone is NULL; with an enclosing
//! character set, an unenclosed `NULL` is NULL too.

/// FIELDS and LINES of one LOAD DATA statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadFormat {
    pub field_end: Vec<u8>,
    pub enclosed: Option<u8>,
    pub escaped: Option<u8>,
    pub line_end: Vec<u8>,
}

impl Default for LoadFormat {
    /// The server's defaults: tab-separated, backslash escapes, one row per line.
    fn default() -> Self {
        LoadFormat {
            field_end: b"\t".to_vec(),
            enclosed: None,
            escaped: Some(b'\\'),
            line_end: b"\n".to_vec(),
        }
    }
}

/// A field's value as the server reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Null,
    Bytes(Vec<u8>),
    /// The line ended before this field: the server gives the column its default.
    Missing,
}

/// One scan of the bytes at hand.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// The line (its terminator included) is this long; `key` is field `index`.
    Line { len: usize, key: Field },
    /// The line goes on past the bytes at hand.
    NeedMore,
}

/// How a field ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Field,
    Line,
}

/// A field read: its value (when kept), how it ended, where the next one starts.
type Read = Option<(Field, End, usize)>;

impl LoadFormat {
    /// Reads the line at the start of `buf`, decoding field `index` (of `fields`, the
    /// columns and variables the statement reads: past them the server skips the
    /// rest of the line as [`skip_line`](Self::skip_line) does). `last`: no more
    /// bytes will come, so the line ends where `buf` ends.
    pub fn scan(&self, buf: &[u8], index: usize, fields: usize, last: bool) -> Scan {
        let mut pos = 0;
        let mut key = Field::Missing;
        for field in 0..fields.max(1) {
            let keep = field == index;
            let read = match self.enclosed {
                Some(q) if buf.get(pos) == Some(&q) => {
                    self.enclosed_field(buf, pos + 1, q, keep, last)
                }
                _ => self.plain_field(buf, pos, keep, last),
            };
            let Some((value, end, after)) = read else {
                return Scan::NeedMore;
            };
            if keep {
                key = value;
            }
            if end == End::Line {
                return Scan::Line { len: after, key };
            }
            pos = after;
        }
        // More fields than the statement reads: the rest of the line is skipped.
        match self.skip_line(&buf[pos..], last) {
            Some(len) => Scan::Line {
                len: pos + len,
                key,
            },
            None => Scan::NeedMore,
        }
    }

    /// The length of the line at the start of `buf` as the server skips one (for
    /// `IGNORE n LINES`, and after the last field it reads): up to the line
    /// terminator, the escape character making the next byte data, enclosures not
    /// looked at.
    pub fn skip_line(&self, buf: &[u8], last: bool) -> Option<usize> {
        let mut p = 0;
        while p < buf.len() {
            if self.escaped == Some(buf[p]) {
                p += 2;
                continue;
            }
            if buf[p..].starts_with(&self.line_end) {
                return Some(p + self.line_end.len());
            }
            if !last && self.line_end.starts_with(&buf[p..]) {
                return None;
            }
            p += 1;
        }
        last.then_some(buf.len())
    }

    /// The escape character, unless it is the enclosing one too: then only a
    /// doubled one means anything (one enclosing character), as in CSV.
    fn escape(&self) -> Option<u8> {
        self.escaped.filter(|e| Some(*e) != self.enclosed)
    }

    /// An unenclosed field from `pos`. As the server, the escape character is looked
    /// at before the terminators; when it is also the enclosing one, only a doubled
    /// one escapes (one of it), and a single one is data.
    fn plain_field(&self, buf: &[u8], pos: usize, keep: bool, last: bool) -> Read {
        let mut out = Vec::new();
        let mut p = pos;
        loop {
            if p >= buf.len() {
                return last.then(|| (self.plain_value(out), End::Line, p));
            }
            let c = buf[p];
            if self.escaped == Some(c) {
                match buf.get(p + 1) {
                    Some(&next) if self.escaped != self.enclosed || next == c => {
                        if next == b'N' && p == pos && self.ends_at(buf, p + 2, last)? {
                            return self.after_null(buf, p + 2, last);
                        }
                        if keep {
                            out.push(unescape(next));
                        }
                        p += 2;
                        continue;
                    }
                    Some(_) => {}
                    None if last => {
                        out.push(c);
                        p += 1;
                        continue;
                    }
                    None => return None,
                }
            }
            if let Some(end) = self.terminator_at(buf, p, last) {
                let (end, len) = end?;
                return Some((self.plain_value(out), end, p + len));
            }
            if keep {
                out.push(c);
            }
            p += 1;
        }
    }

    /// An unenclosed field that reads `NULL` (escapes undone) is NULL when fields may
    /// be enclosed.
    fn plain_value(&self, out: Vec<u8>) -> Field {
        if self.enclosed.is_some() && out == b"NULL" {
            return Field::Null;
        }
        Field::Bytes(out)
    }

    /// Whether a field ends at `p` (a terminator, or the end); `None`: unknown yet.
    fn ends_at(&self, buf: &[u8], p: usize, last: bool) -> Option<bool> {
        if p >= buf.len() {
            return last.then_some(true);
        }
        match self.terminator_at(buf, p, last) {
            Some(Some(_)) => Some(true),
            Some(None) => None,
            None => Some(false),
        }
    }

    fn after_null(&self, buf: &[u8], p: usize, last: bool) -> Read {
        if p >= buf.len() {
            return last.then_some((Field::Null, End::Line, p));
        }
        let (end, len) = self.terminator_at(buf, p, last)??;
        Some((Field::Null, end, p + len))
    }

    /// An enclosed field whose text starts at `p` (after the opening character).
    fn enclosed_field(&self, buf: &[u8], start: usize, q: u8, keep: bool, last: bool) -> Read {
        let mut out = Vec::new();
        let mut p = start;
        // `"\N"`: NULL, as unenclosed.
        let mut null = false;
        loop {
            let Some(&c) = buf.get(p) else {
                // An enclosed field the file never closes runs to its end, its
                // opening character included.
                out.insert(0, q);
                return last.then_some((Field::Bytes(out), End::Line, p));
            };
            if self.escape() == Some(c) {
                match buf.get(p + 1) {
                    Some(&next) => {
                        null = next == b'N' && p == start;
                        if keep {
                            out.push(unescape(next));
                        }
                    }
                    None if last => {
                        out.insert(0, q);
                        out.push(c);
                        return Some((Field::Bytes(out), End::Line, p + 1));
                    }
                    None => return None,
                }
                p += 2;
                continue;
            }
            if c == q {
                match buf.get(p + 1) {
                    Some(&next) if next == q => {
                        if keep {
                            out.push(q);
                        }
                        null = false;
                        p += 2;
                        continue;
                    }
                    None if last => return Some((closed(out, null), End::Line, p + 1)),
                    None => return None,
                    Some(_) => {}
                }
                match self.terminator_at(buf, p + 1, last) {
                    Some(Some((end, len))) => return Some((closed(out, null), end, p + 1 + len)),
                    Some(None) => return None,
                    // Not a closing one: part of the field.
                    None => {}
                }
            }
            null = false;
            if keep {
                out.push(c);
            }
            p += 1;
        }
    }

    /// A line or field terminator at `p`: `Some(Some((which, its length)))`;
    /// `Some(None)` when the bytes at hand end inside what may be one; `None` when
    /// there is none. The line terminator is looked for first, as the server does.
    fn terminator_at(&self, buf: &[u8], p: usize, last: bool) -> Option<Option<(End, usize)>> {
        let rest = &buf[p.min(buf.len())..];
        for (term, end) in [(&self.line_end, End::Line), (&self.field_end, End::Field)] {
            if rest.starts_with(term) {
                return Some(Some((end, term.len())));
            }
        }
        let partial = |t: &Vec<u8>| !last && !rest.is_empty() && t.starts_with(rest);
        if partial(&self.line_end) || partial(&self.field_end) {
            return Some(None);
        }
        None
    }
}

/// An enclosed field's value: `"\N"` alone is NULL.
fn closed(out: Vec<u8>, null: bool) -> Field {
    match null {
        true => Field::Null,
        false => Field::Bytes(out),
    }
}

/// The byte an escape sequence stands for (`\N` is handled by the callers).
fn unescape(c: u8) -> u8 {
    crate::lexer::escaped_byte(c)
}

/// The shard column's type, read from the table: a key is placed only when the server
/// will store exactly the value shardgate places it by. A LOCAL load turns conversion
/// errors into warnings (the server cannot stop the client's file), so a key the
/// server would change (`12abc` into an INT, a string cut to the column's length,
/// NULL into NOT NULL, a date out of range, digits past a DECIMAL's scale) would land
/// on a shard where a read by its stored value does not look: such a line is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyType {
    pub class: KeyClass,
    pub nullable: bool,
    /// AUTO_INCREMENT: the server makes up a value for 0 and NULL.
    pub generated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClass {
    /// An integer type of `bits` bits.
    Integer {
        bits: u32,
        unsigned: bool,
    },
    /// A character or binary string of at most `max` characters (bytes).
    Text {
        max: u64,
        binary: bool,
    },
    Date,
    /// DATETIME or TIMESTAMP with `fraction` fractional digits.
    DateTime {
        fraction: usize,
    },
    Decimal {
        precision: u64,
        scale: u64,
    },
    /// A type whose stored values shardgate does not model (ENUM, SET, FLOAT, YEAR,
    /// TIME, BIT…): loads into it are refused.
    Unchecked(String),
}

/// A column's row of information_schema.COLUMNS, as far as [`KeyType`] reads it.
#[derive(Debug, Default)]
pub struct ColumnFacts {
    pub data_type: String,
    pub column_type: String,
    pub max_chars: Option<u64>,
    pub nullable: bool,
    pub numeric_precision: Option<u64>,
    pub numeric_scale: Option<u64>,
    pub datetime_precision: Option<u64>,
    pub extra: String,
}

impl KeyType {
    pub fn from_columns(c: &ColumnFacts) -> KeyType {
        let unsigned = c.column_type.to_ascii_lowercase().contains("unsigned");
        let class = match c.data_type.to_ascii_lowercase().as_str() {
            "tinyint" => KeyClass::Integer { bits: 8, unsigned },
            "smallint" => KeyClass::Integer { bits: 16, unsigned },
            "mediumint" => KeyClass::Integer { bits: 24, unsigned },
            "int" | "integer" => KeyClass::Integer { bits: 32, unsigned },
            "bigint" => KeyClass::Integer { bits: 64, unsigned },
            t @ ("char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext"
            | "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob") => {
                KeyClass::Text {
                    max: c.max_chars.unwrap_or(u64::MAX),
                    binary: t.contains("binary") || t.contains("blob"),
                }
            }
            "date" => KeyClass::Date,
            "datetime" | "timestamp" => KeyClass::DateTime {
                fraction: c.datetime_precision.unwrap_or(0) as usize,
            },
            "decimal" | "numeric" => KeyClass::Decimal {
                precision: c.numeric_precision.unwrap_or(10),
                scale: c.numeric_scale.unwrap_or(0),
            },
            _ => KeyClass::Unchecked(c.column_type.clone()),
        };
        KeyType {
            class,
            nullable: c.nullable,
            generated: c.extra.to_ascii_lowercase().contains("auto_increment"),
        }
    }

    /// Why no line can be placed by this column, if none can.
    pub fn unchecked(&self) -> Option<&str> {
        match &self.class {
            KeyClass::Unchecked(t) => Some(t),
            _ => None,
        }
    }

    /// The value the server stores for field `key`, as the rules read it; the error
    /// says why the server would store something else.
    pub fn value(&self, key: &Field) -> Result<rules::Value, String> {
        let bytes = match key {
            Field::Missing => return Err("no value".into()),
            Field::Null if self.generated => {
                return Err(
                    "NULL (the column is AUTO_INCREMENT: the server would make one up)".into(),
                )
            }
            Field::Null if self.nullable => return Ok(rules::Value::Null),
            Field::Null => {
                return Err(
                    "NULL (the column is NOT NULL: the server would store a default)".into(),
                )
            }
            Field::Bytes(b) => b,
        };
        let text = std::str::from_utf8(bytes)
            .map_err(|_| "a value that is not valid UTF-8".to_string())?;
        let shown = || {
            text.chars()
                .take(40)
                .collect::<String>()
                .escape_debug()
                .to_string()
        };
        match &self.class {
            KeyClass::Integer { bits, unsigned } => {
                let (low, high) = match unsigned {
                    true => (0, (1i128 << bits) - 1),
                    false => (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1),
                };
                match integer(text) {
                    Some(0) if self.generated => {
                        Err("0 (the column is AUTO_INCREMENT: the server would make one up)".into())
                    }
                    Some(n) if (low..=high).contains(&n) => Ok(rules::Value::Int(n)),
                    _ => Err(format!(
                        "'{}', which is not an integer the column holds",
                        shown()
                    )),
                }
            }
            KeyClass::Text { max, binary } => {
                let len = match binary {
                    true => bytes.len() as u64,
                    false => text.chars().count() as u64,
                };
                if len > *max {
                    return Err(format!("'{}…', longer than the column's {max}", shown()));
                }
                Ok(rules::Value::text(text))
            }
            KeyClass::Date => match valid_date(text) && text.len() == 10 {
                true => Ok(rules::Value::text(text)),
                false => Err(format!(
                    "'{}', which is not a date written YYYY-MM-DD",
                    shown()
                )),
            },
            KeyClass::DateTime { fraction } => match valid_datetime(text, *fraction) {
                true => Ok(rules::Value::text(text)),
                false => Err(format!(
                    "'{}', which is not written YYYY-MM-DD hh:mm:ss (with at most {fraction} \
                     fractional digits)",
                    shown()
                )),
            },
            KeyClass::Decimal { precision, scale } => {
                let (whole, part) = text.split_once('.').unwrap_or((text, ""));
                let fits = plain_digits(whole)
                    && part.bytes().all(|b| b.is_ascii_digit())
                    && whole.trim_start_matches('-').trim_start_matches('0').len() as u64
                        <= precision.saturating_sub(*scale)
                    && part.len() as u64 <= *scale;
                match fits.then(|| rules::Value::number(text)).flatten() {
                    Some(v) => Ok(v),
                    None => Err(format!(
                        "'{}', which the column would round or clip",
                        shown()
                    )),
                }
            }
            KeyClass::Unchecked(t) => Err(format!("a column of type {t}")),
        }
    }
}

/// The integer the server stores, without a warning, for `text`: leading spaces, a
/// sign, `5.0`, `5e0` are the integer 5; anything it would round or cut is `None`.
fn integer(text: &str) -> Option<i128> {
    let t = text.trim_start_matches(' ');
    let t = t.strip_prefix('+').unwrap_or(t);
    if plain_digits(t) {
        return t.parse().ok();
    }
    if let Some((whole, zeros)) = t.split_once('.') {
        let exact = !zeros.is_empty() && zeros.bytes().all(|b| b == b'0');
        return (exact && plain_digits(whole))
            .then(|| whole.parse().ok())
            .flatten();
    }
    if t.contains(['e', 'E']) {
        // A DOUBLE: exact only while it holds every digit.
        return match rules::Value::literal(t)? {
            rules::Value::Int(n) if n.abs() < 1 << 53 => Some(n),
            _ => None,
        };
    }
    None
}

/// An optional minus sign and at least one digit, nothing else.
fn plain_digits(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn number(text: &str, at: std::ops::Range<usize>) -> Option<u32> {
    let part = text.get(at)?;
    part.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| part.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD` at the start of `text`, a day that exists.
fn valid_date(text: &str) -> bool {
    let b = text.as_bytes();
    let (Some(y), Some(m), Some(d)) = (number(text, 0..4), number(text, 5..7), number(text, 8..10))
    else {
        return false;
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    };
    b.get(4) == Some(&b'-') && b.get(7) == Some(&b'-') && y > 0 && (1..=days).contains(&d)
}

/// `YYYY-MM-DD hh:mm:ss[.f…]`, at most `fraction` fractional digits.
fn valid_datetime(text: &str, fraction: usize) -> bool {
    let b = text.as_bytes();
    let time = b.get(10) == Some(&b' ')
        && number(text, 11..13).is_some_and(|h| h < 24)
        && b.get(13) == Some(&b':')
        && number(text, 14..16).is_some_and(|m| m < 60)
        && b.get(16) == Some(&b':')
        && number(text, 17..19).is_some_and(|s| s < 60);
    let fits = match text.get(19..) {
        Some("") => true,
        Some(f) => f.strip_prefix('.').is_some_and(|d| {
            !d.is_empty() && d.len() <= fraction && d.bytes().all(|c| c.is_ascii_digit())
        }),
        None => false,
    };
    valid_date(text) && time && fits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv() -> LoadFormat {
        LoadFormat {
            field_end: b",".to_vec(),
            enclosed: Some(b'"'),
            escaped: Some(b'\\'),
            line_end: b"\r\n".to_vec(),
        }
    }

    fn bytes(b: &[u8]) -> Field {
        Field::Bytes(b.to_vec())
    }

    fn line(len: usize, key: Field) -> Scan {
        Scan::Line { len, key }
    }

    #[test]
    fn plain_tab_separated_lines() {
        let f = LoadFormat::default();
        let buf = b"1\tab\\tc\t\\N\n2\tx\n";
        assert_eq!(f.scan(buf, 1, 3, false), line(11, bytes(b"ab\tc")));
        assert_eq!(f.scan(buf, 2, 3, false), line(11, Field::Null));
        assert_eq!(f.scan(&buf[11..], 5, 6, false), line(4, Field::Missing));
        // An escaped terminator is data; a line cut short needs more bytes.
        assert_eq!(f.scan(b"7\\\n8\tz\n", 0, 2, false), line(7, bytes(b"7\n8")));
        assert_eq!(f.scan(b"12\t3", 0, 2, false), Scan::NeedMore);
        assert_eq!(f.scan(b"12\t3", 0, 2, true), line(4, bytes(b"12")));
        // `\N` followed by more is the text "N…"; the escape is read before the
        // terminators.
        assert_eq!(f.scan(b"\\Nx\n", 0, 1, false), line(4, bytes(b"Nx")));
        assert_eq!(f.scan(b"a\\\tb\tc\n", 0, 2, false), line(7, bytes(b"a\tb")));
    }

    #[test]
    fn enclosed_fields_hold_terminators_and_doubled_quotes() {
        let f = csv();
        let buf = b"\"a,\r\nb\",\"say \"\"hi\"\"\",NULL,\"NULL\",\"\\N\"\r\nnext";
        let Scan::Line { len, key } = f.scan(buf, 0, 5, false) else {
            panic!()
        };
        assert_eq!((len, key), (39, bytes(b"a,\r\nb")));
        assert_eq!(&buf[len..], b"next");
        assert_eq!(f.scan(buf, 1, 5, false), line(39, bytes(b"say \"hi\"")));
        assert_eq!(f.scan(buf, 2, 5, false), line(39, Field::Null));
        assert_eq!(f.scan(buf, 3, 5, false), line(39, bytes(b"NULL")));
        assert_eq!(f.scan(buf, 4, 5, false), line(39, Field::Null));
        // A quote not followed by a terminator is part of the field.
        assert_eq!(
            f.scan(b"\"a\"b\",1\r\n", 0, 2, false),
            line(9, bytes(b"a\"b"))
        );
        // A terminator cut between packets: wait for the rest.
        assert_eq!(f.scan(b"1,2\r", 0, 2, false), Scan::NeedMore);
        assert_eq!(f.scan(b"\"1\"", 0, 1, false), Scan::NeedMore);
        assert_eq!(f.scan(b"\"1\"\r", 0, 1, false), Scan::NeedMore);
        assert_eq!(f.scan(b"\"1\"", 0, 1, true), line(3, bytes(b"1")));
    }

    /// Past the fields the statement reads, the rest of the line is skipped without
    /// looking at enclosures; so are the lines of IGNORE n LINES.
    #[test]
    fn extra_fields_and_ignored_lines_skip_as_the_server_does() {
        let f = csv();
        // The third field's enclosure is not looked at: the line ends inside it,
        // and `y",3` is the next line, as the server reads it.
        let buf = b"1,2,\"x\r\ny\",3\r\n4\r\n";
        assert_eq!(f.scan(buf, 0, 2, false), line(8, bytes(b"1")));
        assert_eq!(f.skip_line(b"a \"b\r\nc\r\n", false), Some(6));
        assert_eq!(f.skip_line(b"a\\\r\nb\r\n", false), Some(7));
        assert_eq!(f.skip_line(b"abc\r", false), None);
        assert_eq!(f.skip_line(b"abc", true), Some(3));
    }

    #[test]
    fn no_escape_character() {
        let f = LoadFormat {
            escaped: None,
            ..csv()
        };
        assert_eq!(f.scan(b"a\\,b\r\n", 0, 2, false), line(6, bytes(b"a\\")));
    }

    /// `ENCLOSED BY '"' ESCAPED BY '"'` (CSV): a doubled quote is one quote, a
    /// single one is data, in enclosed and plain fields alike.
    #[test]
    fn escape_and_enclosure_the_same_character() {
        let f = LoadFormat {
            escaped: Some(b'"'),
            ..csv()
        };
        assert_eq!(f.scan(b"a\",b\r\n", 0, 2, false), line(6, bytes(b"a\"")));
        assert_eq!(
            f.scan(b"ab\"\"c,d\r\n", 0, 2, false),
            line(9, bytes(b"ab\"c"))
        );
        assert_eq!(
            f.scan(b"\"x\"\"y\",b\r\n", 0, 2, false),
            line(10, bytes(b"x\"y"))
        );
    }

    #[test]
    fn keys_the_server_would_change_are_refused() {
        let column = |data_type: &str, column_type: &str, nullable: bool| {
            KeyType::from_columns(&ColumnFacts {
                data_type: data_type.into(),
                column_type: column_type.into(),
                max_chars: Some(3),
                nullable,
                numeric_precision: Some(5),
                numeric_scale: Some(2),
                datetime_precision: Some(0),
                extra: String::new(),
            })
        };
        let v = |t: &KeyType, b: &[u8]| t.value(&Field::Bytes(b.to_vec()));
        let int = column("bigint", "bigint(20)", false);
        assert_eq!(v(&int, b"-42"), Ok(rules::Value::Int(-42)));
        assert_eq!(v(&int, b"007"), Ok(rules::Value::Int(7)));
        for good in [&b" 5"[..], b"+5", b"5.0", b"5e0", b"50e-1"] {
            assert_eq!(v(&int, good), Ok(rules::Value::Int(5)), "{good:?}");
        }
        assert_eq!(v(&int, b"  -0"), Ok(rules::Value::Int(0)));
        for bad in [
            &b"12abc"[..],
            b"1.5",
            b"5 ",
            b"",
            b"5.",
            b"9223372036854775808",
            b"1e300",
        ] {
            assert!(v(&int, bad).is_err(), "{bad:?}");
        }
        assert!(int.value(&Field::Null).is_err());
        assert!(int.value(&Field::Missing).is_err());
        let small = column("tinyint", "tinyint(3) unsigned", true);
        assert!(v(&small, b"256").is_err() && v(&small, b"-1").is_err());
        assert_eq!(small.value(&Field::Null), Ok(rules::Value::Null));
        let text = column("varchar", "varchar(3)", false);
        assert_eq!(v(&text, "äöü".as_bytes()), Ok(rules::Value::text("äöü")));
        assert!(v(&text, b"abcd").is_err());
        let date = column("date", "date", false);
        assert!(v(&date, b"2024-02-29").is_ok());
        for bad in [
            &b"2023-02-29"[..],
            b"2024-3-5",
            b"2024-03-05 10:00:00",
            b"2024-13-01",
        ] {
            assert!(v(&date, bad).is_err(), "{bad:?}");
        }
        let when = column("datetime", "datetime", false);
        assert!(v(&when, b"2024-03-05 10:00:00").is_ok());
        for bad in [
            &b"2024-03-05"[..],
            b"2024-03-05 10:00",
            b"2024-03-05 24:00:00",
            b"2024-03-05 10:00:00.5",
        ] {
            assert!(v(&when, bad).is_err(), "{bad:?}");
        }
        let money = column("decimal", "decimal(5,2)", false);
        assert_eq!(
            v(&money, b"123.45"),
            Ok(rules::Value::number("123.45").unwrap())
        );
        assert!(v(&money, b"1.234").is_err() && v(&money, b"1234.5").is_err());
        assert!(column("enum", "enum('a','b')", false).unchecked().is_some());
        let generated = KeyType {
            generated: true,
            ..int.clone()
        };
        assert!(v(&generated, b"0").is_err() && v(&generated, b"5").is_ok());
    }
}
