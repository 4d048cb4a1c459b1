//! The compressed protocol (CLIENT_COMPRESS): MySQL packets travel inside frames of a
//! 7-byte header (compressed length, sequence id, uncompressed length; 0 when the
//! frame is stored as is) and a zlib stream.
//!
//! The adapter sits between a session and its socket, so everything above it reads
//! and writes plain packets. Frames hold whole packets where they can (some clients
//! expect a packet to span at most two frames), so the unfinished tail of a write
//! waits for the write that completes it; the session always completes its packets
//! before it waits for the client. Anything else is reported written only once its
//! frame has reached the socket: the session never flushes.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::outgoing::{self, Outgoing, Rewrites};

const HEADER: usize = 7;
/// Largest frame payload.
const MAX_FRAME: usize = 0xFF_FFFF;
/// Frames smaller than this are sent uncompressed, as MySQL does.
const MIN_COMPRESS: usize = 50;

pub struct Compressed<S> {
    inner: S,
    /// Raw frames read from the socket, not yet complete.
    raw: BytesMut,
    /// Decompressed bytes not yet read by the session.
    plain: BytesMut,
    /// The start of a packet whose rest has not been written yet.
    held: BytesMut,
    /// Rewritten bytes on their way to the socket.
    out: Outgoing,
    /// Frames follow the sequence of the last frame received.
    next_seq: u8,
    /// Largest uncompressed frame accepted (the session's packet limit).
    max: usize,
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn len3(b: &[u8]) -> usize {
    b[0] as usize | (b[1] as usize) << 8 | (b[2] as usize) << 16
}

fn put3(out: &mut BytesMut, v: usize) {
    out.extend_from_slice(&[v as u8, (v >> 8) as u8, (v >> 16) as u8]);
}

impl<S> Compressed<S> {
    pub fn new(inner: S, max: usize) -> Self {
        Compressed {
            inner,
            raw: BytesMut::with_capacity(16 * 1024),
            plain: BytesMut::new(),
            held: BytesMut::new(),
            out: Outgoing::default(),
            next_seq: 0,
            max,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Takes one whole frame out of `raw`, if there is one.
    fn take_frame(&mut self) -> io::Result<bool> {
        if self.raw.len() < HEADER {
            return Ok(false);
        }
        let compressed = len3(&self.raw);
        let seq = self.raw[3];
        let uncompressed = len3(&self.raw[4..]);
        if self.raw.len() < HEADER + compressed {
            return Ok(false);
        }
        if uncompressed > self.max.max(MAX_FRAME) {
            return Err(invalid("compressed frame larger than max_allowed_packet"));
        }
        self.raw.advance(HEADER);
        let body = self.raw.split_to(compressed);
        self.next_seq = seq.wrapping_add(1);
        if uncompressed == 0 {
            self.plain.extend_from_slice(&body);
        } else {
            let mut out = Vec::with_capacity(uncompressed);
            ZlibDecoder::new(&body[..])
                .take(uncompressed as u64 + 1)
                .read_to_end(&mut out)?;
            if out.len() != uncompressed {
                return Err(invalid(
                    "compressed frame does not inflate to its stated length",
                ));
            }
            self.plain.extend_from_slice(&out);
        }
        Ok(true)
    }

    /// Adds written bytes: whole packets become frames, a packet's unfinished tail
    /// is held for the next write.
    fn accept(&mut self, buf: &[u8]) -> io::Result<()> {
        self.held.extend_from_slice(buf);
        let mut frame_start = 0;
        let mut pos = 0;
        while let Some(header) = self.held.get(pos..pos + 4) {
            let end = pos + 4 + len3(header);
            if end > self.held.len() {
                break;
            }
            if end - frame_start > MAX_FRAME && pos > frame_start {
                // This packet would overflow the frame: close the frame before it.
                let frame = self.held[frame_start..pos].to_vec();
                self.frame(&frame)?;
                frame_start = pos;
            }
            pos = end;
        }
        if pos > frame_start {
            let frame = self.held[frame_start..pos].to_vec();
            self.frame(&frame)?;
        }
        self.held.advance(pos);
        Ok(())
    }

    /// Frames `data` into `pending`: one frame, or 16 MiB slices of one big packet.
    fn frame(&mut self, data: &[u8]) -> io::Result<()> {
        for chunk in data.chunks(MAX_FRAME) {
            let seq = self.next_seq;
            self.next_seq = self.next_seq.wrapping_add(1);
            if chunk.len() < MIN_COMPRESS {
                put3(&mut self.out.pending, chunk.len());
                self.out.pending.extend_from_slice(&[seq, 0, 0, 0]);
                self.out.pending.extend_from_slice(chunk);
                continue;
            }
            let mut z = ZlibEncoder::new(Vec::with_capacity(chunk.len() / 2), Compression::fast());
            z.write_all(chunk)?;
            let body = z.finish()?;
            if body.len() < chunk.len() {
                put3(&mut self.out.pending, body.len());
                self.out.pending.extend_from_slice(&[seq]);
                put3(&mut self.out.pending, chunk.len());
                self.out.pending.extend_from_slice(&body);
            } else {
                // Incompressible: stored as is.
                put3(&mut self.out.pending, chunk.len());
                self.out.pending.extend_from_slice(&[seq, 0, 0, 0]);
                self.out.pending.extend_from_slice(chunk);
            }
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Compressed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.plain.is_empty() {
            if this.take_frame()? {
                continue;
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut rb = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                if this.raw.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            this.raw.extend_from_slice(rb.filled());
        }
        let n = buf.remaining().min(this.plain.len());
        buf.put_slice(&this.plain[..n]);
        this.plain.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> Rewrites for Compressed<S> {
    type Inner = S;

    fn outgoing(&mut self) -> (&mut S, &mut Outgoing) {
        (&mut self.inner, &mut self.out)
    }

    fn accept(&mut self, buf: &[u8]) -> io::Result<()> {
        Compressed::accept(self, buf)
    }
}

outgoing::rewriting_writes!(Compressed);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn frames_round_trip_small_and_large() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let mut w = Compressed::new(a, 1 << 30);
        let mut r = Compressed::new(b, 1 << 30);
        // Packets: a small one, then a large one written in three pieces.
        let mut small = vec![4, 0, 0, 0];
        small.extend_from_slice(b"tiny");
        let body: Vec<u8> = (0..200_000).map(|i| (i % 7) as u8).collect();
        let mut large = vec![0x40, 0x0d, 0x03, 1];
        large.extend_from_slice(&body);
        let all: Vec<u8> = small.iter().chain(&large).copied().collect();
        let writer = tokio::spawn(async move {
            w.write_all(&small).await.unwrap();
            w.write_all(&large[..10]).await.unwrap();
            assert_eq!(w.held.len(), 10, "an unfinished packet waits");
            w.write_all(&large[10..150_000]).await.unwrap();
            w.write_all(&large[150_000..]).await.unwrap();
            w
        });
        let mut got = vec![0u8; all.len()];
        r.read_exact(&mut got).await.unwrap();
        let w = writer.await.unwrap();
        assert!(got == all);
        assert_eq!(w.next_seq, 2, "one frame per whole packet written");
        assert_eq!(r.next_seq, 2);
    }

    #[tokio::test]
    async fn a_frame_that_lies_about_its_length_is_an_error() {
        let (mut a, b) = tokio::io::duplex(1024);
        let mut r = Compressed::new(b, 1 << 20);
        let mut z = ZlibEncoder::new(Vec::new(), Compression::fast());
        z.write_all(&[7u8; 100]).unwrap();
        let body = z.finish().unwrap();
        let mut frame = BytesMut::new();
        put3(&mut frame, body.len());
        frame.extend_from_slice(&[0]);
        put3(&mut frame, 99);
        frame.extend_from_slice(&body);
        a.write_all(&frame).await.unwrap();
        let mut out = [0u8; 100];
        assert!(r.read_exact(&mut out).await.is_err());
    }
}
