//! A text-protocol row: the packet as received, its values located but not copied.

use bytes::{Bytes, BytesMut};

use crate::wire::lenenc;

const NULL: u8 = 0xFB;

#[derive(Debug, Clone)]
pub struct Row {
    payload: Bytes,
    values: Vec<Option<Bytes>>,
    /// A value was replaced: the payload no longer matches.
    changed: bool,
}

impl Row {
    /// `None` when the payload does not hold `columns` values.
    pub fn parse(payload: Bytes, columns: usize) -> Option<Row> {
        let mut values = Vec::with_capacity(columns);
        let mut pos = 0;
        for _ in 0..columns {
            if payload.get(pos) == Some(&NULL) {
                values.push(None);
                pos += 1;
                continue;
            }
            let (len, n) = lenenc::read_int(payload.get(pos..)?)?;
            let start = pos + n;
            let end = start.checked_add(usize::try_from(len).ok()?)?;
            if end > payload.len() {
                return None;
            }
            values.push(Some(payload.slice(start..end)));
            pos = end;
        }
        (pos == payload.len()).then_some(Row {
            payload,
            values,
            changed: false,
        })
    }

    /// A row of `columns` NULLs, for a row shardgate makes itself.
    pub fn nulls(columns: usize) -> Row {
        Row {
            payload: Bytes::from(vec![NULL; columns]),
            values: vec![None; columns],
            changed: false,
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.values.get(i)?.as_deref()
    }

    pub fn set(&mut self, i: usize, v: Option<Bytes>) {
        if let Some(slot) = self.values.get_mut(i) {
            *slot = v;
            self.changed = true;
        }
    }

    /// The row with only its first `visible` values, as a packet payload.
    pub fn encode(&self, visible: usize) -> BytesMut {
        if !self.changed && visible == self.values.len() {
            return BytesMut::from(&self.payload[..]);
        }
        let mut out = BytesMut::with_capacity(self.payload.len());
        for v in self.values.iter().take(visible) {
            match v {
                None => out.extend_from_slice(&[NULL]),
                Some(b) => lenenc::put_str(&mut out, b),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_drops_hidden_columns() {
        let mut p = BytesMut::new();
        lenenc::put_str(&mut p, b"abc");
        p.extend_from_slice(&[NULL]);
        lenenc::put_str(&mut p, b"");
        let row = Row::parse(p.clone().freeze(), 3).unwrap();
        assert_eq!(row.get(0), Some(&b"abc"[..]));
        assert_eq!(row.get(1), None);
        assert_eq!(row.get(2), Some(&b""[..]));
        assert_eq!(row.encode(3), p);
        assert_eq!(&row.encode(2)[..], &[3, b'a', b'b', b'c', NULL]);
        assert!(Row::parse(p.freeze(), 2).is_none(), "extra bytes");
    }
}
