//! The connection phase with a client: greeting, credentials, initial database.

use mysql_common::constants::CapabilityFlags;

use super::Session;
use crate::backend::Flavor;
use crate::wire::handshake::{self, NATIVE_PASSWORD};
use crate::wire::packet::write_packet;
use crate::wire::{SqlError, WireError};

const MAX_LOGIN_PACKET: usize = 64 * 1024;

impl Session {
    /// Returns `Ok(true)` when the client is logged in and commands may follow.
    pub(super) async fn login(&mut self) -> Result<bool, WireError> {
        let scramble = handshake::new_scramble();
        let greeting = handshake::server_greeting(self.id, &scramble, &self.shared.server_version);
        write_packet(&mut self.out, &mut 0, &greeting);
        self.flush().await?;

        let Some(p) = self.reader.read(&mut self.stream, MAX_LOGIN_PACKET).await? else {
            return Ok(false);
        };
        let mut seq = p.seq.wrapping_add(1);
        let hello = match handshake::parse_client_hello(&p.payload) {
            Ok(h) => h,
            Err(e) => {
                let msg = format!("Bad handshake: {e}");
                self.send_err(seq, &SqlError::new(1043, "08S01", msg))
                    .await?;
                return Ok(false);
            }
        };

        let mut response = hello.auth_response.clone();
        let plugin_is_native = hello.plugin.as_deref().is_none_or(|p| p == NATIVE_PASSWORD);
        if !plugin_is_native {
            write_packet(
                &mut self.out,
                &mut seq,
                &handshake::auth_switch_request(&scramble),
            );
            self.flush().await?;
            let Some(p) = self.reader.read(&mut self.stream, MAX_LOGIN_PACKET).await? else {
                return Ok(false);
            };
            seq = p.seq.wrapping_add(1);
            response = p.payload.to_vec();
        }

        let host = self.peer.ip().to_string();
        let user = self
            .shared
            .settings
            .users
            .iter()
            .find(|u| u.name == hello.user)
            .filter(|u| handshake::verify_native(&scramble, &u.password, &response))
            .cloned();
        let Some(user) = user else {
            tracing::info!(conn = self.id, peer = %self.peer, user = %hello.user, "access denied");
            metrics::counter!("shardgate_login_failures_total").increment(1);
            let e = SqlError::access_denied(&hello.user, &host, !response.is_empty());
            self.send_err(seq, &e).await?;
            return Ok(false);
        };
        self.user = Some(user);
        self.capabilities = hello.capabilities;
        self.flavor = Flavor {
            capabilities: hello.capabilities & handshake::backend_visible_capabilities(),
            collation: hello.collation,
        };
        if !self
            .capabilities
            .contains(CapabilityFlags::CLIENT_PROTOCOL_41)
        {
            return Ok(false);
        }
        if let Some(db) = &hello.database {
            if let Err(e) = self.select_database(db).await {
                self.send_err(seq, &e).await?;
                return Ok(false);
            }
        }
        self.send_ok(seq).await?;
        tracing::debug!(conn = self.id, peer = %self.peer, user = %hello.user, "logged in");
        Ok(true)
    }
}
