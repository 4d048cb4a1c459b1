//! Entry points for the fuzzers: each takes arbitrary bytes and drives one part of
//! shardgate that reads input it does not control (a client's packets and TLS
//! records, a backend's answers, SQL text and prepared parameters, shards' rows, a
//! config file). None may panic, hang or allocate without bound on any input.
//!
//! `fuzz/` runs them under libFuzzer (`scripts/fuzz`); `cargo test` runs their short
//! seeded form: the seeds below, every input a fuzzer ever crashed on
//! (`fuzz/regressions/<target>/`), and a few thousand seeded mutations of them.

mod backend;
mod client;
mod route;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use backend::backend_answer;
pub use client::{client_packets, tls_hello};
pub use route::{merge_rows, route_sql};

/// A fuzz target: any bytes in, nothing out; it must return.
pub type Target = fn(&[u8]);

/// Every target, by the name its fuzzer and corpus directory have.
pub const TARGETS: [(&str, Target); 6] = [
    ("client_packets", client_packets),
    ("tls_hello", tls_hello),
    ("backend_answer", backend_answer),
    ("route_sql", route_sql),
    ("merge_rows", merge_rows),
    ("config", config),
];

/// A config file's text, parsed and validated as at start.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::config::Config::from_toml(&text, "fuzz");
}

/// Where the seeds come from: real packets and statements, made by shardgate's own
/// encoders, so that mutations start from inputs that get far.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "client_packets" => client::seeds(),
        "tls_hello" => vec![client::tls_client_hello()],
        "backend_answer" => backend::seeds(),
        "route_sql" => route::SQL.iter().map(|s| s.as_bytes().to_vec()).collect(),
        "merge_rows" => route::merge_seeds(),
        "config" => vec![
            include_bytes!("../../../router/tests/common/cluster.toml").to_vec(),
            CONFIG_SEED.as_bytes().to_vec(),
        ],
        _ => Vec::new(),
    }
}

const CONFIG_SEED: &str = "[server]\nmax_connections = 10\nlogin_delay_ms = 5\n\
    [pool]\nread_timeout_ms = 100\n[[users]]\nname = \"a\"\n\
    password_native_hash = \"*14E65567ABDB5135D0CFD9A70B3032C179A49EE7\"\n\
    max_user_connections = 2\n[nodes.n]\nprimary = \"127.0.0.1:1\"\nuser = \"u\"\n\
    [schemas.s]\nnode = \"n\"\n";

/// An in-memory peer: reads come from `input`, at most `step` bytes at a time (so
/// that every place a packet can be cut is tried), and writes are counted, not kept.
/// Nothing ever waits, so the futures driving it finish at their first poll.
struct Mem<'a> {
    input: &'a [u8],
    step: usize,
    written: usize,
}

impl<'a> Mem<'a> {
    fn new(input: &'a [u8], step: usize) -> Mem<'a> {
        Mem {
            input,
            step: step.max(1),
            written: 0,
        }
    }
}

impl AsyncRead for Mem<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.step.min(self.input.len()).min(buf.remaining());
        buf.put_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Mem<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.written += buf.len();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The first byte steers the target (chunk sizes, flags); the rest is its input.
fn steer(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) => (b, rest),
        None => (0, data),
    }
}

#[cfg(test)]
mod tests;
