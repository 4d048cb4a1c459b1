//! DDL over several physical tables (a sharded table's shards, a broadcast table's
//! copies). MariaDB commits each DDL statement at once and cannot roll it back, so a
//! transaction around them would promise what it cannot keep. The targets run one
//! by one, stopping at the first failure, and the error says exactly which physical
//! tables changed, which did not, and how to finish or undo.

use bytes::BytesMut;
use rules::runtime::LogicalSchema;
use rules::Runtime;
use tokio::io::AsyncWriteExt;

use super::{Flow, Reply, Session};
use crate::wire::generic::ok_payload;
use crate::wire::packet::write_packet;
use crate::wire::WireError;

impl Session {
    pub(super) async fn run_ddl(
        &mut self,
        targets: &[router::Target],
        rt: &Runtime,
        schema: &LogicalSchema,
        seq: u8,
    ) -> Reply {
        let mut warnings = 0u16;
        for (i, target) in targets.iter().enumerate() {
            let failure = match self.checkout(target.node, false, false).await {
                Err(e) => e,
                Ok(mut held) => {
                    let db = schema.database_on(&rt.nodes, target.node).to_string();
                    let ran = match held.conn.use_database(&db).await {
                        Ok(()) => {
                            let wire = self.charset.encode(&target.sql);
                            held.conn.execute_ok(&wire).await
                        }
                        Err(e) => Err(e),
                    };
                    match ran {
                        Ok(ok) => {
                            // DDL commits by itself: the session follows the server.
                            self.lease.note_status(Some(ok.status));
                            warnings = warnings.saturating_add(ok.warnings);
                            self.keep_or_release(held, ok.warnings).await;
                            continue;
                        }
                        Err(e @ WireError::Server { .. }) => {
                            self.keep_or_release(held, 0).await;
                            e.to_client("")
                        }
                        Err(e) => {
                            self.forget_connection_state();
                            e.to_client("(this part may or may not have been applied)")
                        }
                    }
                }
            };
            let report = self.ddl_report(targets, i, rt, schema);
            metrics::counter!("shardgate_partial_ddl_total").increment(1);
            let mut e = failure;
            e.message.push_str(&report);
            return Err(e.into());
        }
        let mut out = BytesMut::new();
        let mut seq = seq;
        write_packet(
            &mut out,
            &mut seq,
            &ok_payload(0, 0, self.lease.status(), warnings),
        );
        self.stream.write_all(&out).await?;
        Ok(Flow::Continue)
    }

    /// What a DDL that failed at `targets[failed]` left behind, in words a DBA can act on.
    fn ddl_report(
        &self,
        targets: &[router::Target],
        failed: usize,
        rt: &Runtime,
        schema: &LogicalSchema,
    ) -> String {
        let place = |t: &router::Target| {
            let node = self.node_name(t.node);
            match t.shard {
                Some(s) => format!("{node} shard {s}"),
                None => node,
            }
        };
        let statement = |t: &router::Target| {
            format!(
                "{} in database `{}`: {}",
                place(t),
                schema.database_on(&rt.nodes, t.node),
                t.sql
            )
        };
        let applied: Vec<String> = targets[..failed].iter().map(place).collect();
        let rest: Vec<String> = targets[failed..].iter().map(statement).collect();
        let mut report = String::from(
            " -- shardgate: DDL cannot be rolled back, and this one is now applied on ",
        );
        report.push_str(&if applied.is_empty() {
            "no physical table".to_string()
        } else {
            applied.join(", ")
        });
        report.push_str(&format!(
            "; it failed on {}, and did not run on the rest. To finish it, remove the cause and \
             run each remaining statement on its node; to undo it, reverse it on the tables \
             where it applied. Remaining: {}",
            place(&targets[failed]),
            rest.join("; ")
        ));
        report
    }
}

/// A statement that changes table definitions (and commits by itself).
pub(super) fn is_ddl(sql: &[u8]) -> bool {
    router::classify(sql).is_ok_and(|s| s.kind == router::StatementKind::Ddl)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ddl_is_told_from_other_writes() {
        assert!(super::is_ddl(b"ALTER TABLE t ADD COLUMN c INT"));
        assert!(super::is_ddl(b"  create index i on t (a)"));
        assert!(!super::is_ddl(b"UPDATE t SET a = 1"));
    }
}
