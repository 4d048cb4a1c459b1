//! The socket to a backend: plain TCP, or TLS once the login has asked the server
//! for it (MySQL's TLS starts inside the protocol, after the server's greeting), with
//! the server's certificate checked against the node's CA and name.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// TLS to one node: its configuration, built once per layout. A CA file that cannot
/// be used keeps its error, which every connection attempt then fails with: a node
/// that asks for TLS is never reached in plain text.
#[derive(Debug)]
pub struct BackendTls {
    node: rules::NodeTls,
    config: Result<Arc<ClientConfig>, String>,
}

/// Two are the same when the node's settings are (a pool is kept across a reload
/// only then).
impl PartialEq for BackendTls {
    fn eq(&self, other: &Self) -> bool {
        self.node == other.node
    }
}

impl Eq for BackendTls {}

impl BackendTls {
    /// The node's TLS, if it has one.
    pub fn of(node: &rules::DataNode) -> Option<Arc<BackendTls>> {
        let tls = node.tls.as_ref()?;
        Some(Arc::new(BackendTls {
            node: tls.clone(),
            config: client_config(tls),
        }))
    }

    /// What is wrong with a node's TLS settings, if anything (checked with the
    /// layout): the key at fault and why.
    pub fn check(tls: &rules::NodeTls) -> Result<(), (&'static str, String)> {
        if let Some(name) = &tls.server_name {
            ServerName::try_from(name.clone())
                .map_err(|e| ("tls_server_name", format!("`{name}`: {e}")))?;
        }
        client_config(tls).map(|_| ()).map_err(|e| ("tls_ca", e))
    }

    /// The name `address`'s certificate must carry: the node's `tls_server_name`, or
    /// the address's host.
    fn server_name(&self, address: &str) -> io::Result<ServerName<'static>> {
        let host = match &self.node.server_name {
            Some(name) => name.as_str(),
            None => host_of(address),
        };
        ServerName::try_from(host.to_string()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{host}` is no name a certificate can carry: {e}"),
            )
        })
    }
}

/// The client side's configuration: the node's CA certificates as the only roots.
fn client_config(tls: &rules::NodeTls) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    let file = tls.ca_file.display();
    for cert in CertificateDer::pem_slice_iter(&tls.ca_pem) {
        let cert = cert.map_err(|e| format!("`{file}`: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("`{file}`: not a CA certificate rustls accepts: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("`{file}` holds no PEM certificate"));
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// `host` of `host:port`, `[v6]:port` or a bare host.
fn host_of(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match address.rsplit_once(':') {
        Some((host, _)) => host,
        None => address,
    }
}

#[derive(Debug)]
pub enum Link {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// A TLS handshake failed half way: nothing more can be sent.
    Broken,
}

impl Link {
    /// The TCP socket under it, for non-blocking probes of an idle connection.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Link::Plain(s) => Some(s),
            Link::Tls(s) => Some(s.get_ref().0),
            Link::Broken => None,
        }
    }

    /// Switches to TLS (after the SSL request packet): the handshake, and the check
    /// of the server's certificate against the node's CA and name.
    pub async fn start_tls(&mut self, tls: &BackendTls, address: &str) -> io::Result<()> {
        let Link::Plain(tcp) = std::mem::replace(self, Link::Broken) else {
            return Err(io::Error::other(
                "TLS asked twice on one backend connection",
            ));
        };
        let config = tls
            .config
            .as_ref()
            .map_err(|e| io::Error::other(e.clone()))?;
        let name = tls.server_name(address)?;
        let stream = TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await?;
        *self = Link::Tls(Box::new(stream));
        Ok(())
    }
}

fn broken() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the backend's TLS handshake failed",
    )
}

impl AsyncRead for Link {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Link::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Link::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Link::Broken => Poll::Ready(Err(broken())),
        }
    }
}

impl AsyncWrite for Link {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Link::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Link::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Link::Broken => Poll::Ready(Err(broken())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Link::Plain(s) => Pin::new(s).poll_flush(cx),
            Link::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Link::Broken => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Link::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Link::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Link::Broken => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosts_of_addresses() {
        assert_eq!(super::host_of("127.0.0.1:3306"), "127.0.0.1");
        assert_eq!(super::host_of("db1.internal:3306"), "db1.internal");
        assert_eq!(super::host_of("[::1]:3306"), "::1");
        assert_eq!(super::host_of("db1"), "db1");
    }
}
