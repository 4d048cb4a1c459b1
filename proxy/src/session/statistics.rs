//! What each statement did, for the admin port's statistics and slow log and the
//! statements metric: counted once per statement, after it ran.

use super::Session;

/// What a command did, as the statement statistics count it.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Outcome {
    pub(super) failed: bool,
    pub(super) rows: u64,
    /// Shards (backend statements) it ran on; 0: answered by shardgate.
    pub(super) shards: u16,
}

impl Session {
    /// Counts the statement in the statistics (and the slow log, when it was slow).
    pub(super) fn note_statement(&mut self, sql: &[u8], elapsed: std::time::Duration) {
        let stats = &self.shared.stats;
        let digest = crate::stats::digest::digest_as(
            sql,
            &mut self.digest_buf,
            self.reading,
            crate::stats::digest::MAX_DIGEST,
        );
        let o = self.outcome;
        crate::http::metrics::hot().statement(&self.digest_buf, o.failed);
        stats.record(&crate::stats::Observation {
            digest,
            digest_text: &self.digest_buf,
            elapsed,
            failed: o.failed,
            rows: o.rows,
            shards: o.shards,
        });
        if stats.is_slow(elapsed) {
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            stats.record_slow(crate::stats::Slow {
                at,
                user: self
                    .user
                    .as_ref()
                    .map(|u| u.name.clone())
                    .unwrap_or_default(),
                schema: self.db.clone(),
                elapsed,
                shards: o.shards,
                failed: o.failed,
                statement: crate::control::shown_statement(sql, 2048),
            });
        }
    }
}
