//! A write over several targets: a transaction per node (or a savepoint inside the
//! client's transaction), committed only when every target succeeded; over several
//! nodes in xa mode, one XA transaction committed in two phases, so that a crash
//! never leaves it applied on some nodes only. The nodes work
//! at once, each running its own targets in order on one connection; the answer
//! counts them as one statement on one server would.

use bytes::BytesMut;
use router::Merge;
use rules::runtime::LogicalSchema;
use rules::{NodeId, Runtime};
use tokio::io::AsyncWriteExt;

use super::binary::BinaryExecution;
use super::global::{Flight, Global};
use super::{Flow, Held, Reply, Session};
use crate::wire::generic::{self, ok_payload};
use crate::wire::packet::write_packet;
use crate::wire::SqlError;

/// How the targets' OK packets become the client's one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tally {
    /// Shards: affected rows and warnings add up; the insert id is the one given (ids
    /// shardgate generated), else the first target's that has one.
    Shards(Option<u64>),
    /// The copies of a broadcast table: one table to the client, so one copy's answer.
    Copies,
}

impl Tally {
    pub(super) fn of(merge: &Merge) -> Tally {
        match merge {
            Merge::Copies => Tally::Copies,
            _ => Tally::Shards(None),
        }
    }

    /// (affected rows, insert id, warnings) from the answers in the targets' order,
    /// as one statement on one server would count them.
    pub(super) fn count(self, answers: &[generic::OkInfo]) -> (u64, u64, u16) {
        match self {
            Tally::Copies => answers
                .first()
                .map_or((0, 0, 0), |o| (o.affected, o.last_insert_id, o.warnings)),
            Tally::Shards(given) => {
                let affected = answers.iter().map(|o| o.affected).sum();
                let first = answers.iter().map(|o| o.last_insert_id).find(|&i| i != 0);
                let warnings = answers
                    .iter()
                    .fold(0u16, |w, o| w.saturating_add(o.warnings));
                (affected, given.or(first).unwrap_or(0), warnings)
            }
        }
    }
}

impl Session {
    /// Writes on several targets: a transaction per node (or a savepoint inside the
    /// client's transaction), committed only when every target succeeded. The nodes
    /// work at once; each runs its own targets in order, on one connection.
    pub(super) async fn run_multi_write(
        &mut self,
        targets: &[&router::Target],
        binary: Option<&BinaryExecution<'_>>,
        tally: Tally,
        rt: &Runtime,
        schema: &LogicalSchema,
        seq: u8,
    ) -> Reply {
        // A savepoint only inside a real transaction (or one about to open): outside
        // one, even in a pinned session, each node's part is a transaction of its own.
        let in_client_txn = self.lease.in_client_transaction();
        // Each node's connection and its targets (by index), in the order they come.
        let mut conns: Vec<(NodeId, Held, Vec<usize>)> = Vec::new();
        let mut failure: Option<SqlError> = None;
        for (i, target) in targets.iter().enumerate() {
            if let Some(node) = conns.iter_mut().find(|c| c.0 == target.node) {
                node.2.push(i);
                continue;
            }
            match self.checkout(target.node, false, false).await {
                Ok(held) => conns.push((target.node, held, vec![i])),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let mut answers: Vec<Option<generic::OkInfo>> = vec![None; targets.len()];
        // Several nodes outside the client's transaction, in xa mode: one XA
        // transaction of its own, committed in two phases.
        let xa = match &self.shared.xa {
            Some(coord) if !in_client_txn && conns.len() > 1 && self.xa_wanted(None) => {
                let mut g = Global::new(
                    Vec::new(),
                    Some(Flight::new(coord)),
                    self.transaction_mode(),
                );
                for (node, _, _) in &conns {
                    g.note_write(*node);
                    g.opened.push(*node);
                }
                Some(g)
            }
            _ => None,
        };
        let opens: Vec<Vec<Vec<u8>>> = conns
            .iter()
            .map(|(node, _, _)| match &xa {
                Some(g) => g.open_on(&self.node_name(*node), &[]),
                None if in_client_txn => vec![b"SAVEPOINT shardgate_stmt".to_vec()],
                None => vec![b"START TRANSACTION".to_vec()],
            })
            .collect();
        if failure.is_none() {
            let charset = &self.charset;
            // Once one node fails, the others run no more of their targets: the
            // statement is rolled back everywhere anyway.
            let failed = &std::sync::atomic::AtomicBool::new(false);
            let parts = conns
                .iter_mut()
                .zip(&opens)
                .map(|((node, held, mine), open)| {
                    let db = schema.database_on(&rt.nodes, *node).to_string();
                    async move {
                        let result = async {
                            let mut opened = held.conn.use_database(&db).await;
                            for sql in open {
                                if opened.is_ok() {
                                    opened = held.conn.execute_ok(sql).await.map(drop);
                                }
                            }
                            opened.map_err(|e| {
                                e.to_client(
                                "during a multi-shard write (its part on this node did not run)",
                            )
                            })?;
                            let mut done = Vec::with_capacity(mine.len());
                            for &i in mine.iter() {
                                if failed.load(std::sync::atomic::Ordering::Relaxed) {
                                    break;
                                }
                                let target = targets[i];
                                let wire = charset.encode(&target.sql);
                                let ok = match binary {
                                    None => held.conn.execute_ok(&wire).await,
                                    Some(b) => b.run(held, &target.sql, &wire).await,
                                };
                                done.push((
                                    i,
                                    ok.map_err(|e| e.to_client("during a multi-shard write"))?,
                                ));
                            }
                            Ok::<_, SqlError>(done)
                        }
                        .await;
                        if result.is_err() {
                            failed.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        result
                    }
                });
            for result in futures_util::future::join_all(parts).await {
                match result {
                    Ok(done) => {
                        for (i, ok) in done {
                            answers[i] = Some(ok);
                        }
                    }
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
        }
        let answers: Vec<generic::OkInfo> = answers.into_iter().flatten().collect();
        if matches!(tally, Tally::Copies)
            && answers.windows(2).any(|w| w[0].affected != w[1].affected)
        {
            tracing::warn!(
                conn = self.id,
                "the copies of a broadcast table answered a write with different row counts; \
                 `shardgate check-broadcast` compares them"
            );
        }
        let (affected, insert_id, warnings) = tally.count(&answers);
        if let Some(global) = xa {
            let mut helds: Vec<Held> = conns.into_iter().map(|(_, h, _)| h).collect();
            let finished = self
                .finish_global(&global, &mut helds, failure.is_none())
                .await;
            for h in helds {
                self.keep_or_release(h, 0).await;
            }
            if let Some(mut e) = failure {
                e.message
                    .push_str(" (shardgate rolled back the statement on every shard)");
                return Err(e.into());
            }
            finished?;
            return self.send_write_ok(affected, insert_id, warnings, seq).await;
        }
        let finish: &[u8] = match (&failure, in_client_txn) {
            (None, true) => b"RELEASE SAVEPOINT shardgate_stmt",
            (None, false) => b"COMMIT",
            (Some(_), true) => b"ROLLBACK TO SAVEPOINT shardgate_stmt",
            (Some(_), false) => b"ROLLBACK",
        };
        let mut committed = Vec::new();
        let mut commit_failed = Vec::new();
        let finishing = conns
            .iter_mut()
            .map(|(_, held, _)| held.conn.execute_ok(finish));
        let finished = futures_util::future::join_all(finishing).await;
        for ((node, held, _), done) in conns.into_iter().zip(finished) {
            match done {
                Ok(ok) => {
                    committed.push(self.node_name(node));
                    if in_client_txn {
                        self.lease.note_status(Some(ok.status));
                    }
                    self.keep_or_release(held, 0).await;
                }
                Err(e) => {
                    commit_failed.push(format!("{}: {e}", self.node_name(node)));
                    drop(held);
                }
            }
        }
        if !commit_failed.is_empty() && failure.is_none() {
            let msg =
                format!(
                "shardgate: the write committed on {} but failed on {}; the shards now disagree",
                if committed.is_empty() { "no node".to_string() } else { committed.join(", ") },
                commit_failed.join("; ")
            );
            return Err(SqlError::new(1180, "HY000", msg).into());
        }
        if let Some(e) = failure {
            let mut e = e;
            e.message
                .push_str(" (shardgate rolled back the statement on every shard)");
            return Err(e.into());
        }
        self.send_write_ok(affected, insert_id, warnings, seq).await
    }

    /// The one OK a multi-target write answers with.
    pub(super) async fn send_write_ok(
        &mut self,
        affected: u64,
        insert_id: u64,
        warnings: u16,
        seq: u8,
    ) -> Reply {
        self.note_insert_id(insert_id);
        self.outcome.rows += affected;
        let mut out = BytesMut::new();
        let mut seq = seq;
        write_packet(
            &mut out,
            &mut seq,
            &ok_payload(affected, insert_id, self.lease.status(), warnings),
        );
        self.stream.write_all(&out).await?;
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::constants::StatusFlags;

    fn ok(affected: u64, last_insert_id: u64, warnings: u16) -> generic::OkInfo {
        generic::OkInfo {
            affected,
            last_insert_id,
            status: StatusFlags::empty(),
            warnings,
        }
    }

    #[test]
    fn shards_add_up_and_copies_answer_once() {
        let answers = [ok(2, 0, 1), ok(3, 7, 0), ok(1, 9, 2)];
        assert_eq!(Tally::Shards(None).count(&answers), (6, 7, 3));
        assert_eq!(Tally::Shards(Some(100)).count(&answers), (6, 100, 3));
        let copies = [ok(2, 5, 1), ok(2, 5, 1)];
        assert_eq!(Tally::Copies.count(&copies), (2, 5, 1));
        assert_eq!(Tally::of(&Merge::Copies), Tally::Copies);
        assert_eq!(Tally::of(&Merge::SumAffected), Tally::Shards(None));
    }
}
