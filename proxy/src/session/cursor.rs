//! Cursors on prepared statements that run on one node (COM_STMT_EXECUTE with a
//! cursor flag, then COM_STMT_FETCH): the server keeps the cursor on the connection
//! that executed it, so the session holds that connection
//! (`PinReason::Cursor`) until the last row is sent or the client resets or closes
//! the statement. Java's `useCursorFetch` and Ruby's streaming modes work this way.
//! A cursor over the rows of several shards is held on the connection that gathered
//! them (see `gathered_cursor.rs`).

use mysql_common::constants::StatusFlags;
use router::PinReason;

use super::cursor_answer::Flags;
use super::sharded::{RelayError, Renames};
use super::{Flow, Held, Reply, Session};
use crate::backend::ForwardError;
use crate::wire::response::{Mode, Reached, Summary};
use crate::wire::SqlError;

impl Session {
    /// The execution just sent on `held` asked for a cursor: relays its answer (the
    /// column definitions, names made logical, without rows when the server opened a
    /// cursor) and keeps the connection while the cursor is open.
    pub(super) async fn open_cursor(
        &mut self,
        mut held: Held,
        (id, backend_id): (u32, u32),
        seq: u8,
        renames: &Renames<'_>,
    ) -> Result<Flow, RelayError> {
        let flags = Flags {
            keep: StatusFlags::all(),
            add: self.lease.unopened_transaction(),
        };
        let answer = self
            .relay_cursor_answer(&mut held, seq, renames, flags)
            .await?;
        if answer.opened() {
            self.routed.cursors.insert(id, backend_id);
            self.pin(&mut held, PinReason::Cursor);
        }
        self.note_insert_id(answer.insert_id);
        self.lease.note_status(answer.status);
        let diagnostics = answer.warnings.max(u16::from(answer.failed));
        self.keep_or_release(held, diagnostics).await;
        self.release_if_no_cursor().await;
        Ok(Flow::Continue)
    }

    /// COM_STMT_FETCH: the next rows of statement `id`'s cursor, from the connection
    /// that holds it.
    pub(super) async fn fetch(&mut self, id: u32, payload: &[u8]) -> Reply {
        let no_cursor = || {
            let message = format!("The statement ({id}) has no open cursor");
            SqlError::new(1421, "HY000", message)
        };
        if self.routed.gathered.contains_key(&id) {
            return self.fetch_gathered(id, payload).await;
        }
        let Some(backend_id) = self.routed.cursors.get(&id).copied() else {
            return Err(no_cursor().into());
        };
        // The cursor's pin keeps the connection; without it the cursor is gone.
        let Some(mut held) = self.lease.held.take() else {
            self.routed.cursors.clear();
            return Err(no_cursor().into());
        };
        let mut fetch = payload.to_vec();
        if let Some(at) = fetch.get_mut(1..5) {
            at.copy_from_slice(&backend_id.to_le_bytes());
        }
        let answer = match held.conn.send_command(&fetch).await {
            Ok(()) => {
                held.conn
                    .forward(
                        &mut self.stream,
                        Mode::Fetch,
                        self.lease.unopened_transaction(),
                    )
                    .await
            }
            Err(err) => Err(ForwardError::Backend {
                err,
                reached: Reached::Nothing,
            }),
        };
        match answer {
            Ok(summary) => {
                // After the last row (or an error) the server has closed the cursor.
                if has(&summary, StatusFlags::SERVER_STATUS_LAST_ROW_SENT)
                    || summary.error.is_some()
                {
                    self.routed.cursors.remove(&id);
                }
                self.finish_on(held, &summary).await;
                Ok(Flow::Continue)
            }
            Err(ForwardError::Client(e)) => Err(e.into()),
            Err(ForwardError::Backend { err, reached }) => {
                drop(held);
                self.routed.cursors.clear();
                self.forget_connection_state();
                let err = err.to_client("(the cursor is gone)");
                // A fetch's answer starts at sequence id 1.
                Ok(self.answer_cut(reached, 1, err).await?)
            }
        }
    }

    /// Closes statement `id`'s cursor, if one is open (COM_STMT_RESET, COM_STMT_CLOSE).
    pub(super) async fn close_cursor(&mut self, id: u32) {
        if let Some(gathered) = self.routed.gathered.remove(&id) {
            // Reset before its next use: the cursor and the copies go with it.
            self.give_back(gathered.held).await;
        }
        let Some(backend_id) = self.routed.cursors.remove(&id) else {
            return;
        };
        if let Some(h) = &mut self.lease.held {
            if let Err(e) = h.conn.reset_statement(backend_id).await {
                tracing::debug!(conn = self.id, error = %e, "could not close a cursor; the connection is reset when released");
            }
        }
        self.release_if_no_cursor().await;
    }

    /// After a cursor's statement or fetch: the connection is kept while a cursor (or
    /// other state) needs it, else given back.
    async fn finish_on(&mut self, held: Held, summary: &Summary) {
        self.lease.note_status(summary.status);
        let diagnostics = summary.warnings.max(u16::from(summary.error.is_some()));
        self.keep_or_release(held, diagnostics).await;
        self.release_if_no_cursor().await;
    }

    /// With no cursor left open, the cursor no longer holds the connection.
    pub(super) async fn release_if_no_cursor(&mut self) {
        if self.routed.cursors.is_empty() && self.lease.pins.remove(&PinReason::Cursor) {
            self.control
                .set_pins(self.lease.pins.iter().map(|p| p.as_str()).collect());
            if !self.lease.must_keep() {
                self.release_held().await;
            }
        }
    }
}

fn has(summary: &Summary, flag: StatusFlags) -> bool {
    summary.status.is_some_and(|s| s.contains(flag))
}
