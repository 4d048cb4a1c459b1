//! What a client sends: packets (plain and compressed), the handshake answer, the
//! commands whose payloads shardgate parses, and the TLS records before any of it.

use std::sync::{Arc, OnceLock};

use futures_util::FutureExt;
use mysql_common::constants::CapabilityFlags;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;

use super::{steer, Mem};
use crate::credential::Credential;
use crate::wire::compress::Compressed;
use crate::wire::handshake::{self, CACHING_SHA2, NATIVE_PASSWORD};
use crate::wire::packet::write_packet;
use crate::wire::stmt::{self, Execute};
use crate::wire::PacketReader;

/// Largest packet the fuzzed readers accept (the session's own limit is larger; a
/// claimed length is never allocated before its bytes arrive).
const MAX_PACKET: usize = 1 << 20;

pub fn client_packets(data: &[u8]) {
    let (ctl, input) = steer(data);
    let step = 1 + usize::from(ctl % 64);
    let mut reader = PacketReader::default();
    let mut mem = Mem::new(input, step);
    for _ in 0..256 {
        match reader.read(&mut mem, MAX_PACKET).now_or_never() {
            Some(Ok(Some(p))) => payload(&p.payload),
            _ => break,
        }
    }
    // The compressed protocol: frames in, and packets out through the rewriter.
    let mut z = Compressed::new(Mem::new(input, step), MAX_PACKET);
    let mut buf = [0u8; 4096];
    for _ in 0..1024 {
        match z.read(&mut buf).now_or_never() {
            Some(Ok(n)) if n > 0 => {}
            _ => break,
        }
    }
    let mut z = Compressed::new(Mem::new(&[], 1), MAX_PACKET);
    let _ = z.write_all(input).now_or_never();
    let _ = z.flush().now_or_never();
}

/// Every parse a client packet may meet, whatever command it claims to be.
fn payload(p: &[u8]) {
    let _ = handshake::parse_client_hello(p);
    for caps in [CapabilityFlags::all(), CapabilityFlags::CLIENT_PROTOCOL_41] {
        let _ = handshake::parse_change_user(p, caps);
    }
    let _ = stmt::statement_id(p);
    for params in [0, 1, 3, 17] {
        if let Ok(e) = Execute::parse(p, params) {
            let types = e.types.unwrap_or(&[]);
            let _ = stmt::decode_params(params, e.nulls, types, e.values, |i| i == 2);
        }
    }
    let scramble = [7u8; 20];
    for c in [
        Credential::from_password("pw"),
        Credential::from_password(""),
    ] {
        let _ = c.verify_native(&scramble, p);
        let _ = c.verify_sha2(&scramble, p);
        let _ = c.verify_cleartext(p);
    }
}

fn tls_config() -> &'static Arc<rustls::ServerConfig> {
    static CONFIG: OnceLock<Arc<rustls::ServerConfig>> = OnceLock::new();
    CONFIG.get_or_init(|| {
        crate::tls::server_config_from_pem(include_bytes!("cert.pem"), include_bytes!("key.pem"))
            .expect("the fuzzers' test certificate")
    })
}

/// TLS records, as the server side of a session's `start_tls` reads them.
pub fn tls_hello(data: &[u8]) {
    let Ok(mut conn) = rustls::ServerConnection::new(tls_config().clone()) else {
        return;
    };
    let mut input = data;
    let mut out = Vec::new();
    for _ in 0..64 {
        match conn.read_tls(&mut input) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if conn.process_new_packets().is_err() {
            break;
        }
        out.clear();
        let _ = conn.write_tls(&mut out);
    }
}

/// A ClientHello as rustls sends it to the fuzzers' certificate.
pub fn tls_client_hello() -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        rustls::pki_types::CertificateDer::pem_slice_iter(include_bytes!("cert.pem")).flatten()
    {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let Ok(builder) =
        rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()
    else {
        return Vec::new();
    };
    let config = Arc::new(builder.with_root_certificates(roots).with_no_client_auth());
    let Ok(name) = rustls::pki_types::ServerName::try_from("shardgate-fuzz") else {
        return Vec::new();
    };
    let Ok(mut conn) = rustls::ClientConnection::new(config, name) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let _ = conn.write_tls(&mut out);
    out
}

pub fn seeds() -> Vec<Vec<u8>> {
    let framed = |payloads: &[Vec<u8>]| {
        let mut out = bytes::BytesMut::new();
        let mut seq = 1;
        for p in payloads {
            write_packet(&mut out, &mut seq, p);
        }
        let mut v = vec![7u8];
        v.extend_from_slice(&out);
        v
    };
    let scramble = [9u8; 20];
    let native = handshake::client_auth_data(NATIVE_PASSWORD, &scramble, "pw").unwrap_or_default();
    let sha2 = handshake::client_auth_data(CACHING_SHA2, &scramble, "pw").unwrap_or_default();
    let caps = CapabilityFlags::CLIENT_CONNECT_WITH_DB | CapabilityFlags::CLIENT_COMPRESS;
    let hello =
        |auth: &[u8], plugin| handshake::client_hello("app", auth, plugin, Some("shop"), caps, 45);
    let mut execute = vec![0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
    execute.extend_from_slice(&[8, 0, 253, 0]);
    execute.extend_from_slice(&42u64.to_le_bytes());
    execute.extend_from_slice(&[3, b'a', b'b', b'c']);
    vec![
        framed(&[hello(&native, NATIVE_PASSWORD)]),
        framed(&[hello(&sha2, CACHING_SHA2), b"\x03SELECT 1".to_vec()]),
        framed(&[b"\x11app\0\x14".iter().chain(&native).copied().collect()]),
        framed(&[execute]),
        // A compressed frame holding a COM_QUERY.
        vec![
            3, 13, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 3, b'S', b'E', b'L', b'E', b'C', b'T', b' ', b'1',
        ],
    ]
}
