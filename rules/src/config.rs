//! The TOML form of the cluster model, as DBAs write it. Unknown keys are rejected so a
//! typo never silently falls back to a default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rule_config::RuleConfig;

/// Data nodes and the logical schemas placed on them.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Replication groups, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes: BTreeMap<String, NodeConfig>,
    /// What clients see as databases, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub schemas: BTreeMap<String, SchemaConfig>,
    /// A node whose databases are all visible under their own names, for databases that
    /// are not logical schemas. Makes shardgate a transparent proxy for that node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough_node: Option<String>,
    /// Shard rules, by name; tables refer to them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<String, RuleConfig>,
    /// How reads use replicas.
    #[serde(default)]
    pub reads: ReadsConfig,
    /// How transactions and writes that span data nodes commit.
    #[serde(default)]
    pub transactions: TransactionsConfig,
}

impl ClusterConfig {
    /// Sets every open-ended date rule's periods in use from the clock (`now_unix`,
    /// seconds): the layout built from it has tables up to the current period plus
    /// the rule's `ahead`. Called by whoever builds a layout; the rules read no clock.
    pub fn materialize(&mut self, now_unix: i64) {
        for rule in self.rules.values_mut() {
            if let Some(periods) = rule.periods_at(now_unix) {
                rule.set_horizon(Some(periods));
            }
        }
    }
}

/// What a commit over several data nodes promises.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TransactionMode {
    /// All or nothing: a transaction (or a multi-shard write) that writes on several
    /// nodes commits with XA two-phase commit and a durable decision, and survives a
    /// crash of shardgate or of any backend.
    #[default]
    Xa,
    /// Each node commits in turn: faster, but a failure between two commits leaves
    /// the write applied on some nodes only (the error says which).
    BestEffort,
}

/// `[transactions]`: the commit protocol over several nodes, and its recovery.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TransactionsConfig {
    /// The default for users and schemas that do not set `transactions`.
    pub mode: TransactionMode,
    /// How often prepared XA branches left by a crash are looked for and resolved.
    pub recovery_interval_ms: u64,
}

impl Default for TransactionsConfig {
    fn default() -> Self {
        TransactionsConfig {
            mode: TransactionMode::Xa,
            recovery_interval_ms: 5000,
        }
    }
}

/// Whose writes a read must see when it runs on a replica.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CausalReads {
    /// The session's own writes (what an application written for one server assumes).
    #[default]
    Session,
    /// The writes of every session of the same user: for applications that write on
    /// one connection and read on another.
    Global,
    /// None: a read may run on a replica that has not applied them yet.
    None,
}

/// `[reads]`: replicas in the read rotation, and what a read waits for there.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ReadsConfig {
    /// The default for users and schemas that do not set `causal_reads`.
    pub causal_reads: CausalReads,
    /// How long a read waits on a replica for writes it must see before it runs on the
    /// primary instead; 0: it goes to the primary at once.
    pub causal_wait_ms: u64,
    /// A replica further behind than this leaves the read rotation until it catches up.
    pub max_replica_lag_ms: u64,
}

impl Default for ReadsConfig {
    fn default() -> Self {
        ReadsConfig {
            causal_reads: CausalReads::Session,
            causal_wait_ms: 1000,
            max_replica_lag_ms: 10_000,
        }
    }
}

/// One replication group: a primary, its replicas, and how to log in to them.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// `host:port` of the primary.
    pub primary: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<ReplicaConfig>,
    pub user: String,
    #[serde(default)]
    pub password: String,
    /// Read the password from this environment variable instead (at start and at
    /// each reload), so that the config file need not hold it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Read the password from this file instead (its first line; a secrets mount).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<std::path::PathBuf>,
    /// Physical database on this node; defaults to the logical schema's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Follow a promotion made outside shardgate: when the primary is read-only or
    /// gone and exactly one replica is writable and replicates from nothing, that
    /// replica becomes the primary (and the old primary a replica).
    #[serde(default, skip_serializing_if = "crate::config::is_false")]
    pub auto_detect_primary: bool,
    /// Connect to this node (primary and replicas) over TLS, its certificate checked
    /// against the CA certificates in this PEM file; unset: plain connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// The name the node's certificate must carry; default: the host of each address
    /// (a DNS name or an IP address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
}

impl NodeConfig {
    /// The password to log in to the node with: given, or read from the environment
    /// variable or file named. The error says what to fix.
    pub fn resolve_password(&self) -> Result<String, String> {
        match (&self.password_env, &self.password_file) {
            (None, None) => Ok(self.password.clone()),
            (Some(_), Some(_)) => Err("give password_env or password_file, not both".into()),
            _ if !self.password.is_empty() => {
                Err("give password, password_env or password_file, only one".into())
            }
            (Some(var), None) => std::env::var(var).map_err(|_| {
                format!("environment variable `{var}` (password_env) is not set, or not UTF-8")
            }),
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(text) => Ok(text.lines().next().unwrap_or("").to_string()),
                Err(e) => Err(format!(
                    "cannot read `{}` (password_file): {e}",
                    path.display()
                )),
            },
        }
    }
}

/// A replica, as `"host:port"` or `{ address = "host:port", weight = 2 }`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum ReplicaConfig {
    Address(String),
    Weighted(WeightedReplica),
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WeightedReplica {
    pub address: String,
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

impl ReplicaConfig {
    pub fn address(&self) -> &str {
        match self {
            ReplicaConfig::Address(a) => a,
            ReplicaConfig::Weighted(w) => &w.address,
        }
    }

    pub fn weight(&self) -> u32 {
        match self {
            ReplicaConfig::Address(_) => 1,
            ReplicaConfig::Weighted(w) => w.weight,
        }
    }
}

/// A logical schema: a default node for its unconfigured tables, plus configured tables.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SchemaConfig {
    /// The data node holding tables that are not configured (single tables).
    pub node: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tables: BTreeMap<String, TableConfig>,
    /// Binding groups: sharded tables placed alike, so joins on the key stay in a shard.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub binding: Vec<Vec<String>>,
    /// Overrides `reads.causal_reads` (and the user's) for statements in this schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causal_reads: Option<CausalReads>,
    /// Overrides `transactions.mode` (and the user's) for transactions begun in this schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions: Option<TransactionMode>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TableKindConfig {
    /// Rows split over shards by a rule on one column.
    Sharded,
    /// A full copy on every node: writes go to all, reads to one.
    Broadcast,
    /// Lives on one node.
    Single,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    pub kind: TableKindConfig,
    /// Sharded: the shard column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Sharded: the rule's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Sharded: nodes holding shards. Broadcast: nodes holding copies (default: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// Sharded: physical tables per node (rule shards = nodes × this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables_per_node: Option<u32>,
    /// Sharded: physical table name; `{table}`, `{shard}`, `{shard:04}`, `{suffix}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub naming: Option<String>,
    /// Sharded: `round_robin` (shard i on node i mod n, the default) or `block`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<String>,
    /// Single: the node (default: the schema's node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Sharded: generate this column's values when an INSERT omits them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_id: Option<GlobalIdConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GlobalIdConfig {
    pub column: String,
    /// Only `snowflake` for now: 41 bits of milliseconds, 10 of worker, 12 of sequence.
    #[serde(default = "snowflake")]
    pub generator: String,
    /// This shardgate instance's worker id, 0-1023; unique per instance.
    #[serde(default)]
    pub worker_id: u16,
}

/// Leaves a flag that is off out of the written form, as a DBA would.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

fn snowflake() -> String {
    "snowflake".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_replica_forms() {
        let cfg: ClusterConfig = toml::from_str(
            r#"
            [nodes.dn1]
            primary = "127.0.0.1:3306"
            replicas = ["127.0.0.1:3307", { address = "127.0.0.1:3308", weight = 3 }]
            user = "u"
            [schemas.app]
            node = "dn1"
            "#,
        )
        .unwrap();
        let r = &cfg.nodes["dn1"].replicas;
        assert_eq!((r[0].address(), r[0].weight()), ("127.0.0.1:3307", 1));
        assert_eq!((r[1].address(), r[1].weight()), ("127.0.0.1:3308", 3));
    }

    #[test]
    fn rejects_unknown_keys() {
        let err = toml::from_str::<ClusterConfig>(
            r#"
            [nodes.dn1]
            primary = "127.0.0.1:3306"
            user = "u"
            pasword = "typo"
            "#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("pasword"), "{err}");
    }
}
