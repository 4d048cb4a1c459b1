//! sqlparser reports positions as line and column (in characters); splicing needs byte
//! offsets into the client's text.

use sqlparser::tokenizer::{Location, Span};

pub struct Offsets<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Offsets<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i + 1);
            }
        }
        Offsets { text, line_starts }
    }

    /// Byte offset of a 1-based line/column location.
    pub fn byte(&self, loc: Location) -> Option<usize> {
        let start = *self.line_starts.get((loc.line as usize).checked_sub(1)?)?;
        let col = (loc.column as usize).checked_sub(1)?;
        let line = &self.text[start..];
        match line.char_indices().nth(col) {
            Some((i, _)) => Some(start + i),
            None if line.chars().count() == col => Some(self.text.len()),
            None => None,
        }
    }

    /// Byte range of a span (end exclusive).
    pub fn range(&self, span: Span) -> Option<(usize, usize)> {
        Some((self.byte(span.start)?, self.byte(span.end)?))
    }
}
