//! A write over several targets: a transaction per node (or a savepoint inside the
//! client's transaction), committed only when every target succeeded. The nodes work
//! at once, each running its own targets in order on one connection; the answer
//! counts them as one statement on one server would.

use bytes::BytesMut;
use rules::runtime::LogicalSchema;
use rules::{NodeId, Runtime};
use tokio::io::AsyncWriteExt;

use super::binary::BinaryExecution;
use super::{Flow, Held, Reply, Session};
use crate::wire::generic::{self, ok_payload};
use crate::wire::packet::write_packet;
use crate::wire::SqlError;

impl Session {
    /// Writes on several targets: a transaction per node (or a savepoint inside the
    /// client's transaction), committed only when every target succeeded. The nodes
    /// work at once; each runs its own targets in order, on one connection.
    pub(super) async fn run_multi_write(
        &mut self,
        targets: &[&router::Target],
        binary: Option<&BinaryExecution<'_>>,
        insert_id: Option<u64>,
        rt: &Runtime,
        schema: &LogicalSchema,
        seq: u8,
    ) -> Reply {
        // A savepoint only inside a real transaction (or one about to open): outside
        // one, even in a pinned session, each node's part is a transaction of its own.
        let in_client_txn = self.lease.in_transaction
            || !self.lease.autocommit
            || !self.lease.pending_txn.is_empty();
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
        if failure.is_none() {
            let open: &[u8] = if in_client_txn {
                b"SAVEPOINT shardgate_stmt"
            } else {
                b"START TRANSACTION"
            };
            let charset = &self.charset;
            // Once one node fails, the others run no more of their targets: the
            // statement is rolled back everywhere anyway.
            let failed = &std::sync::atomic::AtomicBool::new(false);
            let parts = conns.iter_mut().map(|(node, held, mine)| {
                let db = schema.database_on(&rt.nodes, *node).to_string();
                async move {
                    let result = async {
                        let opened = match held.conn.use_database(&db).await {
                            Ok(()) => held.conn.execute_ok(open).await.map(drop),
                            Err(e) => Err(e),
                        };
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
        // In the targets' order, as one statement on one server would count them. The
        // targets of a broadcast table's write (no shard: each holds a copy) are one
        // table to the client: the answer is one copy's.
        let copies = targets.iter().all(|t| t.shard.is_none());
        let (mut affected, mut last_insert_id, mut warnings) = (0u64, 0u64, 0u16);
        for ok in answers.iter().flatten() {
            if copies {
                if ok.affected != answers[0].map_or(0, |first| first.affected) {
                    tracing::warn!(
                        conn = self.id,
                        "the copies of a broadcast table answered a write with different row counts; \
                         `shardgate check-broadcast` compares them"
                    );
                }
                continue;
            }
            affected += ok.affected;
            if last_insert_id == 0 {
                last_insert_id = ok.last_insert_id;
            }
            warnings = warnings.saturating_add(ok.warnings);
        }
        if let (true, Some(first)) = (copies, answers.first().copied().flatten()) {
            (affected, last_insert_id, warnings) =
                (first.affected, first.last_insert_id, first.warnings);
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
        let insert_id = insert_id.unwrap_or(last_insert_id);
        self.note_insert_id(insert_id);
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
