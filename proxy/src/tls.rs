//! TLS for client connections: the certificate and key from the config, and the
//! stream type a session reads and writes whether or not the client switched to TLS
//! or compression.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Loads a PEM certificate chain and private key. Errors say which file and why.
pub fn server_config(
    cert: &Path,
    key: &Path,
    policy: &TlsPolicy,
) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("`{}`: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("`{}`: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("`{}` holds no PEM certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("`{}`: {e}", key.display()))?;
    build(certs, key, policy)
}

/// What TLS clients may negotiate: the oldest version, and the cipher suites (by
/// their IANA names, e.g. `TLS13_AES_256_GCM_SHA384`); empty: rustls' safe defaults.
#[derive(Debug, Clone, Default)]
pub struct TlsPolicy {
    pub min_version_13: bool,
    pub ciphers: Vec<String>,
}

/// The cipher suite names a policy may list.
pub fn cipher_names() -> Vec<String> {
    tokio_rustls::rustls::crypto::ring::default_provider()
        .cipher_suites
        .iter()
        .map(|s| format!("{:?}", s.suite()))
        .collect()
}

/// [`server_config`] from PEM text in memory (the fuzzers' own test certificate).
pub fn server_config_from_pem(cert: &[u8], key: &[u8]) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| e.to_string())?;
    build(certs, key, &TlsPolicy::default())
}

fn build(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    policy: &TlsPolicy,
) -> Result<Arc<ServerConfig>, String> {
    use tokio_rustls::rustls::version::{TLS12, TLS13};
    let mut provider = tokio_rustls::rustls::crypto::ring::default_provider();
    if !policy.ciphers.is_empty() {
        for name in &policy.ciphers {
            if !cipher_names().iter().any(|n| n == name) {
                return Err(format!(
                    "unknown cipher suite `{name}`; known: {}",
                    cipher_names().join(", ")
                ));
            }
        }
        provider
            .cipher_suites
            .retain(|s| policy.ciphers.contains(&format!("{:?}", s.suite())));
    }
    let versions: &[&tokio_rustls::rustls::SupportedProtocolVersion] = if policy.min_version_13 {
        &[&TLS13]
    } else {
        &[&TLS13, &TLS12]
    };
    let config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .map_err(|e| format!("no cipher suite left for the TLS versions allowed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not match: {e}"))?;
    Ok(Arc::new(config))
}

/// A client connection, plain or TLS.
pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// The compressed protocol over either of the above.
    Zlib(Box<crate::wire::compress::Compressed<ClientStream>>),
    /// Text result sets rewritten as binary ones, while a prepared execution runs
    /// through the text path.
    Binary(Box<crate::wire::binary_rows::BinaryRows<ClientStream>>),
    /// Only while switching.
    Switching,
}

impl ClientStream {
    /// Runs the TLS handshake on a plain connection.
    pub async fn start_tls(&mut self, config: Arc<ServerConfig>) -> io::Result<()> {
        let ClientStream::Plain(tcp) = std::mem::replace(self, ClientStream::Switching) else {
            return Err(io::Error::other("TLS is already on"));
        };
        let tls = TlsAcceptor::from(config).accept(tcp).await?;
        *self = ClientStream::Tls(Box::new(tls));
        Ok(())
    }

    /// From now on, packets travel compressed (CLIENT_COMPRESS, after login).
    pub fn start_compression(&mut self, max_packet: usize) {
        let inner = std::mem::replace(self, ClientStream::Switching);
        *self = ClientStream::Zlib(Box::new(crate::wire::compress::Compressed::new(
            inner, max_packet,
        )));
    }

    /// From now on, result sets written are rewritten in the binary protocol.
    pub fn start_binary_rows(&mut self, deprecate_eof: bool) {
        let inner = std::mem::replace(self, ClientStream::Switching);
        *self = ClientStream::Binary(Box::new(crate::wire::binary_rows::BinaryRows::new(
            inner,
            deprecate_eof,
        )));
    }

    /// Back to writing packets as they are.
    pub fn stop_binary_rows(&mut self) {
        if let ClientStream::Binary(_) = self {
            if let ClientStream::Binary(b) = std::mem::replace(self, ClientStream::Switching) {
                *self = b.into_inner();
            }
        }
    }

    pub fn is_tls(&self) -> bool {
        match self {
            ClientStream::Tls(_) => true,
            ClientStream::Zlib(z) => z.get_ref().is_tls(),
            ClientStream::Binary(b) => b.get_ref().is_tls(),
            _ => false,
        }
    }

    /// The plain socket, for reads that must not take more than asked for.
    pub fn tcp(&mut self) -> Option<&mut TcpStream> {
        match self {
            ClientStream::Plain(t) => Some(t),
            _ => None,
        }
    }
}

fn switching() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "connection is switching to TLS",
    )
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            ClientStream::Zlib(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            ClientStream::Binary(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            ClientStream::Switching => Poll::Ready(Err(switching())),
        };
        let read = buf.filled().len().saturating_sub(before);
        if read > 0 {
            crate::http::metrics::hot()
                .bytes_received
                .increment(read as u64);
        }
        polled
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            ClientStream::Zlib(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            ClientStream::Binary(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            ClientStream::Switching => Poll::Ready(Err(switching())),
        };
        count_sent(&polled);
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            ClientStream::Zlib(s) => Pin::new(s.as_mut()).poll_flush(cx),
            ClientStream::Binary(s) => Pin::new(s.as_mut()).poll_flush(cx),
            ClientStream::Switching => Poll::Ready(Err(switching())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            ClientStream::Zlib(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            ClientStream::Binary(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            ClientStream::Switching => Poll::Ready(Err(switching())),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            ClientStream::Zlib(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            ClientStream::Binary(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            ClientStream::Switching => Poll::Ready(Err(switching())),
        };
        count_sent(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ClientStream::Plain(s) => s.is_write_vectored(),
            ClientStream::Tls(s) => s.is_write_vectored(),
            ClientStream::Zlib(_) | ClientStream::Binary(_) | ClientStream::Switching => false,
        }
    }
}

/// Bytes written to clients, for `shardgate_client_bytes_total` (before compression or
/// TLS, as the client's protocol sees them).
fn count_sent(polled: &Poll<io::Result<usize>>) {
    if let Poll::Ready(Ok(n)) = polled {
        if *n > 0 {
            crate::http::metrics::hot().bytes_sent.increment(*n as u64);
        }
    }
}
