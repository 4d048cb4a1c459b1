//! The HTTP side for operators and orchestrators: `/metrics` (Prometheus text),
//! `/health` (the process serves) and `/ready` (every primary answered). A few
//! fixed GET routes need no HTTP stack: each request is read up to its blank line,
//! answered, and the connection closed.

pub mod metrics;
mod request;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::shared::Shared;

/// A slow or silent HTTP client is dropped after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds `addr` and serves on it until shutdown; the address it got.
pub async fn start(addr: &str, shared: Arc<Shared>) -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(serve(listener, shared));
    Ok(local)
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut stop = shared.shutdown_signalled();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &shared)).await;
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn answer(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let reply = match request::read(&mut stream).await {
        Ok(req) => route(&req, shared),
        Err(request::BadRequest::Closed) => return Ok(()),
        Err(e) => Reply::text(400, "Bad Request", format!("{e}\n")),
    };
    stream.write_all(&reply.encode()).await?;
    stream.shutdown().await
}

fn route(req: &request::Request, shared: &Shared) -> Reply {
    if req.method != "GET" && req.method != "HEAD" {
        return Reply::text(405, "Method Not Allowed", "only GET\n".into());
    }
    let reply = match req.path.as_str() {
        "/metrics" => Reply {
            status: 200,
            reason: "OK",
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: metrics::render(shared).into_bytes(),
        },
        "/health" => Reply::text(200, "OK", "ok\n".into()),
        "/ready" => {
            let down: Vec<String> = shared
                .topology
                .load()
                .nodes()
                .iter()
                .filter(|n| !n.primary.is_up())
                .map(|n| n.name.clone())
                .collect();
            if down.is_empty() {
                Reply::text(200, "OK", "ready\n".into())
            } else {
                Reply::text(
                    503,
                    "Service Unavailable",
                    format!("not ready: no primary for {}\n", down.join(", ")),
                )
            }
        }
        _ => Reply::text(404, "Not Found", "try /metrics, /health or /ready\n".into()),
    };
    if req.method == "HEAD" {
        Reply {
            body: Vec::new(),
            ..reply
        }
    } else {
        reply
    }
}

struct Reply {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Reply {
    fn text(status: u16, reason: &'static str, body: String) -> Reply {
        Reply {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: body.into_bytes(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}
