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
}
