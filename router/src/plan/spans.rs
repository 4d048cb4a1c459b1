//! sqlparser reports positions as line and column (in characters); splicing needs byte
//! offsets into the client's text. Every lookup is O(1): a statement with a
//! 100,000-value IN list asks for as many positions, and counting characters from the
//! line's start each time made planning quadratic in the statement's size.

use sqlparser::tokenizer::{Location, Span};

pub struct Offsets<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
    /// For text that is not all ASCII, where each character starts, and the index
    /// of each line's first character in that list. Empty for ASCII text, where a
    /// column is a byte count.
    char_starts: Vec<usize>,
    line_chars: Vec<usize>,
}

impl<'a> Offsets<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i + 1);
            }
        }
        let (mut char_starts, mut line_chars) = (Vec::new(), Vec::new());
        if !text.is_ascii() {
            line_chars.push(0);
            for (i, c) in text.char_indices() {
                char_starts.push(i);
                if c == '\n' {
                    line_chars.push(char_starts.len());
                }
            }
        }
        Offsets {
            text,
            line_starts,
            char_starts,
            line_chars,
        }
    }

    /// Byte offset of a 1-based line/column location; the end of the text for the
    /// position just past its last character.
    pub fn byte(&self, loc: Location) -> Option<usize> {
        let line = (loc.line as usize).checked_sub(1)?;
        let col = (loc.column as usize).checked_sub(1)?;
        if self.char_starts.is_empty() {
            let at = self.line_starts.get(line)? + col;
            return (at <= self.text.len()).then_some(at);
        }
        let at = self.line_chars.get(line)? + col;
        match self.char_starts.get(at) {
            Some(&b) => Some(b),
            None if at == self.char_starts.len() => Some(self.text.len()),
            None => None,
        }
    }

    /// Byte range of a span (end exclusive).
    pub fn range(&self, span: Span) -> Option<(usize, usize)> {
        Some((self.byte(span.start)?, self.byte(span.end)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, line: u64, column: u64) -> Option<usize> {
        Offsets::new(text).byte(Location { line, column })
    }

    #[test]
    fn columns_count_characters_and_lines_start_after_newlines() {
        let ascii = "SELECT a\nFROM t";
        assert_eq!(at(ascii, 1, 1), Some(0));
        assert_eq!(at(ascii, 2, 6), Some(14));
        assert_eq!(at(ascii, 2, 7), Some(15));
        assert_eq!(at(ascii, 2, 9), None);
        assert_eq!(at(ascii, 3, 1), None);
        let wide = "SELECT 'é'\nFROM `tä` x";
        assert_eq!(at(wide, 1, 10), Some(10));
        assert_eq!(at(wide, 2, 7), Some(18));
        assert_eq!(at(wide, 2, 12), Some(wide.len()));
        assert_eq!(at(wide, 2, 13), None);
        assert_eq!(at(wide, 0, 1), None);
    }
}
