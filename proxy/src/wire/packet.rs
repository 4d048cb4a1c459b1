//! MySQL packet framing: a 3-byte little-endian length, a sequence id, the payload.
//! Payloads of 16 MiB - 1 bytes or more are split; a payload that is an exact multiple
//! of that size ends with an empty packet.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::WireError;

/// Largest payload of one physical packet.
pub const MAX_PAYLOAD: usize = 0xFF_FFFF;
pub const HEADER: usize = 4;

/// One logical packet: continuations already joined.
#[derive(Debug, Clone)]
pub struct Packet {
    /// Sequence id of the last physical packet, so a reply continues from `seq + 1`.
    pub seq: u8,
    pub payload: Bytes,
}

/// Reads length of a physical packet header.
pub fn payload_len(header: &[u8]) -> usize {
    header[0] as usize | (header[1] as usize) << 8 | (header[2] as usize) << 16
}

/// Buffered reader of logical packets. One per socket; keeps bytes read ahead.
///
/// Cancel-safe: everything read so far lives in the reader, not in the future, so a
/// read abandoned in a `select!` (an idle session woken for something else) loses
/// nothing and the next read goes on where it stopped.
#[derive(Debug)]
pub struct PacketReader {
    pub buf: BytesMut,
    /// The chunks of a packet of 16 MiB or more read so far.
    joined: Option<BytesMut>,
}

impl Default for PacketReader {
    fn default() -> Self {
        PacketReader {
            buf: BytesMut::with_capacity(16 * 1024),
            joined: None,
        }
    }
}

impl PacketReader {
    /// Reads one logical packet. `Ok(None)` on a clean EOF before any byte of it.
    /// `max` bounds the joined payload so a hostile peer cannot make us buffer without limit.
    pub async fn read<R: AsyncRead + Unpin>(
        &mut self,
        src: &mut R,
        max: usize,
    ) -> Result<Option<Packet>, WireError> {
        loop {
            while self.buf.len() < HEADER {
                if self.fill(src).await? == 0 {
                    return if self.buf.is_empty() && self.joined.is_none() {
                        Ok(None)
                    } else {
                        Err(WireError::UnexpectedEof)
                    };
                }
            }
            let len = payload_len(&self.buf);
            let seq = self.buf[3];
            let total = self.joined.as_ref().map_or(0, |j| j.len()) + len;
            if total > max {
                return Err(WireError::TooLarge { len: total, max });
            }
            if self.buf.capacity() < HEADER + len {
                self.buf.reserve(HEADER + len - self.buf.len());
            }
            while self.buf.len() < HEADER + len {
                if self.fill(src).await? == 0 {
                    return Err(WireError::UnexpectedEof);
                }
            }
            self.buf.advance(HEADER);
            let chunk = self.buf.split_to(len);
            let done = len < MAX_PAYLOAD;
            match (&mut self.joined, done) {
                (None, true) => {
                    return Ok(Some(Packet {
                        seq,
                        payload: chunk.freeze(),
                    }))
                }
                (None, false) => self.joined = Some(chunk),
                (Some(j), _) => j.extend_from_slice(&chunk),
            }
            if done {
                return Ok(Some(Packet {
                    seq,
                    payload: self.joined.take().unwrap_or_default().freeze(),
                }));
            }
        }
    }

    async fn fill<R: AsyncRead + Unpin>(&mut self, src: &mut R) -> Result<usize, WireError> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        Ok(src.read_buf(&mut self.buf).await?)
    }
}

/// Appends `payload` to `out` framed as one logical packet starting at `*seq`,
/// advancing `*seq` past it.
pub fn write_packet(out: &mut BytesMut, seq: &mut u8, payload: &[u8]) {
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_PAYLOAD);
        out.reserve(HEADER + n);
        out.put_uint_le(n as u64, 3);
        out.put_u8(*seq);
        *seq = seq.wrapping_add(1);
        out.put_slice(&rest[..n]);
        rest = &rest[n..];
        if n < MAX_PAYLOAD {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn roundtrip(len: usize) {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut out = BytesMut::new();
        let mut seq = 7;
        write_packet(&mut out, &mut seq, &payload);
        let physical = len / MAX_PAYLOAD + 1;
        assert_eq!(seq as usize, 7 + physical);
        assert_eq!(out.len(), len + HEADER * physical);
        let mut reader = PacketReader::default();
        let mut src = &out[..];
        let p = reader.read(&mut src, usize::MAX).await.unwrap().unwrap();
        assert_eq!(p.payload.len(), len);
        assert!(p.payload[..] == payload[..]);
        assert_eq!(p.seq as usize, 7 + physical - 1);
        assert!(reader.read(&mut src, usize::MAX).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn frames_small_large_and_exact_multiples() {
        for len in [
            0,
            1,
            1000,
            MAX_PAYLOAD - 1,
            MAX_PAYLOAD,
            MAX_PAYLOAD + 1,
            2 * MAX_PAYLOAD,
        ] {
            roundtrip(len).await;
        }
    }

    #[tokio::test]
    async fn bounds_and_truncation() {
        let mut out = BytesMut::new();
        write_packet(&mut out, &mut 0, &[1u8; 100]);
        let mut reader = PacketReader::default();
        assert!(matches!(
            reader.read(&mut &out[..], 99).await,
            Err(WireError::TooLarge { len: 100, max: 99 })
        ));
        let mut reader = PacketReader::default();
        assert!(matches!(
            reader.read(&mut &out[..50], 1000).await,
            Err(WireError::UnexpectedEof)
        ));
    }
}
