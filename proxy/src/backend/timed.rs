//! A backend socket that cannot wait forever. A backend can stop answering without
//! closing: its host gone (no RST ever comes), the server process frozen, a network
//! path that swallows packets. TCP keepalive finds a dead host; for the rest a
//! statement would hang as long as the client waits, holding its pool connection. Here
//! every read or write that makes no progress for the configured time fails, so the
//! statement ends with an error naming the backend and the connection is dropped.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::link::{BackendTls, Link};

/// How long the kernel waits on an idle connection before probing, and between
/// probes: a backend host that vanished while shardgate waits for its answer is
/// noticed in about half a minute, whatever `read_timeout_ms` says.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_PROBES: u32 = 3;

/// Turns on keepalive on a backend socket. With a read timeout, data the backend does
/// not acknowledge for that long fails the connection too (TCP_USER_TIMEOUT); without
/// one it may wait, as a backend legitimately blocked on a lock stops reading (a LOAD
/// DATA behind a row lock), and the kernel's own retransmission limit applies.
pub fn tune(stream: &TcpStream, read_timeout: Option<Duration>) -> io::Result<()> {
    let sock = socket2::SockRef::from(stream);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    sock.set_tcp_keepalive(&keepalive)?;
    sock.set_tcp_user_timeout(read_timeout)
}

/// A stream whose reads and writes fail with `TimedOut` after `limit` without
/// progress. The clock runs only while an operation waits: a connection idle in the
/// pool, or one whose client is slow to take rows, is never timed out.
#[derive(Debug)]
pub struct TimedStream {
    inner: Link,
    limit: Option<Duration>,
    read_timer: Timer,
    write_timer: Timer,
}

/// A deadline armed when an operation starts to wait and disarmed when it makes
/// progress. Its timer is allocated once and reset after, not made per wait.
#[derive(Debug, Default)]
struct Timer {
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl TimedStream {
    pub fn new(inner: TcpStream, limit: Option<Duration>) -> TimedStream {
        TimedStream {
            inner: Link::Plain(inner),
            limit,
            read_timer: Timer::default(),
            write_timer: Timer::default(),
        }
    }

    /// The TCP socket under it (`None` after a failed TLS handshake).
    pub fn tcp(&self) -> Option<&TcpStream> {
        self.inner.tcp()
    }

    /// Switches the connection to TLS; the handshake is timed as a whole by the
    /// login's own timeout.
    pub async fn start_tls(&mut self, tls: &BackendTls, address: &str) -> io::Result<()> {
        self.inner.start_tls(tls, address).await
    }

    /// A new command starts a new wait: a timer left by an operation its caller gave
    /// up on must not cut the next one short.
    pub fn restart_clock(&mut self) {
        self.read_timer.armed = false;
        self.write_timer.armed = false;
    }
}

fn expired(
    timer: &mut Timer,
    limit: Option<Duration>,
    cx: &mut Context<'_>,
    what: &str,
) -> Poll<io::Error> {
    let Some(limit) = limit else {
        return Poll::Pending;
    };
    let deadline = tokio::time::Instant::now() + limit;
    let sleep = match (&mut timer.sleep, timer.armed) {
        (Some(sleep), true) => sleep,
        (Some(sleep), false) => {
            sleep.as_mut().reset(deadline);
            sleep
        }
        (slot @ None, _) => slot.insert(Box::pin(tokio::time::sleep_until(deadline))),
    };
    timer.armed = true;
    match sleep.as_mut().poll(cx) {
        Poll::Ready(()) => {
            timer.armed = false;
            Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the backend {what} for {} ms (pool.read_timeout_ms)",
                    limit.as_millis()
                ),
            ))
        }
        Poll::Pending => Poll::Pending,
    }
}

impl AsyncRead for TimedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.read_timer.armed = false;
                Poll::Ready(r)
            }
            Poll::Pending => expired(&mut this.read_timer, this.limit, cx, "sent nothing").map(Err),
        }
    }
}

impl AsyncWrite for TimedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.write_timer.armed = false;
                Poll::Ready(r)
            }
            Poll::Pending => {
                expired(&mut this.write_timer, this.limit, cx, "took no data").map(Err)
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
