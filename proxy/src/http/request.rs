//! Reading an HTTP/1.x request head: the method and path are all the routes need.

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A request head larger than this is refused.
const MAX_HEAD: usize = 8 * 1024;

pub(super) struct Request {
    pub(super) method: String,
    /// Without its query string.
    pub(super) path: String,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum BadRequest {
    #[error("the connection closed before a request")]
    Closed,
    #[error("request head over {MAX_HEAD} bytes")]
    TooLarge,
    #[error("not an HTTP request line")]
    Malformed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub(super) async fn read(stream: &mut TcpStream) -> Result<Request, BadRequest> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(if head.is_empty() {
                BadRequest::Closed
            } else {
                BadRequest::Malformed
            });
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return Err(BadRequest::TooLarge);
        }
    }
    parse(&head)
}

fn parse(head: &[u8]) -> Result<Request, BadRequest> {
    let line = head
        .split(|b| *b == b'\n')
        .next()
        .ok_or(BadRequest::Malformed)?;
    let line = std::str::from_utf8(line)
        .map_err(|_| BadRequest::Malformed)?
        .trim_end();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(BadRequest::Malformed);
    };
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return Err(BadRequest::Malformed);
    }
    let path = target.split('?').next().unwrap_or(target);
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        let r = parse(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").expect("parses");
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/metrics"));
        assert!(parse(b"GET /metrics\r\n\r\n").is_err());
        assert!(parse(b"\xff\xfe\r\n\r\n").is_err());
        assert!(parse(b"GET / HTTP/2 extra\r\n\r\n").is_err());
    }
}
