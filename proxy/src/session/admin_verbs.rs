//! The admin port's views and operations on the running proxy: `SHOW NODES`,
//! `SHOW SESSIONS`, `SHOW XA`, `SHOW STATS` / `RESET STATS`, `SHOW SLOW QUERIES`,
//! `SHOW DATE TABLES`, `PREVIEW <sql>`, `KILL [QUERY|CONNECTION] <id>`, `SET REPLICA
//! '<addr>' OFFLINE|ONLINE`, `SWITCH PRIMARY OF <node> TO '<addr>'`, `SHOW HOSTS` /
//! `FLUSH HOSTS`. Changes are audited.

use super::{Flow, Reply, Session};
use crate::admin_plane::Who;
use crate::wire::resultset::LocalColumn;
use crate::wire::SqlError;

/// An admin verb on the running proxy.
enum Verb<'a> {
    Nodes,
    Sessions,
    Xa,
    Stats,
    ResetStats,
    Hosts,
    FlushHosts,
    SlowQueries,
    Preview(&'a str),
    Kill { query_only: bool, id: u64 },
    DateTables,
    Replica { address: String, offline: bool },
    SwitchPrimary { node: String, address: String },
}

/// Reads `sql` as one of the verbs; `None`: something else.
fn verb(sql: &str) -> Option<Result<Verb<'_>, SqlError>> {
    let text = sql.trim().trim_end_matches(';').trim();
    let upper = text.to_ascii_uppercase();
    let words: Vec<&str> = upper.split_whitespace().collect();
    let quoted = || -> Result<String, SqlError> {
        let start = text
            .find(['\'', '"'])
            .ok_or_else(|| SqlError::syntax("the address goes in quotes, e.g. '127.0.0.1:3307'"))?;
        let q = &text[start..start + 1];
        let rest = &text[start + 1..];
        let end = rest
            .find(q)
            .ok_or_else(|| SqlError::syntax("unterminated quoted address"))?;
        Ok(rest[..end].to_string())
    };
    Some(Ok(match words.as_slice() {
        ["SHOW", "NODES"] => Verb::Nodes,
        ["SHOW", "SESSIONS"] | ["SHOW", "PROCESSLIST"] | ["SHOW", "FULL", "PROCESSLIST"] => {
            Verb::Sessions
        }
        ["SHOW", "XA"] => Verb::Xa,
        ["SHOW", "STATS"] => Verb::Stats,
        ["RESET", "STATS"] => Verb::ResetStats,
        ["SHOW", "HOSTS"] => Verb::Hosts,
        ["FLUSH", "HOSTS"] => Verb::FlushHosts,
        ["SHOW", "SLOW", "QUERIES"] => Verb::SlowQueries,
        ["SHOW", "DATE", "TABLES"] => Verb::DateTables,
        ["PREVIEW", ..] => Verb::Preview(text[7..].trim_start()),
        ["KILL", rest @ ..] => {
            let (query_only, id) = match rest {
                ["QUERY", id] => (true, *id),
                ["CONNECTION", id] | [id] => (false, *id),
                _ => return Some(Err(SqlError::syntax("KILL [QUERY|CONNECTION] <id>"))),
            };
            match id.parse() {
                Ok(id) => Verb::Kill { query_only, id },
                Err(_) => {
                    return Some(Err(SqlError::syntax(format!(
                        "`{id}` is not a session id; SHOW SESSIONS lists them"
                    ))))
                }
            }
        }
        ["SET", "REPLICA", .., state @ ("OFFLINE" | "ONLINE")] => match quoted() {
            Ok(address) => Verb::Replica {
                address,
                offline: *state == "OFFLINE",
            },
            Err(e) => return Some(Err(e)),
        },
        // Not the client's own `SET …`, which is answered with OK: a typo here must
        // not look done.
        ["SET", "REPLICA", ..] => {
            return Some(Err(SqlError::syntax(
                "SET REPLICA '<host:port>' OFFLINE | ONLINE",
            )))
        }
        ["SWITCH", "PRIMARY", "OF", _, "TO", ..] => {
            let node = text
                .split_whitespace()
                .nth(3)
                .unwrap_or("")
                .trim_matches('`');
            match quoted() {
                Ok(address) => Verb::SwitchPrimary {
                    node: node.to_string(),
                    address,
                },
                Err(e) => return Some(Err(e)),
            }
        }
        ["SWITCH", ..] => {
            return Some(Err(SqlError::syntax(
                "SWITCH PRIMARY OF <node> TO '<host:port>'",
            )))
        }
        _ => return None,
    }))
}

impl Session {
    /// Runs `sql` when it is one of the verbs; `None` when it is not.
    pub(super) async fn admin_verb(&mut self, sql: &str, seq: u8) -> Option<Reply> {
        let verb = match verb(sql)? {
            Ok(v) => v,
            Err(e) => return Some(Err(e.into())),
        };
        Some(self.run_verb(verb, sql, seq).await)
    }

    async fn run_verb(&mut self, verb: Verb<'_>, sql: &str, seq: u8) -> Reply {
        let who = Who {
            user: self.admin_user.clone().unwrap_or_default(),
            client: self.peer.to_string(),
        };
        let plane = self
            .shared
            .admin
            .clone()
            .ok_or_else(|| SqlError::internal("the admin plane is not running"))?;
        match verb {
            Verb::Nodes => self.show_nodes(seq).await,
            Verb::Xa => self.show_xa(seq).await,
            Verb::Sessions => self.admin_sessions(seq).await,
            Verb::Stats => {
                let columns = crate::stats::Stats::COLUMNS.map(LocalColumn::text);
                let rows = self.shared.stats.rows();
                self.send_result_set(seq, "", &columns, &rows).await
            }
            Verb::ResetStats => {
                self.shared.stats.reset();
                plane.note(&who, sql, "ok").await?;
                self.send_ok(seq).await?;
                Ok(Flow::Continue)
            }
            Verb::Hosts => {
                // One row per address, and one per account tried from it (delays).
                let columns = [
                    "port",
                    "address",
                    "user",
                    "failed_logins",
                    "blocked",
                    "last_failure_s_ago",
                ]
                .map(LocalColumn::text);
                let rows: Vec<Vec<Option<String>>> = ["data", "admin"]
                    .iter()
                    .zip(&self.shared.hosts)
                    .flat_map(|(port, guard)| {
                        guard.list().into_iter().map(move |h| {
                            vec![
                                Some(port.to_string()),
                                Some(h.address.to_string()),
                                h.user,
                                Some(h.failures.to_string()),
                                Some(if h.blocked { "yes" } else { "no" }.to_string()),
                                Some(h.since_last.as_secs().to_string()),
                            ]
                        })
                    })
                    .collect();
                self.send_result_set(seq, "", &columns, &rows).await
            }
            Verb::FlushHosts => {
                for guard in &self.shared.hosts {
                    guard.flush();
                }
                plane.note(&who, sql, "ok").await?;
                self.send_ok(seq).await?;
                Ok(Flow::Continue)
            }
            Verb::SlowQueries => {
                let rows = self
                    .shared
                    .stats
                    .slow()
                    .into_iter()
                    .map(|s| {
                        vec![
                            Some(crate::stats::utc(s.at)),
                            Some(s.user),
                            s.schema,
                            Some(format!("{:.3}", s.elapsed.as_secs_f64() * 1000.0)),
                            Some(s.shards.to_string()),
                            Some(if s.failed { "error" } else { "ok" }.to_string()),
                            Some(s.statement),
                        ]
                    })
                    .collect::<Vec<_>>();
                let columns = [
                    "ended_at_utc",
                    "user",
                    "schema",
                    "ms",
                    "shards",
                    "result",
                    "statement",
                ]
                .map(LocalColumn::text);
                self.send_result_set(seq, "", &columns, &rows).await
            }
            Verb::DateTables => {
                let rt = self.lease.topo.runtime.clone();
                let timeout = self.shared.settings.pool.connect_timeout;
                let rows = crate::admin_plane::periods::show(&rt, timeout).await;
                let columns = crate::admin_plane::periods::SHOW_COLUMNS.map(LocalColumn::text);
                self.send_result_set(seq, "", &columns, &rows).await
            }
            Verb::Preview(statement) => {
                if statement.is_empty() {
                    return Err(SqlError::syntax(
                        "PREVIEW needs a statement, e.g. PREVIEW SELECT * FROM shop.orders WHERE user_id = 7",
                    )
                    .into());
                }
                let statement = statement.as_bytes().to_vec();
                self.explain_sharding(&statement, seq).await
            }
            Verb::Kill { query_only, id } => {
                let flow = self.kill(query_only, id, seq).await;
                let outcome = if flow.is_ok() {
                    "ok"
                } else {
                    "no such session"
                };
                plane.note(&who, sql, outcome).await?;
                flow
            }
            Verb::Replica { address, offline } => {
                let topo = self.lease.topo.clone();
                let pools: Vec<_> = topo
                    .nodes()
                    .iter()
                    .flat_map(|n| n.replicas.iter())
                    .filter(|r| r.target.address == address)
                    .collect();
                if pools.is_empty() {
                    return Err(SqlError::internal(format!(
                        "`{address}` is not a replica of any node; SHOW NODES lists them"
                    ))
                    .into());
                }
                for p in pools {
                    p.set_offline(offline);
                }
                let state = if offline { "offline" } else { "online" };
                tracing::info!(replica = %address, state, "replica read rotation changed on the admin port");
                plane.note(&who, sql, &format!("ok: {state}")).await?;
                self.send_ok(seq).await?;
                Ok(Flow::Continue)
            }
            Verb::SwitchPrimary { node, address } => {
                let reply = plane.switch_primary(&who, sql, &node, &address).await?;
                self.send_admin_reply(reply, seq).await
            }
        }
    }

    /// Every client session: who, from where, in which schema, doing what for how
    /// long, and whether a connection is pinned to it (and why).
    async fn admin_sessions(&mut self, seq: u8) -> Reply {
        let rows: Vec<Vec<Option<String>>> = self
            .shared
            .sessions
            .list()
            .into_iter()
            .map(|(id, c)| {
                let a = c.activity();
                let backends: Vec<String> = c
                    .running()
                    .iter()
                    .map(|r| format!("{}, thread {}", r.pool.target.label, r.thread))
                    .collect();
                vec![
                    Some(id.to_string()),
                    Some(c.user.clone()),
                    Some(c.host.clone()),
                    a.db.clone(),
                    Some(a.command.to_string()),
                    Some(a.since.elapsed().as_millis().to_string()),
                    Some(c.pins().join(",")),
                    a.info(),
                    (!backends.is_empty()).then(|| backends.join("; ")),
                ]
            })
            .collect();
        let columns = [
            LocalColumn::integer("id"),
            LocalColumn::text("user"),
            LocalColumn::text("client"),
            LocalColumn::text("schema"),
            LocalColumn::text("command"),
            LocalColumn::integer("time_ms"),
            LocalColumn::text("pinned_by"),
            LocalColumn::text("statement"),
            LocalColumn::text("backend"),
        ];
        self.send_result_set(seq, "", &columns, &rows).await
    }
}
