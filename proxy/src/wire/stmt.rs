//! The binary protocol's statement packets: the COM_STMT_PREPARE answer and the
//! COM_STMT_EXECUTE request with its parameters.

use bytes::{BufMut, BytesMut};

use super::coltype as ty;
use super::{lenenc, WireError};

/// The first packet of a successful COM_STMT_PREPARE answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareOk {
    pub id: u32,
    pub columns: u16,
    pub params: u16,
    pub warnings: u16,
}

impl PrepareOk {
    pub fn parse(p: &[u8]) -> Option<PrepareOk> {
        if p.first() != Some(&0x00) || p.len() < 12 {
            return None;
        }
        Some(PrepareOk {
            id: u32::from_le_bytes([p[1], p[2], p[3], p[4]]),
            columns: u16::from_le_bytes([p[5], p[6]]),
            params: u16::from_le_bytes([p[7], p[8]]),
            warnings: u16::from_le_bytes([p[10], p[11]]),
        })
    }

    pub fn encode(&self) -> BytesMut {
        let mut b = BytesMut::with_capacity(12);
        b.put_u8(0x00);
        b.put_u32_le(self.id);
        b.put_u16_le(self.columns);
        b.put_u16_le(self.params);
        b.put_u8(0);
        b.put_u16_le(self.warnings);
        b
    }
}

/// The statement id a COM_STMT_* command is about (bytes 1..5 of its payload).
pub fn statement_id(payload: &[u8]) -> Option<u32> {
    let b = payload.get(1..5)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// A parsed COM_STMT_EXECUTE.
#[derive(Debug, Clone, Copy)]
pub struct Execute<'a> {
    pub id: u32,
    /// Cursor type and flags; 0 means no cursor.
    pub flags: u8,
    pub nulls: &'a [u8],
    /// Two bytes per parameter, when the client sent (new) types with this execution.
    pub types: Option<&'a [u8]>,
    pub values: &'a [u8],
}

impl<'a> Execute<'a> {
    /// `params`: the statement's parameter count, which the packet does not carry.
    pub fn parse(p: &'a [u8], params: usize) -> Result<Execute<'a>, WireError> {
        let bad = || WireError::Protocol("malformed COM_STMT_EXECUTE");
        let id = statement_id(p).ok_or_else(bad)?;
        let flags = *p.get(5).ok_or_else(bad)?;
        // iteration count: 4 bytes, always 1
        let mut pos = 10;
        if params == 0 {
            return Ok(Execute {
                id,
                flags,
                nulls: &[],
                types: None,
                values: &[],
            });
        }
        let n = params.div_ceil(8);
        let nulls = p.get(pos..pos + n).ok_or_else(bad)?;
        pos += n;
        let bound = *p.get(pos).ok_or_else(bad)?;
        pos += 1;
        let types = if bound == 1 {
            let t = p.get(pos..pos + 2 * params).ok_or_else(bad)?;
            pos += 2 * params;
            Some(t)
        } else {
            None
        };
        Ok(Execute {
            id,
            flags,
            nulls,
            types,
            values: p.get(pos..).ok_or_else(bad)?,
        })
    }

    /// The same execution for another statement id, with the parameter types always
    /// included: the backend connection may never have seen them.
    pub fn encode_for(&self, id: u32, types: &[u8]) -> BytesMut {
        let mut b =
            BytesMut::with_capacity(16 + self.nulls.len() + types.len() + self.values.len());
        b.put_u8(super::command::COM_STMT_EXECUTE);
        b.put_u32_le(id);
        b.put_u8(self.flags);
        b.put_u32_le(1);
        if !types.is_empty() {
            b.put_slice(self.nulls);
            b.put_u8(1);
            b.put_slice(types);
            b.put_slice(self.values);
        }
        b
    }
}

/// One bound parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param<'a> {
    Null,
    Int(i128),
    Float(f64),
    /// DECIMAL sent as text.
    Decimal(&'a [u8]),
    /// Strings and blobs, raw.
    Bytes(&'a [u8]),
    /// Dates and times, rendered as MySQL prints them.
    Temporal(String),
    /// Sent before with COM_STMT_SEND_LONG_DATA: the execution carries no value.
    LongData,
}

/// Decodes every parameter of an execution, given the types in force. `long` tells
/// which parameters were sent as long data (their values are not in the packet).
pub fn decode_params<'a>(
    params: usize,
    nulls: &[u8],
    types: &[u8],
    values: &'a [u8],
    long: impl Fn(usize) -> bool,
) -> Result<Vec<Param<'a>>, WireError> {
    let bad = || WireError::Protocol("malformed parameter value in COM_STMT_EXECUTE");
    let mut out = Vec::with_capacity(params);
    let mut cur = Cursor {
        buf: values,
        pos: 0,
    };
    for i in 0..params {
        let null = nulls.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0);
        let t = types.get(2 * i).copied().ok_or_else(bad)?;
        let unsigned = types.get(2 * i + 1).is_some_and(|f| f & 0x80 != 0);
        if null || t == ty::NULL {
            out.push(Param::Null);
            continue;
        }
        if long(i) {
            out.push(Param::LongData);
            continue;
        }
        let int = |b: &[u8]| -> i128 {
            let mut le = [0u8; 8];
            le[..b.len()].copy_from_slice(b);
            let u = u64::from_le_bytes(le);
            if unsigned {
                i128::from(u)
            } else {
                // sign-extend from the value's width
                let shift = 64 - 8 * b.len() as u32;
                i128::from(((u << shift) as i64) >> shift)
            }
        };
        let v = match t {
            ty::TINY => Param::Int(int(cur.take(1)?)),
            ty::SHORT | ty::YEAR => Param::Int(int(cur.take(2)?)),
            ty::LONG | ty::INT24 => Param::Int(int(cur.take(4)?)),
            ty::LONGLONG => Param::Int(int(cur.take(8)?)),
            ty::FLOAT => {
                let b = cur.take(4)?;
                Param::Float(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            }
            ty::DOUBLE => {
                let b = cur.take(8)?;
                let mut le = [0u8; 8];
                le.copy_from_slice(b);
                Param::Float(f64::from_le_bytes(le))
            }
            ty::DATE | ty::DATETIME | ty::TIMESTAMP => {
                let n = cur.take(1)?[0] as usize;
                Param::Temporal(datetime(cur.take(n)?, t == ty::DATE))
            }
            ty::TIME => {
                let n = cur.take(1)?[0] as usize;
                Param::Temporal(time(cur.take(n)?))
            }
            _ => {
                let s = cur.lenenc_str()?;
                if t == ty::DECIMAL || t == ty::NEWDECIMAL {
                    Param::Decimal(s)
                } else {
                    Param::Bytes(s)
                }
            }
        };
        out.push(v);
    }
    Ok(out)
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let s = self
            .buf
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or(WireError::Protocol(
                "parameter value cut short in COM_STMT_EXECUTE",
            ))?;
        self.pos += n;
        Ok(s)
    }

    fn lenenc_str(&mut self) -> Result<&'a [u8], WireError> {
        let bad = WireError::Protocol("bad parameter length in COM_STMT_EXECUTE");
        let (len, w) = lenenc::read_int(self.buf.get(self.pos..).unwrap_or_default()).ok_or(bad)?;
        self.pos += w;
        self.take(usize::try_from(len).unwrap_or(usize::MAX))
    }
}

fn datetime(b: &[u8], date_only: bool) -> String {
    let g = |i: usize| b.get(i).copied().unwrap_or(0);
    let year = u16::from_le_bytes([g(0), g(1)]);
    let date = format!("{year:04}-{:02}-{:02}", g(2), g(3));
    if date_only {
        return date;
    }
    let mut s = format!("{date} {:02}:{:02}:{:02}", g(4), g(5), g(6));
    if b.len() >= 11 {
        let micros = u32::from_le_bytes([g(7), g(8), g(9), g(10)]);
        if micros != 0 {
            s.push_str(&format!(".{micros:06}"));
        }
    }
    s
}

fn time(b: &[u8]) -> String {
    let g = |i: usize| b.get(i).copied().unwrap_or(0);
    let neg = g(0) == 1;
    let days = u32::from_le_bytes([g(1), g(2), g(3), g(4)]);
    let hours = days * 24 + u32::from(g(5));
    let mut s = format!(
        "{}{hours:02}:{:02}:{:02}",
        if neg { "-" } else { "" },
        g(6),
        g(7)
    );
    if b.len() >= 12 {
        let micros = u32::from_le_bytes([g(8), g(9), g(10), g(11)]);
        if micros != 0 {
            s.push_str(&format!(".{micros:06}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_kind_of_parameter() {
        let mut v = BytesMut::new();
        v.put_i64_le(-5); // LONGLONG
        v.put_u8(200); // TINY unsigned
        lenenc::put_str(&mut v, b"abc"); // VAR_STRING
        v.put_u8(4);
        v.put_u16_le(2024);
        v.put_u8(2);
        v.put_u8(29); // DATE
        v.put_f64_le(1.5); // DOUBLE
        v.put_i16_le(-2); // SHORT
        let types = [
            ty::LONGLONG,
            0,
            ty::TINY,
            0x80,
            0xfd,
            0,
            ty::DATE,
            0,
            ty::DOUBLE,
            0,
            ty::SHORT,
            0,
            ty::LONG,
            0,
        ];
        let nulls = [0b0100_0000u8];
        let p = decode_params(7, &nulls, &types, &v, |_| false).unwrap();
        assert_eq!(
            p,
            [
                Param::Int(-5),
                Param::Int(200),
                Param::Bytes(b"abc"),
                Param::Temporal("2024-02-29".into()),
                Param::Float(1.5),
                Param::Int(-2),
                Param::Null,
            ]
        );
        assert!(decode_params(1, &[0], &[ty::LONGLONG, 0], &[1, 2], |_| false).is_err());
        assert_eq!(
            decode_params(1, &[0], &[0xfb, 0], &[], |i| i == 0).unwrap(),
            [Param::LongData]
        );
    }

    #[test]
    fn execute_round_trips_with_types() {
        let mut p = BytesMut::new();
        p.put_u8(super::super::command::COM_STMT_EXECUTE);
        p.put_u32_le(7);
        p.put_u8(0);
        p.put_u32_le(1);
        p.put_u8(0); // nulls
        p.put_u8(0); // types not re-sent
        p.put_i64_le(42);
        let e = Execute::parse(&p, 1).unwrap();
        assert_eq!((e.id, e.types), (7, None));
        let out = e.encode_for(99, &[ty::LONGLONG, 0]);
        let again = Execute::parse(&out, 1).unwrap();
        assert_eq!(again.id, 99);
        assert_eq!(again.types, Some(&[ty::LONGLONG, 0][..]));
        assert_eq!(again.values, &42i64.to_le_bytes()[..]);
    }
}
