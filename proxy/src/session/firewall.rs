//! The SQL firewall: statements a user's `deny_digests` or `deny_patterns` name are
//! refused whatever the user's rights. Matched on the statement's digest (literals as
//! `?`, keywords and names in lower case, spaces normalised, executable comments as
//! code), read as the session's sql_mode reads it, so one rule covers every value and
//! spelling a statement is sent with, and a digest from SHOW STATS can be denied as
//! it stands.

use router::reading::Reading;

use super::Session;
use crate::config::UserConfig;
use crate::stats::digest::{digest_as, MAX_DIGEST};
use crate::wire::SqlError;

impl Session {
    pub(super) fn check_firewall(
        &self,
        user: &UserConfig,
        sql: &[u8],
        reading: Reading,
    ) -> Result<(), SqlError> {
        if !user.rules.has_denials() {
            return Ok(());
        }
        // Patterns see the whole statement; the digest is SHOW STATS' (bounded).
        let mut text = Vec::new();
        digest_as(sql, &mut text, reading, usize::MAX);
        let hash = if user.rules.has_digests() {
            digest_as(sql, &mut Vec::new(), reading, MAX_DIGEST)
        } else {
            0
        };
        match user.rules.denial(hash, &String::from_utf8_lossy(&text)) {
            Some(why) => Err(SqlError::specific_access_denied(format!(
                "Access denied; shardgate's SQL firewall refuses this statement for user `{}`: {why}",
                user.name
            ))),
            None => Ok(()),
        }
    }
}
