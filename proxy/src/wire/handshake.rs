//! Connection-phase packets: the server greeting shardgate sends to clients, the
//! client's answer, auth switch, and the scramble checks. The backend side (shardgate as
//! a client) lives in `backend::connect` and uses the same pieces.

use mysql_common::constants::{CapabilityFlags, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, HandshakePacket, HandshakeResponse};
use mysql_common::proto::MySerialize;
use rand::Rng;

use super::WireError;

pub const NATIVE_PASSWORD: &str = "mysql_native_password";
pub const CACHING_SHA2: &str = "caching_sha2_password";

/// Capabilities shardgate offers clients (SSL is added when TLS is configured). Not
/// offered: session tracking.
pub fn server_capabilities() -> CapabilityFlags {
    CapabilityFlags::CLIENT_LONG_PASSWORD
        | CapabilityFlags::CLIENT_FOUND_ROWS
        | CapabilityFlags::CLIENT_LONG_FLAG
        | CapabilityFlags::CLIENT_CONNECT_WITH_DB
        | CapabilityFlags::CLIENT_IGNORE_SPACE
        | CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_INTERACTIVE
        | CapabilityFlags::CLIENT_IGNORE_SIGPIPE
        | CapabilityFlags::CLIENT_TRANSACTIONS
        | CapabilityFlags::CLIENT_RESERVED
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_MULTI_STATEMENTS
        | CapabilityFlags::CLIENT_MULTI_RESULTS
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_CONNECT_ATTRS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | CapabilityFlags::CLIENT_DEPRECATE_EOF
        | CapabilityFlags::CLIENT_LOCAL_FILES
        | CapabilityFlags::CLIENT_COMPRESS
}

/// Client capabilities that change what a backend sends or accepts; backend
/// connections are pooled separately for each combination.
pub fn backend_visible_capabilities() -> CapabilityFlags {
    CapabilityFlags::CLIENT_FOUND_ROWS
        | CapabilityFlags::CLIENT_IGNORE_SPACE
        | CapabilityFlags::CLIENT_MULTI_STATEMENTS
        | CapabilityFlags::CLIENT_DEPRECATE_EOF
        // The backend asks for local files only of connections that allow it.
        | CapabilityFlags::CLIENT_LOCAL_FILES
}

/// 20 random printable bytes: no NUL, which would end the scramble early in some clients.
pub fn new_scramble() -> [u8; 20] {
    let mut rng = rand::thread_rng();
    let mut s = [0u8; 20];
    for b in &mut s {
        *b = rng.gen_range(0x21..0x7f);
    }
    s
}

/// The first packet of the connection. With `tls`, CLIENT_SSL is offered.
pub fn server_greeting(conn_id: u32, scramble: &[u8; 20], version: &str, tls: bool) -> Vec<u8> {
    let mut part1 = [0u8; 8];
    part1.copy_from_slice(&scramble[..8]);
    let mut part2 = scramble[8..].to_vec();
    part2.push(0);
    let p = HandshakePacket::new(
        10,
        version.as_bytes(),
        conn_id,
        part1,
        Some(part2),
        if tls {
            server_capabilities() | CapabilityFlags::CLIENT_SSL
        } else {
            server_capabilities()
        },
        45,
        StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        Some(NATIVE_PASSWORD.as_bytes()),
    );
    let mut out = Vec::with_capacity(128);
    p.serialize(&mut out);
    out
}

/// What a client said in its handshake response.
#[derive(Debug, Clone)]
pub struct ClientHello {
    pub capabilities: CapabilityFlags,
    pub collation: u8,
    pub user: String,
    pub auth_response: Vec<u8>,
    pub database: Option<String>,
    pub plugin: Option<String>,
}

pub fn parse_client_hello(payload: &[u8]) -> Result<ClientHello, WireError> {
    if payload.len() < 32 {
        return Err(WireError::Protocol("handshake response too short"));
    }
    let caps = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
    if caps & CapabilityFlags::CLIENT_PROTOCOL_41.bits() == 0 {
        return Err(WireError::Protocol(
            "clients older than protocol 4.1 are not supported",
        ));
    }
    let hello: HandshakeResponse<'_> = ParseBuf(payload)
        .parse(())
        .map_err(|_| WireError::Protocol("malformed handshake response"))?;
    Ok(ClientHello {
        capabilities: hello.capabilities() & server_capabilities(),
        collation: hello.collation(),
        user: String::from_utf8_lossy(hello.user()).into_owned(),
        auth_response: hello.scramble_buf().to_vec(),
        database: hello
            .db_name()
            .filter(|d| !d.is_empty())
            .map(|d| String::from_utf8_lossy(d).into_owned()),
        plugin: hello
            .auth_plugin()
            .map(|p| String::from_utf8_lossy(p.as_bytes()).into_owned()),
    })
}

/// What a client sent in COM_CHANGE_USER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeUser {
    pub user: String,
    pub database: Option<String>,
    /// Present when the client sent one (the packet's optional tail).
    pub collation: Option<u8>,
}

/// Parses COM_CHANGE_USER (the command byte included). The auth data is skipped:
/// shardgate always answers with an auth switch and a fresh scramble.
pub fn parse_change_user(p: &[u8], caps: CapabilityFlags) -> Result<ChangeUser, WireError> {
    let bad = || WireError::Protocol("malformed COM_CHANGE_USER");
    let mut pos = 1;
    let nul = |from: usize| {
        p.get(from..)
            .and_then(|s| s.iter().position(|b| *b == 0))
            .map(|i| from + i)
    };
    let end = nul(pos).ok_or_else(bad)?;
    let user = String::from_utf8_lossy(&p[pos..end]).into_owned();
    pos = end + 1;
    if caps.contains(CapabilityFlags::CLIENT_SECURE_CONNECTION) {
        let len = *p.get(pos).ok_or_else(bad)? as usize;
        pos += 1 + len;
    } else {
        pos = nul(pos).ok_or_else(bad)? + 1;
    }
    let end = nul(pos).ok_or_else(bad)?;
    let database =
        Some(String::from_utf8_lossy(&p[pos..end]).into_owned()).filter(|d| !d.is_empty());
    pos = end + 1;
    let collation = p.get(pos).copied();
    Ok(ChangeUser {
        user,
        database,
        collation,
    })
}

/// Asks the client to answer the scramble with `plugin`.
pub fn auth_switch_request(plugin: &str, scramble: &[u8; 20]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + plugin.len() + 22);
    out.push(0xFE);
    out.extend_from_slice(plugin.as_bytes());
    out.push(0);
    out.extend_from_slice(scramble);
    out.push(0);
    out
}

/// caching_sha2_password's "fast authentication succeeded" (AuthMoreData 0x03).
pub const FAST_AUTH_SUCCESS: [u8; 2] = [0x01, 0x03];

/// caching_sha2_password's "perform full authentication" (AuthMoreData 0x04).
pub const PERFORM_FULL_AUTH: [u8; 2] = [0x01, 0x04];

/// The backend's greeting, as shardgate-the-client needs it.
#[derive(Debug, Clone)]
pub struct ServerGreeting {
    pub version: String,
    pub connection_id: u32,
    pub capabilities: CapabilityFlags,
    pub nonce: Vec<u8>,
    pub plugin: String,
    /// The server's status flags (autocommit as the server's default has it).
    pub status: mysql_common::constants::StatusFlags,
}

pub fn parse_server_greeting(payload: &[u8]) -> Result<ServerGreeting, WireError> {
    if payload.first() == Some(&0xFF) {
        return Err(WireError::from_err_packet(payload));
    }
    let p: HandshakePacket<'_> = ParseBuf(payload)
        .parse(())
        .map_err(|_| WireError::Protocol("malformed server greeting"))?;
    Ok(ServerGreeting {
        version: p.server_version_str().into_owned(),
        connection_id: p.connection_id(),
        capabilities: p.capabilities(),
        nonce: p.nonce(),
        status: p.status_flags(),
        plugin: p
            .auth_plugin()
            .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned())
            .unwrap_or_else(|| NATIVE_PASSWORD.to_string()),
    })
}

/// The scramble a client sends for `plugin`, or an error for plugins shardgate lacks.
pub fn client_auth_data(plugin: &str, nonce: &[u8], password: &str) -> Result<Vec<u8>, WireError> {
    if password.is_empty() {
        return Ok(Vec::new());
    }
    match plugin {
        NATIVE_PASSWORD => Ok(mysql_common::auth::plugins::mysql_native_password::scramble_native(
            nonce.get(..20).unwrap_or(nonce),
            password.as_bytes(),
        )
        .map(|s| s.to_vec())
        .unwrap_or_default()),
        CACHING_SHA2 => {
            let mut n = [0u8; 20];
            let src = nonce.get(..20).ok_or(WireError::Protocol("short auth nonce"))?;
            n.copy_from_slice(src);
            Ok(
                mysql_common::auth::plugins::caching_sha2_password::scramble_sha256(&n, password.as_bytes())
                    .map(|s| s.to_vec())
                    .unwrap_or_default(),
            )
        }
        other => Err(WireError::Auth(format!(
            "backend asks for auth plugin {other}; shardgate supports mysql_native_password and caching_sha2_password"
        ))),
    }
}

/// Builds shardgate's handshake response to a backend.
pub fn client_hello(
    user: &str,
    auth_data: &[u8],
    plugin: &str,
    database: Option<&str>,
    capabilities: CapabilityFlags,
    collation: u8,
) -> Vec<u8> {
    let base = CapabilityFlags::CLIENT_LONG_PASSWORD
        | CapabilityFlags::CLIENT_LONG_FLAG
        | CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_TRANSACTIONS
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_MULTI_RESULTS
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA;
    let resp = HandshakeResponse::new(
        Some(auth_data),
        (10, 11, 0),
        Some(user.as_bytes()),
        database.map(str::as_bytes),
        Some(AuthPlugin::from_bytes(plugin.as_bytes())),
        base | capabilities,
        None,
        64 * 1024 * 1024,
    );
    let mut out = Vec::with_capacity(128);
    resp.serialize(&mut out);
    // HandshakeResponse fixes the collation from the server version; the client's
    // choice must win so the backend speaks the client's character set.
    out[8] = collation;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_password_roundtrip() {
        let s = new_scramble();
        assert!(s.iter().all(|&b| b != 0));
        let answer = client_auth_data(NATIVE_PASSWORD, &s, "secret").unwrap();
        let secret = crate::credential::Credential::from_password("secret");
        assert!(secret.verify_native(&s, &answer));
        assert!(!crate::credential::Credential::from_password("Secret").verify_native(&s, &answer));
    }

    #[test]
    fn greeting_and_hello_parse_back() {
        let s = new_scramble();
        let g = server_greeting(42, &s, "10.11.6-MariaDB-shardgate", false);
        let parsed = parse_server_greeting(&g).unwrap();
        assert_eq!(parsed.connection_id, 42);
        assert_eq!(&parsed.nonce[..20], &s[..]);
        assert_eq!(parsed.plugin, NATIVE_PASSWORD);

        let hello = client_hello(
            "app",
            &[1; 20],
            NATIVE_PASSWORD,
            Some("shop"),
            CapabilityFlags::CLIENT_DEPRECATE_EOF,
            8,
        );
        let c = parse_client_hello(&hello).unwrap();
        assert_eq!(c.user, "app");
        assert_eq!(c.database.as_deref(), Some("shop"));
        assert_eq!(c.collation, 8);
        assert_eq!(c.auth_response, vec![1; 20]);
        assert!(c
            .capabilities
            .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF));
    }
}
