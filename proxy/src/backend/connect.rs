//! Logging in to a backend: greeting, handshake response, auth switch, and the
//! caching_sha2_password exchanges (fast path, and full auth by RSA public key).

use super::timed::TimedStream;
use bytes::BytesMut;
use mysql_common::constants::CapabilityFlags;
use tokio::io::AsyncWriteExt;

use crate::wire::handshake::{self, ServerGreeting, CACHING_SHA2};
use crate::wire::packet::write_packet;
use crate::wire::{PacketReader, WireError};

use super::{BackendServer, Flavor};

const MAX_AUTH_PACKET: usize = 1 << 20;

/// Length of the SSL request packet: the handshake response up to the user name.
const SSL_REQUEST_LEN: usize = 32;

/// Performs the connection phase on a fresh socket; returns the server's greeting.
pub async fn login(
    stream: &mut TimedStream,
    reader: &mut PacketReader,
    target: &BackendServer,
    flavor: Flavor,
    database: Option<&str>,
) -> Result<ServerGreeting, WireError> {
    let greeting = reader
        .read(stream, MAX_AUTH_PACKET)
        .await?
        .ok_or(WireError::UnexpectedEof)?;
    let server = handshake::parse_server_greeting(&greeting.payload)?;
    let mut plugin = server.plugin.clone();
    let mut nonce = server.nonce.clone();
    let data = handshake::client_auth_data(&plugin, &nonce, &target.password)?;
    let mut capabilities = flavor.capabilities & handshake::backend_visible_capabilities();
    if tracks_session(target, &server) {
        capabilities |= CapabilityFlags::CLIENT_SESSION_TRACK;
    }
    if target.tls.is_some() {
        capabilities |= CapabilityFlags::CLIENT_SSL;
    }
    let hello = handshake::client_hello(
        &target.user,
        &data,
        &plugin,
        database,
        capabilities,
        flavor.collation,
    );
    let mut seq = greeting.seq.wrapping_add(1);
    if let Some(tls) = &target.tls {
        if !server.capabilities.contains(CapabilityFlags::CLIENT_SSL) {
            return Err(WireError::Tls(format!(
                "{} does not offer TLS, and the node's tls_ca asks for it; configure the \
                 server's ssl_cert and ssl_key, or remove tls_ca",
                target.label
            )));
        }
        // The SSL request is the handshake response's fixed head: capabilities,
        // packet size, collation, filler.
        send(stream, &mut seq, &hello[..SSL_REQUEST_LEN]).await?;
        stream
            .start_tls(tls, &target.address)
            .await
            .map_err(|e| WireError::Tls(format!("to {}: {e}", target.label)))?;
    }
    send(stream, &mut seq, &hello).await?;

    loop {
        let p = reader
            .read(stream, MAX_AUTH_PACKET)
            .await?
            .ok_or(WireError::UnexpectedEof)?;
        seq = p.seq.wrapping_add(1);
        match p.payload.first() {
            Some(0x00) => return Ok(server),
            Some(0xFF) => return Err(WireError::from_err_packet(&p.payload)),
            Some(0xFE) => {
                // Auth switch: plugin name, NUL, new nonce.
                let body = &p.payload[1..];
                let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
                plugin = String::from_utf8_lossy(&body[..end]).into_owned();
                nonce = body.get(end + 1..).unwrap_or_default().to_vec();
                if nonce.last() == Some(&0) {
                    nonce.pop();
                }
                let data = handshake::client_auth_data(&plugin, &nonce, &target.password)?;
                send(stream, &mut seq, &data).await?;
            }
            Some(0x01) if plugin == CACHING_SHA2 => match p.payload.get(1) {
                // Fast auth succeeded; the OK follows.
                Some(0x03) => {}
                // Full auth: ask for the server's RSA key.
                Some(0x04) => send(stream, &mut seq, &[0x02]).await?,
                _ => {
                    // The public key (PEM) we asked for.
                    let mut pass = target.password.as_bytes().to_vec();
                    pass.push(0);
                    for (i, b) in pass.iter_mut().enumerate() {
                        *b ^= nonce[i % nonce.len().max(1)];
                    }
                    let enc =
                        mysql_common::crypto::encrypt(&pass, &p.payload[1..]).map_err(|e| {
                            WireError::Auth(format!("RSA encryption of the password failed: {e}"))
                        })?;
                    send(stream, &mut seq, &enc).await?;
                }
            },
            _ => {
                return Err(WireError::Protocol(
                    "unexpected packet during backend login",
                ))
            }
        }
    }
}

/// Session tracking is asked of a MariaDB server whose connections should report
/// GTIDs (`last_gtid` is MariaDB's; MySQL would ignore it with a warning).
pub fn tracks_session(target: &BackendServer, server: &ServerGreeting) -> bool {
    target.track_gtid
        && server.version.contains("MariaDB")
        && server
            .capabilities
            .contains(CapabilityFlags::CLIENT_SESSION_TRACK)
}

async fn send(stream: &mut TimedStream, seq: &mut u8, payload: &[u8]) -> Result<(), WireError> {
    let mut out = BytesMut::with_capacity(payload.len() + 4);
    write_packet(&mut out, seq, payload);
    stream.write_all(&out).await?;
    stream.flush().await?;
    Ok(())
}
