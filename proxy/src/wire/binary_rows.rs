//! Text-protocol result sets rewritten as binary-protocol ones, on their way to the
//! client: a prepared execution that shardgate answers through its text path (a
//! read over several shards, merged or gathered) reaches the client as the answer to
//! COM_STMT_EXECUTE it asked for.
//!
//! The adapter sits between the session and its stream while such an execution
//! runs. Column definitions pass unchanged (the binary protocol has the same ones);
//! each row is re-encoded by its columns' types: integers and floating-point values
//! as their fixed-width little-endian forms, dates and times as their length-prefixed
//! fields, everything else as the same length-prefixed bytes. Packets are renumbered
//! in order, and the unfinished tail of a write waits for the write that completes
//! it, as in the compressed protocol's adapter.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::outgoing::{self, Outgoing, Rewrites};

use super::coltype as ty;
use super::{coldef, generic, lenenc};

const MAX_PAYLOAD: usize = 0xFF_FFFF;
/// `UNSIGNED_FLAG` of a column definition.
const UNSIGNED: u16 = 0x20;

#[derive(Debug, Clone, Copy)]
struct Column {
    ty: u8,
    unsigned: bool,
}

#[derive(Debug)]
enum Phase {
    /// Before a result: OK, ERR or a column count.
    Head,
    Definitions(u64),
    DefinitionsEnd,
    Rows,
}

pub struct BinaryRows<S> {
    inner: S,
    deprecate_eof: bool,
    phase: Phase,
    columns: Vec<Column>,
    /// Bytes written that do not make a whole packet yet.
    held: BytesMut,
    /// The payload of a packet longer than one frame, being put together.
    long: BytesMut,
    /// Rewritten bytes on their way to the socket.
    out: Outgoing,
    /// The sequence id of the next packet out; the first packet written sets it.
    seq: Option<u8>,
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl<S> BinaryRows<S> {
    pub fn new(inner: S, deprecate_eof: bool) -> Self {
        BinaryRows {
            inner,
            deprecate_eof,
            phase: Phase::Head,
            columns: Vec::new(),
            held: BytesMut::new(),
            long: BytesMut::new(),
            out: Outgoing::default(),
            seq: None,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The stream back; anything written but not a whole packet is dropped.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn accept(&mut self, buf: &[u8]) -> io::Result<()> {
        self.held.extend_from_slice(buf);
        while let Some(header) = self.held.get(..4) {
            let len = header[0] as usize | (header[1] as usize) << 8 | (header[2] as usize) << 16;
            let seq = header[3];
            if self.held.len() < 4 + len {
                break;
            }
            self.seq.get_or_insert(seq);
            self.long.extend_from_slice(&self.held[4..4 + len]);
            self.held.advance(4 + len);
            if len == MAX_PAYLOAD {
                continue;
            }
            let payload = std::mem::take(&mut self.long);
            let out = self.convert(payload)?;
            self.emit(&out);
        }
        Ok(())
    }

    /// Frames `payload` into `pending`, split at 16 MiB as the protocol wants.
    fn emit(&mut self, payload: &[u8]) {
        let mut rest = payload;
        loop {
            let n = rest.len().min(MAX_PAYLOAD);
            let seq = self.seq.unwrap_or(0);
            self.seq = Some(seq.wrapping_add(1));
            self.out
                .pending
                .extend_from_slice(&[n as u8, (n >> 8) as u8, (n >> 16) as u8, seq]);
            self.out.pending.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if n < MAX_PAYLOAD {
                break;
            }
        }
    }

    fn convert(&mut self, payload: BytesMut) -> io::Result<BytesMut> {
        let first = payload.first().copied();
        match self.phase {
            Phase::Head => {
                if !matches!(first, Some(generic::OK | generic::ERR)) {
                    let (count, _) = lenenc::read_int(&payload)
                        .ok_or_else(|| invalid("a result without a column count"))?;
                    self.columns.clear();
                    self.phase = Phase::Definitions(count);
                    if count == 0 {
                        self.phase = Phase::Rows;
                    }
                }
                Ok(payload)
            }
            Phase::Definitions(left) => {
                let (ty, flags) = coldef::type_and_flags(&payload)
                    .ok_or_else(|| invalid("a malformed column definition"))?;
                self.columns.push(Column {
                    ty,
                    unsigned: flags & UNSIGNED != 0,
                });
                self.phase = match left {
                    1 if self.deprecate_eof => Phase::Rows,
                    1 => Phase::DefinitionsEnd,
                    n => Phase::Definitions(n - 1),
                };
                Ok(payload)
            }
            Phase::DefinitionsEnd => {
                self.phase = Phase::Rows;
                Ok(payload)
            }
            Phase::Rows => {
                let end = first == Some(generic::EOF)
                    && generic::ends_rows(payload.len(), self.deprecate_eof);
                if first == Some(generic::ERR) || end {
                    self.phase = Phase::Head;
                    return Ok(payload);
                }
                binary_row(&payload, &self.columns).ok_or_else(|| invalid("a malformed text row"))
            }
        }
    }
}

/// A text row (length-prefixed strings, 0xFB for NULL) as a binary one: a 0x00
/// header, the NULL bitmap (offset 2), then the non-NULL values by type.
fn binary_row(text: &[u8], columns: &[Column]) -> Option<BytesMut> {
    let mut out = BytesMut::with_capacity(text.len() + 16);
    out.extend_from_slice(&[0]);
    let bitmap_at = out.len();
    out.extend(std::iter::repeat_n(0u8, (columns.len() + 9) / 8));
    let mut pos = 0usize;
    for (i, c) in columns.iter().enumerate() {
        if text.get(pos) == Some(&0xFB) {
            pos += 1;
            let bit = i + 2;
            out[bitmap_at + bit / 8] |= 1 << (bit % 8);
            continue;
        }
        let (len, n) = lenenc::read_int(text.get(pos..)?)?;
        let start = pos + n;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        let v = text.get(start..end)?;
        pos = end;
        value(&mut out, *c, v)?;
    }
    (pos == text.len()).then_some(out)
}

fn value(out: &mut BytesMut, c: Column, v: &[u8]) -> Option<()> {
    let s = std::str::from_utf8(v).ok();
    let int = |width: usize, out: &mut BytesMut| -> Option<()> {
        let s = s?;
        let bytes = if c.unsigned {
            s.parse::<u64>().ok()?.to_le_bytes()
        } else {
            s.parse::<i64>().ok()?.to_le_bytes()
        };
        out.extend_from_slice(&bytes[..width]);
        Some(())
    };
    match c.ty {
        ty::TINY => int(1, out)?,
        ty::SHORT | ty::YEAR => int(2, out)?,
        ty::LONG | ty::INT24 => int(4, out)?,
        ty::LONGLONG => int(8, out)?,
        ty::FLOAT => out.extend_from_slice(&s?.parse::<f32>().ok()?.to_le_bytes()),
        ty::DOUBLE => out.extend_from_slice(&s?.parse::<f64>().ok()?.to_le_bytes()),
        ty::DATE | ty::NEWDATE | ty::DATETIME | ty::TIMESTAMP => datetime(out, s?)?,
        ty::TIME => time(out, s?)?,
        _ => {
            lenenc::put_int(out, v.len() as u64);
            out.extend_from_slice(v);
        }
    }
    Some(())
}

/// `YYYY-MM-DD[ hh:mm:ss[.ffffff]]` as 0, 4, 7 or 11 bytes.
fn datetime(out: &mut BytesMut, s: &str) -> Option<()> {
    let (date, clock) = s.split_once(' ').unwrap_or((s, ""));
    let mut d = date.splitn(3, '-').map(|p| p.parse::<u32>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (h, mi, sec, micro) = if clock.is_empty() {
        (0, 0, 0, 0)
    } else {
        clock_fields(clock)?
    };
    let fields = [y, m, day, h, mi, sec, micro];
    let len = if micro != 0 {
        11
    } else if h != 0 || mi != 0 || sec != 0 {
        7
    } else if y != 0 || m != 0 || day != 0 {
        4
    } else {
        0
    };
    out.extend_from_slice(&[len as u8]);
    if len >= 4 {
        out.extend_from_slice(&(fields[0] as u16).to_le_bytes());
        out.extend_from_slice(&[fields[1] as u8, fields[2] as u8]);
    }
    if len >= 7 {
        out.extend_from_slice(&[fields[3] as u8, fields[4] as u8, fields[5] as u8]);
    }
    if len == 11 {
        out.extend_from_slice(&micro.to_le_bytes());
    }
    Some(())
}

/// `[-]hhh:mm:ss[.ffffff]` as 0, 8 or 12 bytes (sign, days, hours, minutes, seconds,
/// microseconds).
fn time(out: &mut BytesMut, s: &str) -> Option<()> {
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (hours, mi, sec, micro) = clock_fields(s)?;
    let (days, h) = (hours / 24, hours % 24);
    let len = if micro != 0 {
        12
    } else if hours != 0 || mi != 0 || sec != 0 {
        8
    } else {
        0
    };
    out.extend_from_slice(&[len as u8]);
    if len >= 8 {
        out.extend_from_slice(&[u8::from(negative)]);
        out.extend_from_slice(&days.to_le_bytes());
        out.extend_from_slice(&[h as u8, mi as u8, sec as u8]);
    }
    if len == 12 {
        out.extend_from_slice(&micro.to_le_bytes());
    }
    Some(())
}

/// `h:mm:ss[.f…]` → hours, minutes, seconds, microseconds.
fn clock_fields(s: &str) -> Option<(u32, u32, u32, u32)> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut p = whole.splitn(3, ':').map(|x| x.parse::<u32>().ok());
    let (h, m, sec) = (p.next()??, p.next()??, p.next()??);
    let micro = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
        digits.parse().ok()?
    };
    Some((h, m, sec, micro))
}

impl<S: AsyncRead + Unpin> AsyncRead for BinaryRows<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> Rewrites for BinaryRows<S> {
    type Inner = S;

    fn outgoing(&mut self) -> (&mut S, &mut Outgoing) {
        (&mut self.inner, &mut self.out)
    }

    fn accept(&mut self, buf: &[u8]) -> io::Result<()> {
        BinaryRows::accept(self, buf)
    }
}

outgoing::rewriting_writes!(BinaryRows);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
        let n = payload.len();
        let mut p = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
        p.extend_from_slice(payload);
        p
    }

    fn coldef(t: u8, flags: u16) -> Vec<u8> {
        let mut p = Vec::new();
        for s in ["def", "db", "t", "t", "c", "c"] {
            p.push(s.len() as u8);
            p.extend_from_slice(s.as_bytes());
        }
        p.push(0x0c);
        p.extend_from_slice(&[33, 0, 10, 0, 0, 0, t]);
        p.extend_from_slice(&flags.to_le_bytes());
        p.extend_from_slice(&[0, 0, 0]);
        p
    }

    fn text_row(values: &[Option<&str>]) -> Vec<u8> {
        let mut p = Vec::new();
        for v in values {
            match v {
                None => p.push(0xFB),
                Some(s) => {
                    p.push(s.len() as u8);
                    p.extend_from_slice(s.as_bytes());
                }
            }
        }
        p
    }

    #[tokio::test]
    async fn text_rows_become_binary_rows() {
        let types = [
            (ty::LONGLONG, 0),
            (ty::TINY, UNSIGNED),
            (ty::DOUBLE, 0),
            (ty::VAR_STRING, 0),
            (ty::DATETIME, 0),
            (ty::TIME, 0),
            (ty::DATE, 0),
        ];
        let mut input = packet(1, &[types.len() as u8]);
        for (i, (t, f)) in types.iter().enumerate() {
            input.extend(packet(2 + i as u8, &coldef(*t, *f)));
        }
        let row = text_row(&[
            Some("-2"),
            Some("200"),
            Some("0.5"),
            Some("é"),
            Some("2024-02-29 12:30:00.25"),
            Some("-26:00:01"),
            None,
        ]);
        input.extend(packet(9, &row));
        input.extend(packet(10, &[0xFE, 0, 0, 2, 0, 0, 0]));
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut w = BinaryRows::new(a, true);
        // In two pieces: the cut inside the row waits for the rest.
        w.write_all(&input[..input.len() - 12]).await.unwrap();
        w.write_all(&input[input.len() - 12..]).await.unwrap();
        drop(w);
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        let header_and_defs = input.len() - (4 + row.len()) - 11;
        assert_eq!(got[..header_and_defs], input[..header_and_defs]);
        let rest = &got[header_and_defs..];
        let mut want = vec![0u8, 0, 0b0000_0001];
        want.extend_from_slice(&(-2i64).to_le_bytes());
        want.push(200);
        want.extend_from_slice(&0.5f64.to_le_bytes());
        want.extend_from_slice(&[2, 0xC3, 0xA9]);
        want.extend_from_slice(&[11, 0xE8, 0x07, 2, 29, 12, 30, 0]);
        want.extend_from_slice(&250_000u32.to_le_bytes());
        want.extend_from_slice(&[8, 1, 1, 0, 0, 0, 2, 0, 1]);
        assert_eq!(rest[3], 9, "sequence kept");
        assert_eq!(&rest[4..4 + want.len()], want.as_slice());
        // The end of rows passes unchanged, renumbered after the row.
        assert_eq!(
            &rest[4 + want.len()..],
            &packet(10, &[0xFE, 0, 0, 2, 0, 0, 0])[..]
        );
    }
}
