//! The write half shared by the stream adapters that rewrite what the session writes
//! before it reaches the socket (the compressed protocol, binary result rows).
//!
//! A write is rewritten whole once, and reported done only when the rewritten bytes
//! have reached the inner stream: the session never flushes, and a slow client holds
//! the session back instead of filling shardgate's memory. After `Pending` the
//! caller comes back with the same bytes, which are already rewritten.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWrite;

/// Rewritten bytes on their way to the inner stream, and how much of the caller's
/// buffer they stand for.
#[derive(Default)]
pub struct Outgoing {
    pub pending: BytesMut,
    pending_len: usize,
}

/// An adapter whose writes are rewritten.
pub trait Rewrites {
    type Inner: AsyncWrite + Unpin;
    /// The inner stream, and the bytes on their way to it.
    fn outgoing(&mut self) -> (&mut Self::Inner, &mut Outgoing);
    /// Rewrites `buf` into [`Outgoing::pending`]; an unfinished tail may wait for
    /// the write that completes it.
    fn accept(&mut self, buf: &[u8]) -> io::Result<()>;
}

pub fn poll_write<R: Rewrites>(
    r: &mut R,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<io::Result<usize>> {
    if r.outgoing().1.pending_len == 0 {
        ready!(poll_drain(r, cx))?;
        r.accept(buf)?;
        r.outgoing().1.pending_len = buf.len();
    }
    ready!(poll_drain(r, cx))?;
    Poll::Ready(Ok(std::mem::take(&mut r.outgoing().1.pending_len)))
}

pub fn poll_flush<R: Rewrites>(r: &mut R, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    ready!(poll_drain(r, cx))?;
    Pin::new(r.outgoing().0).poll_flush(cx)
}

pub fn poll_shutdown<R: Rewrites>(r: &mut R, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    ready!(poll_drain(r, cx))?;
    Pin::new(r.outgoing().0).poll_shutdown(cx)
}

fn poll_drain<R: Rewrites>(r: &mut R, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    let (inner, out) = r.outgoing();
    while !out.pending.is_empty() {
        let n = ready!(Pin::new(&mut *inner).poll_write(cx, &out.pending))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        out.pending.advance(n);
    }
    Poll::Ready(Ok(()))
}

/// `AsyncWrite` for an adapter `$t<S>` that implements [`Rewrites`].
macro_rules! rewriting_writes {
    ($t:ident) => {
        impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for $t<S> {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::wire::outgoing::poll_write(self.get_mut(), cx, buf)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                $crate::wire::outgoing::poll_flush(self.get_mut(), cx)
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                $crate::wire::outgoing::poll_shutdown(self.get_mut(), cx)
            }
        }
    };
}
pub(crate) use rewriting_writes;
