//! GTID tracking on a backend connection: the server reports each commit's GTID in
//! the OK packet that acknowledges it (`last_gtid`, a tracked system variable), the
//! connection keeps it in the record of the session it is lent to, and every OK that
//! carries session state is turned back into the plain OK before a client sees it
//! (clients are never offered session tracking). Both happen wherever an OK is read:
//! here for whole packets, in the relay's tracker for streamed answers.

use bytes::Bytes;

use super::BackendConn;
use crate::wire::session_state;
use crate::wire::WireError;

/// What a tracking connection reports in its OKs: the GTID of each transaction it
/// commits, and nothing else (no schema or variable changes, which shardgate has no
/// use for and would only have to strip).
const TRACK_GTID: &[u8] =
    b"SET SESSION session_track_system_variables = 'last_gtid', session_track_schema = OFF";

/// Text that may set the `session_track_…` variables.
fn touches_tracking(sql: &[u8]) -> bool {
    sql.windows(13)
        .any(|w| w.eq_ignore_ascii_case(b"session_track"))
}

impl BackendConn {
    /// Turns on GTID reports (again after a reset, or after a client's own `SET` of
    /// the tracking variables). A server that refuses, or accepts with a warning, is
    /// not tracked: the session then reads on the primary after using it.
    pub(super) async fn start_tracking(&mut self) -> Result<(), WireError> {
        if !self.session_track {
            return Ok(());
        }
        // Not `execute_ok`, which comes back here after statements like this one.
        self.send_query(None, TRACK_GTID).await?;
        let answer = self.read_ok().await;
        self.tracks_gtid = match answer {
            Ok(ok) => ok.warnings == 0,
            Err(WireError::Server { .. }) => false,
            Err(e) => return Err(e),
        };
        if !self.tracks_gtid {
            tracing::warn!(version = %self.server_version, "the backend does not report GTIDs; sessions that write there read on the primary");
            // Writes on it from now on are not recorded: the session's reads must not
            // trust a replica.
            if let Some(w) = &self.written {
                w.mark_unknown();
            }
        }
        Ok(())
    }

    /// After a client's `sql` ran here: a `SET` of the tracking variables would
    /// otherwise leave the server silent about GTIDs while shardgate still expects
    /// them, and reads after the session's writes would trust replicas that lack
    /// them. Every statement shardgate runs with `execute_ok` comes here; a relayed
    /// one (a batch) is asked about by the session.
    pub async fn keep_tracking_after(&mut self, sql: &[u8]) -> Result<(), WireError> {
        if self.session_track && touches_tracking(sql) {
            self.start_tracking().await?;
        }
        Ok(())
    }

    /// The server reports the GTIDs of this connection's commits.
    pub fn tracks_gtid(&self) -> bool {
        self.tracks_gtid
    }

    /// Keeps GTIDs the server reported (`last_gtid` values) in the record of the
    /// session using this connection.
    pub(super) fn note_gtids<'a>(&self, values: impl IntoIterator<Item = &'a [u8]>) {
        if let Some(w) = &self.written {
            for v in values {
                w.note(v);
            }
        }
    }

    /// Keeps the GTID of an OK read whole that is not passed on.
    pub(super) fn note_ok(&self, payload: &[u8]) {
        if let Some(u) = self
            .session_track
            .then(|| session_state::untrack(payload))
            .flatten()
        {
            self.note_gtids(u.last_gtid.as_deref());
        }
    }

    /// An OK (or end-of-rows OK) as a client may see it: without session state, whose
    /// GTID is kept first.
    pub fn plain_ok(&self, payload: Bytes) -> Bytes {
        if !self.session_track {
            return payload;
        }
        match session_state::untrack(&payload) {
            Some(u) => {
                self.note_gtids(u.last_gtid.as_deref());
                u.plain.freeze()
            }
            None => payload,
        }
    }
}
