//! Starting the parts of a multi-shard statement: every part is sent before any
//! answer is read, each on its own connection, so the shards work at once and the
//! statement takes as long as its slowest part, not the sum of them. Answers are then
//! read in the order the caller needs them; a part not read yet waits in its socket
//! (the server blocks on a full buffer), so nothing is held in shardgate's memory.
//!
//! Inside a transaction (or a pinned session) the session has one connection per
//! node, which carries one statement at a time: there each part is started when its
//! answer is about to be read.

use std::collections::VecDeque;

use router::Target;
use rules::runtime::LogicalSchema;
use rules::Runtime;

use super::{Held, Session};
use crate::wire::{SqlError, WireError};

/// What a part started ahead runs under: a day before the server gives up writing
/// a result nobody reads yet.
const PATIENT: &[u8] = b"SET STATEMENT net_write_timeout = 86400 FOR ";

/// Why a part did not start.
#[derive(Debug, thiserror::Error)]
pub(super) enum StartError {
    /// No connection (pool, node or transaction): nothing was sent.
    #[error("{}", .0.message)]
    Checkout(SqlError),
    /// The backend refused the database or the send failed; a refused connection
    /// was given back already, a broken one dropped.
    #[error("{0}")]
    Send(WireError),
}

/// Parts started ahead of their reading.
pub(super) struct Parts {
    started: VecDeque<Held>,
}

impl Session {
    /// Starts every part at once when the session may use a connection per part;
    /// otherwise starts none (see [`Session::next_part`]).
    pub(super) async fn start_parts(
        &mut self,
        targets: &[Target],
        read_only: bool,
        rt: &Runtime,
        schema: &LogicalSchema,
    ) -> Result<Parts, StartError> {
        let mut parts = Parts {
            started: VecDeque::new(),
        };
        // With autocommit off each part would open a transaction of its own.
        if targets.len() > 1 && !self.lease.must_keep() && self.lease.autocommit {
            for (i, target) in targets.iter().enumerate() {
                // The first part waits for its connection like any statement; later
                // ones start ahead only when their pool lends at once, so a session
                // never waits for a connection it holds itself (a pool smaller than
                // the node's shard count), and the rest start when read.
                let lends = self.lease.topo.node(target.node).lends_now(read_only);
                if i > 0 && !lends {
                    break;
                }
                let held = self
                    .start_part(target, read_only, rt, schema, i > 0)
                    .await?;
                parts.started.push_back(held);
            }
        }
        Ok(parts)
    }

    /// The connection running `target`'s part: started ahead, or started now.
    pub(super) async fn next_part(
        &mut self,
        parts: &mut Parts,
        target: &Target,
        read_only: bool,
        rt: &Runtime,
        schema: &LogicalSchema,
    ) -> Result<Held, StartError> {
        match parts.started.pop_front() {
            Some(held) => Ok(held),
            None => self.start_part(target, read_only, rt, schema, false).await,
        }
    }

    /// Checks out a connection for `target` and sends its statement, without
    /// reading the answer. A part started `ahead` may wait long, with its result
    /// unread, while the parts before it stream to the client: on MariaDB it runs with
    /// a long `net_write_timeout`, so that the server does not give up on it.
    async fn start_part(
        &mut self,
        target: &Target,
        read_only: bool,
        rt: &Runtime,
        schema: &LogicalSchema,
        ahead: bool,
    ) -> Result<Held, StartError> {
        let mut held = self
            .checkout(target.node, read_only, false)
            .await
            .map_err(StartError::Checkout)?;
        let db = schema.database_on(&rt.nodes, target.node);
        let wire = self.charset.encode(&target.sql);
        let wire: std::borrow::Cow<'_, [u8]> = if ahead && self.shared.backend_version.mariadb {
            let mut w = PATIENT.to_vec();
            w.extend_from_slice(&wire);
            w.into()
        } else {
            wire
        };
        match held.conn.send_query(Some(db), &wire).await {
            Ok(()) => Ok(held),
            Err(e) => {
                if matches!(e, WireError::Server { .. }) {
                    self.keep_or_release(held, 0).await;
                }
                Err(StartError::Send(e))
            }
        }
    }
}
