//! COM_CHANGE_USER: log in again as another user on the same connection. Everything
//! of the old session goes (as with COM_RESET_CONNECTION); a failed attempt closes
//! the connection, as MySQL does.

use super::{Flow, Reply, Session};
use crate::backend::Flavor;
use crate::wire::handshake;
use crate::wire::packet::write_packet;
use crate::wire::SqlError;

const MAX_AUTH_PACKET: usize = 64 * 1024;

impl Session {
    pub(super) async fn change_user(&mut self, payload: &[u8], seq: u8) -> Reply {
        let request = match handshake::parse_change_user(payload, self.capabilities) {
            Ok(r) => r,
            Err(e) => {
                self.send_err(seq, &SqlError::bad_handshake(format!("Bad handshake: {e}")))
                    .await?;
                return Ok(Flow::Close);
            }
        };
        // The accounts in effect now, not those of a snapshot the session still holds.
        let account = self.shared.topology.load().user(&request.user).cloned();
        // The client answers a fresh scramble, whatever it computed before, with a
        // plugin the account can check.
        let plugin = super::login::plugin_for(
            handshake::NATIVE_PASSWORD,
            account.as_ref().map(|u| &u.credential),
        );
        let scramble = handshake::new_scramble();
        let mut seq = seq;
        write_packet(
            &mut self.out,
            &mut seq,
            &handshake::auth_switch_request(plugin, &scramble),
        );
        self.flush().await?;
        let answer = match self.reader.read(&mut self.stream, MAX_AUTH_PACKET).await {
            Ok(Some(p)) => p,
            _ => return Ok(Flow::Close),
        };
        let mut seq = answer.seq.wrapping_add(1);
        if !self.begin_attempt(&request.user, seq).await? {
            return Ok(Flow::Close);
        }
        let sha2 = plugin == handshake::CACHING_SHA2;
        let user = account.filter(|u| match sha2 {
            true => u.credential.verify_sha2(&scramble, &answer.payload),
            false => u.credential.verify_native(&scramble, &answer.payload),
        });
        let host = self.peer.ip().to_string();
        let Some(user) = user else {
            metrics::counter!("shardgate_login_failures_total").increment(1);
            let e = SqlError::access_denied(&request.user, &host, !answer.payload.is_empty());
            self.send_err(seq, &e).await?;
            return Ok(Flow::Close);
        };
        // As at login: a user who must use TLS cannot be reached by changing user on
        // a connection without it.
        if user.require_tls && !self.stream.is_tls() {
            tracing::info!(conn = self.id, peer = %self.peer, user = %user.name, "change to a TLS-only user without TLS refused");
            let e = SqlError::access_denied(&request.user, &host, true);
            self.send_err(seq, &e).await?;
            return Ok(Flow::Close);
        }
        self.host_guard().succeeded(self.peer.ip(), &user.name);
        if let Err(e) = self.take_user_slot(&user) {
            self.send_err(seq, &e).await?;
            return Ok(Flow::Close);
        }
        if sha2 {
            write_packet(&mut self.out, &mut seq, &handshake::FAST_AUTH_SUCCESS);
        }
        self.reset_session().await;
        self.db = None;
        // What the session wrote was the old user's (its record feeds that user's).
        self.own_writes = Default::default();
        if let Some(c) = request.collation {
            self.flavor = Flavor {
                collation: c,
                ..self.flavor
            };
        }
        self.charset = super::charset::ClientCharset::from_collation(self.flavor.collation);
        self.user = Some(user.clone());
        self.shared.sessions.remove(self.id);
        self.control = std::sync::Arc::new(crate::control::SessionControl::new(
            user.name.clone(),
            self.peer.to_string(),
        ));
        self.shared.sessions.insert(self.id, self.control.clone());
        if let Some(db) = &request.database {
            if let Err(e) = self.select_database(db).await {
                self.send_err(seq, &e).await?;
                return Ok(Flow::Continue);
            }
        }
        let ok = crate::wire::generic::ok_payload(0, 0, self.lease.status(), 0);
        write_packet(&mut self.out, &mut seq, &ok);
        self.flush().await?;
        tracing::debug!(conn = self.id, user = %user.name, "changed user");
        Ok(Flow::Continue)
    }
}
