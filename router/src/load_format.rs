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

impl LoadFormat {
    /// Reads the line at the start of `buf`, decoding field `index`. `last`: no more
    /// bytes will come, so the line ends where `buf` ends.
    pub fn scan(&self, buf: &[u8], index: usize, last: bool) -> Scan {
        let mut pos = 0;
        let mut field = 0;
        let mut key = Field::Missing;
        loop {
            let want = field == index;
            let read = match self.enclosed {
                Some(q) if buf.get(pos) == Some(&q) => self.enclosed_field(buf, pos + 1, q, last),
                _ => self.plain_field(buf, pos, last),
            };
            let Some((value, end, after)) = read else {
                return Scan::NeedMore;
            };
            if want {
                key = value;
            }
            match end {
                End::Field => {
                    pos = after;
                    field += 1;
                }
                End::Line => return Scan::Line { len: after, key },
            }
        }
    }

    /// An unenclosed field from `pos`: its value, what ended it, and where the next
    /// field (or line) starts. `None`: more bytes are needed.
    fn plain_field(&self, buf: &[u8], pos: usize, last: bool) -> Option<(Field, End, usize)> {
        let mut out = Vec::new();
        let mut escapes = 0;
        let mut p = pos;
        loop {
            if p >= buf.len() {
                return last.then(|| (self.plain_value(out, escapes, p - pos), End::Line, p));
            }
            if let Some(end) = self.terminator_at(buf, p, last) {
                let (end, len) = end?;
                return Some((self.plain_value(out, escapes, p - pos), end, p + len));
            }
            let c = buf[p];
            if self.escaped == Some(c) {
                match buf.get(p + 1) {
                    Some(&next) => {
                        out.push(unescape(next));
                        escapes += 1;
                        if next == b'N' && p == pos && self.plain_ends(buf, p + 2, last) {
                            return self.after_null(buf, p + 2, last);
                        }
                        p += 2;
                    }
                    None if last => {
                        out.push(c);
                        p += 1;
                    }
                    None => return None,
                }
                continue;
            }
            out.push(c);
            p += 1;
        }
    }

    /// An unenclosed `NULL` is NULL when fields may be enclosed.
    fn plain_value(&self, out: Vec<u8>, escapes: usize, raw_len: usize) -> Field {
        if self.enclosed.is_some() && escapes == 0 && raw_len == 4 && out == b"NULL" {
            return Field::Null;
        }
        Field::Bytes(out)
    }

    /// `\N` ends at `p`: whether a terminator (or the end) follows.
    fn plain_ends(&self, buf: &[u8], p: usize, last: bool) -> bool {
        p >= buf.len() || matches!(self.terminator_at(buf, p, last), Some(Some(_)))
    }

    fn after_null(&self, buf: &[u8], p: usize, last: bool) -> Option<(Field, End, usize)> {
        if p >= buf.len() {
            return last.then_some((Field::Null, End::Line, p));
        }
        let (end, len) = self.terminator_at(buf, p, last)??;
        Some((Field::Null, end, p + len))
    }

    /// An enclosed field whose text starts at `p` (after the opening character).
    fn enclosed_field(
        &self,
        buf: &[u8],
        mut p: usize,
        q: u8,
        last: bool,
    ) -> Option<(Field, End, usize)> {
        let mut out = Vec::new();
        loop {
            let Some(&c) = buf.get(p) else {
                // An enclosed field the file never closes runs to its end.
                return last.then_some((Field::Bytes(out), End::Line, p));
            };
            if self.escaped == Some(c) && c != q {
                match buf.get(p + 1) {
                    Some(&next) => out.push(unescape(next)),
                    None if last => {
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
                        out.push(q);
                        p += 2;
                        continue;
                    }
                    None if last => return Some((Field::Bytes(out), End::Line, p + 1)),
                    None => return None,
                    Some(_) => {}
                }
                match self.terminator_at(buf, p + 1, last) {
                    Some(Some((end, len))) => return Some((Field::Bytes(out), end, p + 1 + len)),
                    Some(None) => return None,
                    // Not a closing one: part of the field.
                    None => {}
                }
            }
            out.push(c);
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Field,
    Line,
}

/// The byte an escape sequence stands for (`N` is handled by the caller).
fn unescape(c: u8) -> u8 {
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

    #[test]
    fn plain_tab_separated_lines() {
        let f = LoadFormat::default();
        let buf = b"1\tab\\tc\t\\N\n2\tx\n";
        assert_eq!(
            f.scan(buf, 1, false),
            Scan::Line {
                len: 11,
                key: bytes(b"ab\tc")
            }
        );
        assert_eq!(
            f.scan(buf, 2, false),
            Scan::Line {
                len: 11,
                key: Field::Null
            }
        );
        assert_eq!(
            f.scan(&buf[11..], 5, false),
            Scan::Line {
                len: 4,
                key: Field::Missing
            }
        );
        // An escaped terminator is data; a line cut short needs more bytes.
        assert_eq!(
            f.scan(b"7\\\n8\tz\n", 0, false),
            Scan::Line {
                len: 7,
                key: bytes(b"7\n8")
            }
        );
        assert_eq!(f.scan(b"12\t3", 0, false), Scan::NeedMore);
        assert_eq!(
            f.scan(b"12\t3", 0, true),
            Scan::Line {
                len: 4,
                key: bytes(b"12")
            }
        );
        // `\N` followed by more is the text "N…".
        assert_eq!(
            f.scan(b"\\Nx\n", 0, false),
            Scan::Line {
                len: 4,
                key: bytes(b"Nx")
            }
        );
    }

    #[test]
    fn enclosed_fields_hold_terminators_and_doubled_quotes() {
        let f = csv();
        let buf = b"\"a,\r\nb\",\"say \"\"hi\"\"\",NULL,\"NULL\"\r\nnext";
        let Scan::Line { len, key } = f.scan(buf, 0, false) else {
            panic!()
        };
        assert_eq!((len, key), (34, bytes(b"a,\r\nb")));
        assert_eq!(&buf[len..], b"next");
        assert!(
            matches!(f.scan(buf, 1, false), Scan::Line { key, .. } if key == bytes(b"say \"hi\""))
        );
        assert!(matches!(
            f.scan(buf, 2, false),
            Scan::Line {
                key: Field::Null,
                ..
            }
        ));
        assert!(matches!(f.scan(buf, 3, false), Scan::Line { key, .. } if key == bytes(b"NULL")));
        // A quote not followed by a terminator is part of the field.
        assert!(matches!(
            f.scan(b"\"a\"b\",1\r\n", 0, false),
            Scan::Line { len: 9, key } if key == bytes(b"a\"b")
        ));
        // A terminator cut between packets: wait for the rest.
        assert_eq!(f.scan(b"1,2\r", 0, false), Scan::NeedMore);
        assert_eq!(f.scan(b"\"1\"", 0, false), Scan::NeedMore);
        assert_eq!(f.scan(b"\"1\"\r", 0, false), Scan::NeedMore);
        assert!(
            matches!(f.scan(b"\"1\"", 0, true), Scan::Line { len: 3, key } if key == bytes(b"1"))
        );
    }

    #[test]
    fn no_escape_character() {
        let f = LoadFormat {
            escaped: None,
            ..csv()
        };
        assert!(matches!(
            f.scan(b"a\\,b\r\n", 0, false),
            Scan::Line { len: 6, key } if key == bytes(b"a\\")
        ));
    }
}
