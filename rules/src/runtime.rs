//! The validated, immutable form of a [`ClusterConfig`] that statements are planned
//! against. Built once per config change and shared behind an `Arc`; never mutated.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::algorithm::Algorithm;
use crate::config::{CausalReads, ClusterConfig, ReadsConfig, TransactionMode, TransactionsConfig};
use crate::endpoint::Endpoint;
use crate::error::{ConfigError, ConfigErrors};
use crate::table::{Table, TableKind};

mod tables;
use tables::{build_tables, check_bindings};

/// Index of a data node in [`Runtime::nodes`].
pub type NodeId = usize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub endpoint: Endpoint,
    /// Share of reads, relative to the other replicas of the node (≥ 1).
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataNode {
    pub name: String,
    pub primary: Endpoint,
    pub replicas: Vec<Replica>,
    pub user: String,
    pub password: String,
    pub database: Option<String>,
    /// TLS to the node: `None` for plain connections.
    pub tls: Option<NodeTls>,
}

/// How the node's certificate is checked: the CA certificates (PEM, read when the
/// layout is built, like a password file) and the name it must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTls {
    pub ca_file: std::path::PathBuf,
    pub ca_pem: Vec<u8>,
    /// `None`: the host of the address connected to.
    pub server_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LogicalSchema {
    pub name: String,
    /// Where unconfigured (single) tables live.
    pub node: NodeId,
    /// The database name on every node.
    pub database: String,
    pub tables: BTreeMap<String, Table>,
    /// Binding groups, each a list of sharded table names placed alike.
    pub bindings: Vec<Vec<String>>,
    /// The physical tables of its sharded tables (lowercase), which clients know
    /// only by the logical name: a statement naming one is refused.
    pub shard_tables: BTreeSet<String>,
    /// Whose writes its reads must see, when the schema says.
    pub causal_reads: Option<CausalReads>,
    /// How its transactions commit over several nodes, when the schema says.
    pub transactions: Option<TransactionMode>,
}

/// The physical names of sharded tables that are not also a logical name.
fn shard_tables(tables: &BTreeMap<String, Table>) -> BTreeSet<String> {
    let logical: BTreeSet<String> = tables.keys().map(|k| k.to_lowercase()).collect();
    tables
        .values()
        .filter_map(|t| match &t.kind {
            TableKind::Sharded(s) => Some(s.shards.iter().map(|l| l.table.to_lowercase())),
            _ => None,
        })
        .flatten()
        .filter(|p| !logical.contains(p))
        .collect()
}

impl LogicalSchema {
    /// The database that holds this schema's tables on `node`.
    pub fn database_on<'a>(&'a self, nodes: &'a [DataNode], node: NodeId) -> &'a str {
        nodes
            .get(node)
            .and_then(|n| n.database.as_deref())
            .unwrap_or(&self.name)
    }

    /// Every node that holds a table of this schema: its own node first.
    pub fn nodes(&self) -> BTreeSet<NodeId> {
        let mut out = BTreeSet::from([self.node]);
        for t in self.tables.values() {
            match &t.kind {
                TableKind::Sharded(s) => out.extend(s.shards.iter().map(|l| l.node)),
                TableKind::Broadcast { nodes } => out.extend(nodes.iter().copied()),
                TableKind::Single { node } => {
                    out.insert(*node);
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
pub struct Runtime {
    pub nodes: Vec<DataNode>,
    pub schemas: BTreeMap<String, LogicalSchema>,
    pub passthrough: Option<NodeId>,
    pub rules: BTreeMap<String, Arc<Algorithm>>,
    /// The length of the shortest physical shard table name of any schema (`None`:
    /// there are none), so that a statement's words are compared with them only when
    /// long enough, without a look at every shard per statement.
    pub shortest_shard_table: Option<usize>,
    pub reads: ReadsConfig,
    pub transactions: TransactionsConfig,
}

/// Where statements of a session with a given current database run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement<'a> {
    pub node: NodeId,
    /// Physical database on the node, `None` when the session has none selected.
    pub database: Option<&'a str>,
}

impl Runtime {
    /// Validates `config`, returning every problem found rather than the first.
    pub fn build(config: &ClusterConfig) -> Result<Runtime, ConfigErrors> {
        let mut errors = Vec::new();
        let mut nodes = Vec::new();
        let mut node_ids = BTreeMap::new();

        if config.nodes.is_empty() {
            errors.push(ConfigError::new(
                "nodes",
                "no data nodes defined; add at least one [nodes.NAME] with a primary",
            ));
        }
        for (name, node) in &config.nodes {
            let key = format!("nodes.{name}");
            check_name(&key, name, &mut errors);
            let primary = Endpoint::parse(&node.primary).unwrap_or_else(|e| {
                errors.push(ConfigError::new(format!("{key}.primary"), e));
                placeholder()
            });
            let mut replicas = Vec::new();
            for (i, r) in node.replicas.iter().enumerate() {
                let rkey = format!("{key}.replicas[{i}]");
                match Endpoint::parse(r.address()) {
                    Ok(endpoint) => {
                        if endpoint == primary {
                            errors.push(ConfigError::new(
                                &rkey,
                                format!("{endpoint} is also the primary of this node"),
                            ));
                        }
                        if replicas.iter().any(|x: &Replica| x.endpoint == endpoint) {
                            errors.push(ConfigError::new(
                                &rkey,
                                format!("{endpoint} is listed twice"),
                            ));
                        }
                        if r.weight() == 0 {
                            errors.push(ConfigError::new(
                                format!("{rkey}.weight"),
                                "weight must be at least 1; remove the replica to stop reads on it",
                            ));
                        }
                        replicas.push(Replica {
                            endpoint,
                            weight: r.weight(),
                        });
                    }
                    Err(e) => errors.push(ConfigError::new(rkey, e)),
                }
            }
            if node.user.is_empty() {
                errors.push(ConfigError::new(format!("{key}.user"), "must not be empty"));
            }
            if let Some(db) = &node.database {
                check_name(&format!("{key}.database"), db, &mut errors);
            }
            let password = node.resolve_password().unwrap_or_else(|e| {
                errors.push(ConfigError::new(format!("{key}.password"), e));
                String::new()
            });
            let tls = match (&node.tls_ca, &node.tls_server_name) {
                (Some(ca), name) => match std::fs::read(ca) {
                    Ok(ca_pem) => Some(NodeTls {
                        ca_file: ca.clone(),
                        ca_pem,
                        server_name: name.clone(),
                    }),
                    Err(e) => {
                        errors.push(ConfigError::new(
                            format!("{key}.tls_ca"),
                            format!("cannot read `{}`: {e}", ca.display()),
                        ));
                        None
                    }
                },
                (None, Some(_)) => {
                    errors.push(ConfigError::new(
                        format!("{key}.tls_server_name"),
                        "needs tls_ca: the CA the node's certificate is checked against",
                    ));
                    None
                }
                (None, None) => None,
            };
            node_ids.insert(name.clone(), nodes.len());
            nodes.push(DataNode {
                name: name.clone(),
                primary,
                replicas,
                user: node.user.clone(),
                password,
                database: node.database.clone(),
                tls,
            });
        }

        let mut rules = BTreeMap::new();
        for (name, rule) in &config.rules {
            let key = format!("rules.{name}");
            check_name(&key, name, &mut errors);
            match rule.build(&key) {
                Ok(a) => {
                    rules.insert(name.clone(), Arc::new(a));
                }
                Err(e) => errors.extend(e),
            }
        }

        let mut schemas = BTreeMap::new();
        for (name, schema) in &config.schemas {
            let key = format!("schemas.{name}");
            check_name(&key, name, &mut errors);
            match node_ids.get(&schema.node) {
                Some(&id) => {
                    let database = nodes[id].database.clone().unwrap_or_else(|| name.clone());
                    let tables = build_tables(
                        &key,
                        schema,
                        id,
                        &node_ids,
                        &rules,
                        &config.rules,
                        &mut errors,
                    );
                    check_bindings(&key, schema, &tables, &mut errors);
                    let shard_tables = shard_tables(&tables);
                    schemas.insert(
                        name.clone(),
                        LogicalSchema {
                            name: name.clone(),
                            node: id,
                            database,
                            tables,
                            bindings: schema.binding.clone(),
                            shard_tables,
                            causal_reads: schema.causal_reads,
                            transactions: schema.transactions,
                        },
                    );
                }
                None => {
                    errors.push(unknown_node(format!("{key}.node"), &schema.node, &node_ids));
                    // The tables' own mistakes are reported too, not hidden behind
                    // this one.
                    let tables = build_tables(
                        &key,
                        schema,
                        0,
                        &node_ids,
                        &rules,
                        &config.rules,
                        &mut errors,
                    );
                    check_bindings(&key, schema, &tables, &mut errors);
                }
            }
        }

        let passthrough = match &config.passthrough_node {
            None => None,
            Some(n) => match node_ids.get(n) {
                Some(&id) => Some(id),
                None => {
                    errors.push(unknown_node("passthrough_node".into(), n, &node_ids));
                    None
                }
            },
        };
        if schemas.is_empty() && passthrough.is_none() && !config.nodes.is_empty() {
            errors.push(ConfigError::new(
                "schemas",
                "no logical schemas and no passthrough_node: clients could reach no database",
            ));
        }

        if errors.is_empty() {
            let shortest_shard_table = schemas
                .values()
                .flat_map(|s| s.shard_tables.iter().map(String::len))
                .min();
            Ok(Runtime {
                nodes,
                schemas,
                passthrough,
                rules,
                shortest_shard_table,
                reads: config.reads,
                transactions: config.transactions,
            })
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Where a session whose current database is `db` runs its statements, or `None`
    /// when `db` is neither a logical schema nor reachable through the passthrough node.
    pub fn placement<'a>(&'a self, db: Option<&'a str>) -> Option<Placement<'a>> {
        match db {
            Some(db) => match self.schemas.get(db) {
                Some(s) => Some(Placement {
                    node: s.node,
                    database: Some(&s.database),
                }),
                None => self.passthrough.map(|node| Placement {
                    node,
                    database: Some(db),
                }),
            },
            None => Some(Placement {
                node: self.default_node(),
                database: None,
            }),
        }
    }

    /// The node that runs statements which name no database (e.g. `SELECT 1`).
    pub fn default_node(&self) -> NodeId {
        self.passthrough
            .or_else(|| self.schemas.values().next().map(|s| s.node))
            .unwrap_or(0)
    }

    /// True when `db` names a database clients may use.
    pub fn is_known_database(&self, db: &str) -> bool {
        self.schemas.contains_key(db)
    }
}

fn placeholder() -> Endpoint {
    Endpoint {
        host: String::new(),
        port: 0,
    }
}

fn check_name(key: &str, name: &str, errors: &mut Vec<ConfigError>) {
    if name.is_empty() || name.len() > 64 || name.contains(['`', '/', '\\', '.', '\0']) {
        errors.push(ConfigError::new(
            key,
            format!(
                "`{name}` is not a usable name (1-64 characters, no backtick, slash, dot or NUL)"
            ),
        ));
    }
}

fn unknown_node(key: String, name: &str, known: &BTreeMap<String, NodeId>) -> ConfigError {
    let names: Vec<&str> = known.keys().map(String::as_str).collect();
    ConfigError::new(
        key,
        format!("unknown node `{name}`; defined nodes: {}", names.join(", ")),
    )
}

#[cfg(test)]
mod tests;
