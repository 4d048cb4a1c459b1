//! The connection phase with a client: greeting, credentials, initial database.

use mysql_common::constants::CapabilityFlags;

use tokio::io::AsyncReadExt;

use super::{Port, Session};
use crate::backend::Flavor;
use crate::config::{AdminUser, UserConfig};
use crate::credential::Credential;
use crate::wire::handshake::{self, CACHING_SHA2, NATIVE_PASSWORD};
use crate::wire::packet::{payload_len, write_packet, HEADER};
use crate::wire::{Packet, SqlError, WireError};

const MAX_LOGIN_PACKET: usize = 64 * 1024;

/// An account a client logs in to.
enum Account {
    Data(Box<UserConfig>),
    Admin(AdminUser),
}

impl Account {
    fn credential(&self) -> &Credential {
        match self {
            Account::Data(u) => &u.credential,
            Account::Admin(a) => &a.credential,
        }
    }

    fn require_tls(&self) -> bool {
        matches!(self, Account::Data(u) if u.require_tls)
    }
}

/// The plugin a login runs: the client's own when the account can check it (an
/// unknown account is checked as if it could, to fail the same way), else one it
/// can. An account given only as one hash can check only that hash's plugin.
pub(super) fn plugin_for(asked: &str, credential: Option<&Credential>) -> &'static str {
    let can = |plugin: &str| {
        credential.is_none_or(|c| match plugin {
            CACHING_SHA2 => c.knows_sha2(),
            _ => c.knows_native(),
        })
    };
    match asked {
        CACHING_SHA2 if can(CACHING_SHA2) => CACHING_SHA2,
        _ if can(NATIVE_PASSWORD) => NATIVE_PASSWORD,
        _ => CACHING_SHA2,
    }
}

impl Session {
    /// Returns `Ok(true)` when the client is logged in and commands may follow.
    pub(super) async fn login(&mut self) -> Result<bool, WireError> {
        let ip = self.peer.ip();
        if self.host_guard().is_blocked(ip) {
            metrics::counter!("shardgate_login_failures_total").increment(1);
            self.send_err(0, &SqlError::host_blocked(&ip.to_string()))
                .await?;
            return Ok(false);
        }
        let scramble = handshake::new_scramble();
        let tls = self.shared.settings.tls.clone();
        let greeting = handshake::server_greeting(
            self.id,
            &scramble,
            &self.shared.server_version,
            tls.is_some(),
        );
        write_packet(&mut self.out, &mut 0, &greeting);
        self.flush().await?;

        let Some(mut p) = self.first_packet().await? else {
            return Ok(false);
        };
        // A 32-byte answer with CLIENT_SSL asks for TLS; the real answer follows over it.
        let caps = p
            .payload
            .get(..4)
            .map_or(0, |c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        let asks_tls = p.payload.len() == 32 && caps & CapabilityFlags::CLIENT_SSL.bits() != 0;
        if asks_tls {
            let Some(config) = tls else {
                let e = SqlError::bad_handshake(
                    "Bad handshake: TLS requested, but shardgate has no [tls] configured",
                );
                self.send_err(p.seq.wrapping_add(1), &e).await?;
                return Ok(false);
            };
            self.stream.start_tls(config).await?;
            let Some(next) = self.reader.read(&mut self.stream, MAX_LOGIN_PACKET).await? else {
                return Ok(false);
            };
            p = next;
        }
        let mut seq = p.seq.wrapping_add(1);
        let hello = match handshake::parse_client_hello(&p.payload) {
            Ok(h) => h,
            Err(e) => {
                self.host_guard().failed_handshake(ip);
                let msg = format!("Bad handshake: {e}");
                self.send_err(seq, &SqlError::bad_handshake(msg)).await?;
                return Ok(false);
            }
        };

        let mut response = hello.auth_response.clone();
        let known = self.account(&hello.user);
        let asked = hello.plugin.as_deref().unwrap_or(NATIVE_PASSWORD);
        let plugin = plugin_for(asked, known.as_ref().map(Account::credential));
        let sha2 = plugin == CACHING_SHA2;
        // A client whose plugin the account cannot check is switched; so is a
        // caching_sha2 client that sent no scramble (it waits for the server to name
        // its plugin, as libmariadb does when the greeting named another).
        let switch_to = (plugin != asked || (sha2 && response.is_empty())).then_some(plugin);
        if let Some(target) = switch_to {
            write_packet(
                &mut self.out,
                &mut seq,
                &handshake::auth_switch_request(target, &scramble),
            );
            self.flush().await?;
            let Some(p) = self.reader.read(&mut self.stream, MAX_LOGIN_PACKET).await? else {
                return Ok(false);
            };
            seq = p.seq.wrapping_add(1);
            response = p.payload.to_vec();
        }

        let host = ip.to_string();
        if !self.begin_attempt(&hello.user, seq).await? {
            return Ok(false);
        }
        // caching_sha2_password as MySQL runs it: a user not seen since start gets full
        // authentication, which over TLS means the password itself. Without TLS,
        // where MySQL would need RSA, shardgate checks the scramble itself (it knows
        // the password), so the client sees the fast path.
        let cache_key = match self.port {
            Port::Data => hello.user.clone(),
            // Admin accounts are not the data port's, whatever their names.
            Port::Admin => format!("\0admin\0{}", hello.user),
        };
        let full_auth =
            sha2 && self.stream.is_tls() && !self.shared.sha2_cache.contains(&cache_key);
        let verified = match &known {
            None => false,
            Some(u) if full_auth => {
                write_packet(&mut self.out, &mut seq, &handshake::PERFORM_FULL_AUTH);
                self.flush().await?;
                let Some(p) = self.reader.read(&mut self.stream, MAX_LOGIN_PACKET).await? else {
                    return Ok(false);
                };
                seq = p.seq.wrapping_add(1);
                u.credential().verify_cleartext(&p.payload)
            }
            Some(u) if sha2 => u.credential().verify_sha2(&scramble, &response),
            Some(u) => u.credential().verify_native(&scramble, &response),
        };
        let user = known.filter(|_| verified);
        let Some(user) = user else {
            tracing::info!(conn = self.id, peer = %self.peer, user = %hello.user, "access denied");
            metrics::counter!("shardgate_login_failures_total").increment(1);
            let e = SqlError::access_denied(&hello.user, &host, !response.is_empty());
            self.send_err(seq, &e).await?;
            return Ok(false);
        };
        if user.require_tls() && !self.stream.is_tls() {
            tracing::info!(conn = self.id, peer = %self.peer, user = %hello.user, "login without TLS refused");
            let e = SqlError::access_denied(&hello.user, &host, true);
            self.send_err(seq, &e).await?;
            return Ok(false);
        }
        self.host_guard().succeeded(ip, &hello.user);
        if let Account::Data(u) = &user {
            if let Err(e) = self.take_user_slot(u) {
                self.send_err(seq, &e).await?;
                return Ok(false);
            }
        }
        if sha2 {
            self.shared.sha2_cache.insert(&cache_key);
            if !full_auth {
                write_packet(&mut self.out, &mut seq, &handshake::FAST_AUTH_SUCCESS);
            }
        }
        let admin = match user {
            Account::Data(u) => {
                self.user = Some(*u);
                false
            }
            Account::Admin(a) => {
                self.admin_user = Some(a.name);
                true
            }
        };
        self.capabilities = hello.capabilities;
        self.flavor = Flavor {
            capabilities: hello.capabilities & handshake::backend_visible_capabilities(),
            collation: hello.collation,
        };
        self.charset = super::charset::ClientCharset::from_collation(hello.collation);
        if !self
            .capabilities
            .contains(CapabilityFlags::CLIENT_PROTOCOL_41)
        {
            return Ok(false);
        }
        if let Some(db) = &hello.database {
            // The admin port has one database, whatever the client names.
            if admin {
                self.db = Some(db.clone());
            } else if let Err(e) = self.select_database(db).await {
                self.send_err(seq, &e).await?;
                return Ok(false);
            }
        }
        // An administrator gets in when applications have taken every place, as
        // MySQL keeps one connection for SUPER.
        if self.slot.is_none() && !admin {
            // Past max_connections a logged-in client is refused here, as MySQL
            // refuses it at the greeting.
            match self.shared.connections.clone().try_acquire_owned() {
                Ok(p) => self.slot = Some(p),
                Err(_) => {
                    self.send_err(seq, &SqlError::too_many_connections())
                        .await?;
                    return Ok(false);
                }
            }
        }
        self.send_ok(seq).await?;
        if self.capabilities.contains(CapabilityFlags::CLIENT_COMPRESS) {
            let max = self.shared.settings.max_allowed_packet;
            self.stream.start_compression(max);
        }
        tracing::debug!(conn = self.id, peer = %self.peer, user = %hello.user, tls = self.stream.is_tls(), "logged in");
        Ok(true)
    }

    /// Failed logins from the client's address on this port.
    pub(super) fn host_guard(&self) -> &crate::host_guard::HostGuard {
        match self.port {
            Port::Data => &self.shared.hosts[0],
            Port::Admin => &self.shared.hosts[1],
        }
    }

    /// Counts a login attempt at `user` (failed until it succeeds) and makes it wait
    /// as the failures before it say: right password or not, its answer is not even
    /// looked at before. False: refused (ERR `seq` sent), the address being blocked
    /// by attempts that ran at the same time.
    pub(super) async fn begin_attempt(&mut self, user: &str, seq: u8) -> std::io::Result<bool> {
        let ip = self.peer.ip();
        let attempt = self.host_guard().begin(ip, user);
        if !attempt.delay.is_zero() {
            tracing::info!(conn = self.id, peer = %self.peer, user, wait_ms = attempt.delay.as_millis() as u64, "login delayed after failed logins");
            tokio::time::sleep(attempt.delay).await;
        }
        if attempt.blocked {
            metrics::counter!("shardgate_login_failures_total").increment(1);
            self.send_err(seq, &SqlError::host_blocked(&ip.to_string()))
                .await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// A place among `u`'s sessions, for as long as this session is `u`'s.
    pub(super) fn take_user_slot(&mut self, u: &UserConfig) -> Result<(), SqlError> {
        // The old user's place goes first: changing to the same user is no new session.
        self.user_slot = None;
        let limit = u
            .max_user_connections
            .unwrap_or(self.shared.settings.max_user_connections);
        match self.shared.user_slots.take(&u.name, limit) {
            Some(slot) => {
                self.user_slot = Some(slot);
                Ok(())
            }
            None => {
                tracing::info!(conn = self.id, peer = %self.peer, user = %u.name, limit, "user's connection limit reached");
                metrics::counter!("shardgate_user_limit_refusals_total").increment(1);
                Err(SqlError::user_limit_reached(&u.name, limit))
            }
        }
    }

    /// The account `name` logs in to on this session's port.
    fn account(&self, name: &str) -> Option<Account> {
        match self.port {
            Port::Data => self
                .shared
                .topology
                .load()
                .user(name)
                .map(|u| Account::Data(Box::new(u.clone()))),
            Port::Admin => self
                .shared
                .settings
                .admin_users
                .iter()
                .find(|a| a.name == name)
                .cloned()
                .map(Account::Admin),
        }
    }

    /// The client's first packet, read exactly: a TLS handshake may follow it at once,
    /// and those bytes must reach TLS, not the packet reader.
    async fn first_packet(&mut self) -> Result<Option<Packet>, WireError> {
        let Some(tcp) = self.stream.tcp() else {
            return Ok(None);
        };
        let mut header = [0u8; HEADER];
        if let Err(e) = tcp.read_exact(&mut header).await {
            return match e.kind() {
                std::io::ErrorKind::UnexpectedEof => Ok(None),
                _ => Err(e.into()),
            };
        }
        let len = payload_len(&header);
        if len > MAX_LOGIN_PACKET {
            return Err(WireError::TooLarge {
                len,
                max: MAX_LOGIN_PACKET,
            });
        }
        let mut payload = vec![0u8; len];
        tcp.read_exact(&mut payload).await?;
        Ok(Some(Packet {
            seq: header[3],
            payload: payload.into(),
        }))
    }
}
