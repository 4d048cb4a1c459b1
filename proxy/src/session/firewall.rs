//! The SQL firewall: statements a user's `deny_digests` or `deny_patterns` name are
//! refused whatever the user's rights. Matched on the statement's digest (literals as
//! `?`, keywords in lower case, spaces normalised), so one rule covers every value a
//! statement is sent with, and a digest from SHOW STATS can be denied as it stands.

use super::Session;
use crate::config::UserConfig;
use crate::wire::SqlError;

impl Session {
    pub(super) fn check_firewall(&self, user: &UserConfig, sql: &[u8]) -> Result<(), SqlError> {
        if !user.rules.has_denials() {
            return Ok(());
        }
        let mut text = Vec::new();
        let digest = crate::stats::digest::digest(sql, &mut text);
        match user.rules.denial(digest, &String::from_utf8_lossy(&text)) {
            Some(why) => Err(SqlError::specific_access_denied(format!(
                "Access denied; shardgate's SQL firewall refuses this statement for user `{}`: {why}",
                user.name
            ))),
            None => Ok(()),
        }
    }
}
