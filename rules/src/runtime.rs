//! The validated, immutable form of a [`ClusterConfig`] that statements are planned
//! against. Built once per config change and shared behind an `Arc`; never mutated.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::algorithm::Algorithm;
use crate::config::{
    CausalReads, ClusterConfig, ReadsConfig, SchemaConfig, TableConfig, TableKindConfig,
};
use crate::endpoint::Endpoint;
use crate::error::{ConfigError, ConfigErrors};
use crate::table::{physical_name, GlobalId, ShardLocation, ShardedTable, Table, TableKind};

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
            node_ids.insert(name.clone(), nodes.len());
            nodes.push(DataNode {
                name: name.clone(),
                primary,
                replicas,
                user: node.user.clone(),
                password: node.password.clone(),
                database: node.database.clone(),
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

fn build_tables(
    schema_key: &str,
    schema: &SchemaConfig,
    default_node: NodeId,
    node_ids: &BTreeMap<String, NodeId>,
    rules: &BTreeMap<String, Arc<Algorithm>>,
    rule_configs: &BTreeMap<String, crate::rule_config::RuleConfig>,
    errors: &mut Vec<ConfigError>,
) -> BTreeMap<String, Table> {
    let mut tables = BTreeMap::new();
    for (name, t) in &schema.tables {
        let key = format!("{schema_key}.tables.{name}");
        check_name(&key, name, errors);
        let node_list = |errors: &mut Vec<ConfigError>| -> Vec<NodeId> {
            let mut ids = Vec::new();
            for n in &t.nodes {
                match node_ids.get(n) {
                    Some(&id) if ids.contains(&id) => errors.push(ConfigError::new(
                        format!("{key}.nodes"),
                        format!("node `{n}` is listed twice"),
                    )),
                    Some(&id) => ids.push(id),
                    None => errors.push(unknown_node(format!("{key}.nodes"), n, node_ids)),
                }
            }
            ids
        };
        let not_for = |field: &str, set: bool, kind: &str, errors: &mut Vec<ConfigError>| {
            if set {
                errors.push(ConfigError::new(
                    format!("{key}.{field}"),
                    format!("not a setting of {kind} tables"),
                ));
            }
        };
        let kind = match t.kind {
            TableKindConfig::Sharded => {
                not_for("node", t.node.is_some(), "sharded", errors);
                match sharded(
                    &key,
                    name,
                    t,
                    node_list(errors),
                    rules,
                    rule_configs,
                    errors,
                ) {
                    Some(s) => TableKind::Sharded(s),
                    None => continue,
                }
            }
            TableKindConfig::Broadcast => {
                for (field, set) in [
                    ("column", t.column.is_some()),
                    ("rule", t.rule.is_some()),
                    ("tables_per_node", t.tables_per_node.is_some()),
                    ("naming", t.naming.is_some()),
                    ("placement", t.placement.is_some()),
                    ("node", t.node.is_some()),
                    ("global_id", t.global_id.is_some()),
                ] {
                    not_for(field, set, "broadcast", errors);
                }
                let mut nodes = node_list(errors);
                if nodes.is_empty() {
                    nodes = node_ids.values().copied().collect();
                }
                TableKind::Broadcast { nodes }
            }
            TableKindConfig::Single => {
                for (field, set) in [
                    ("column", t.column.is_some()),
                    ("rule", t.rule.is_some()),
                    ("nodes", !t.nodes.is_empty()),
                    ("tables_per_node", t.tables_per_node.is_some()),
                    ("naming", t.naming.is_some()),
                    ("placement", t.placement.is_some()),
                    ("global_id", t.global_id.is_some()),
                ] {
                    not_for(field, set, "single", errors);
                }
                let node = match &t.node {
                    None => default_node,
                    Some(n) => match node_ids.get(n) {
                        Some(&id) => id,
                        None => {
                            errors.push(unknown_node(format!("{key}.node"), n, node_ids));
                            continue;
                        }
                    },
                };
                TableKind::Single { node }
            }
        };
        tables.insert(
            name.clone(),
            Table {
                name: name.clone(),
                kind,
            },
        );
    }
    tables
}

fn sharded(
    key: &str,
    name: &str,
    t: &TableConfig,
    nodes: Vec<NodeId>,
    rules: &BTreeMap<String, Arc<Algorithm>>,
    rule_configs: &BTreeMap<String, crate::rule_config::RuleConfig>,
    errors: &mut Vec<ConfigError>,
) -> Option<ShardedTable> {
    let before = errors.len();
    let column = t.column.clone().unwrap_or_else(|| {
        errors.push(ConfigError::new(
            format!("{key}.column"),
            "sharded tables need a shard column",
        ));
        String::new()
    });
    if t.nodes.is_empty() {
        errors.push(ConfigError::new(
            format!("{key}.nodes"),
            "sharded tables need the list of nodes holding shards",
        ));
    }
    let rule_name = match &t.rule {
        None => {
            errors.push(ConfigError::new(
                format!("{key}.rule"),
                "sharded tables need a rule",
            ));
            return None;
        }
        Some(r) => r.clone(),
    };
    let Some(algorithm) = rules.get(&rule_name).cloned() else {
        if !rule_configs.contains_key(&rule_name) {
            let known: Vec<&str> = rule_configs.keys().map(String::as_str).collect();
            errors.push(ConfigError::new(
                format!("{key}.rule"),
                format!(
                    "unknown rule `{rule_name}`; defined rules: {}",
                    known.join(", ")
                ),
            ));
        }
        return None;
    };
    let per_node = t.tables_per_node.unwrap_or(1);
    let shards = algorithm.shards();
    if per_node == 0 {
        errors.push(ConfigError::new(
            format!("{key}.tables_per_node"),
            "must be at least 1",
        ));
    } else if !nodes.is_empty()
        && nodes.len() == t.nodes.len()
        && nodes.len() as u64 * per_node as u64 != shards as u64
    {
        // Counted only when every listed node is known: an unknown one is its own
        // error, not a shard-count mismatch too.
        errors.push(ConfigError::new(
            format!("{key}.rule"),
            format!(
                "rule `{rule_name}` has {shards} shards, but {} nodes × {per_node} tables per node = {}; \
                 change the rule's shard count, the nodes, or tables_per_node",
                nodes.len(),
                nodes.len() as u64 * per_node as u64
            ),
        ));
    }
    let block = match t.placement.as_deref() {
        None | Some("round_robin") => false,
        Some("block") => true,
        Some(other) => {
            errors.push(ConfigError::new(
                format!("{key}.placement"),
                format!("`{other}`: use round_robin or block"),
            ));
            false
        }
    };
    let has_suffix = algorithm.suffix(0).is_some();
    let template = t.naming.clone().unwrap_or_else(|| {
        if has_suffix {
            "{table}_{suffix}".into()
        } else if per_node > 1 {
            "{table}_{shard:04}".into()
        } else {
            "{table}".into()
        }
    });
    let global_id = t.global_id.as_ref().map(|g| {
        if g.generator != "snowflake" {
            errors.push(ConfigError::new(
                format!("{key}.global_id.generator"),
                format!("`{}`: only snowflake is supported", g.generator),
            ));
        }
        if g.worker_id > 1023 {
            errors.push(ConfigError::new(
                format!("{key}.global_id.worker_id"),
                "must be 0-1023",
            ));
        }
        if g.column.is_empty() {
            errors.push(ConfigError::new(
                format!("{key}.global_id.column"),
                "must not be empty",
            ));
        }
        GlobalId {
            column: g.column.clone(),
            worker_id: g.worker_id,
        }
    });
    if errors.len() > before || nodes.is_empty() || per_node == 0 {
        return None;
    }
    let mut locations = Vec::with_capacity(shards as usize);
    let mut seen = BTreeSet::new();
    for i in 0..shards {
        let node = if block {
            nodes[(i / per_node) as usize]
        } else {
            nodes[(i as usize) % nodes.len()]
        };
        let suffix = algorithm.suffix(i);
        match physical_name(&template, name, i, suffix.as_deref()) {
            Ok(table) => {
                if !seen.insert((node, table.clone())) {
                    errors.push(ConfigError::new(
                        format!("{key}.naming"),
                        format!("`{template}` names two shards `{table}` on the same node; add {{shard}} to it"),
                    ));
                    return None;
                }
                locations.push(ShardLocation { node, table });
            }
            Err(e) => {
                errors.push(ConfigError::new(format!("{key}.naming"), e));
                return None;
            }
        }
    }
    Some(ShardedTable {
        column,
        rule: rule_name,
        algorithm,
        shards: locations,
        global_id,
    })
}

fn check_bindings(
    schema_key: &str,
    schema: &SchemaConfig,
    tables: &BTreeMap<String, Table>,
    errors: &mut Vec<ConfigError>,
) {
    let mut grouped = BTreeSet::new();
    for (i, group) in schema.binding.iter().enumerate() {
        let key = format!("{schema_key}.binding[{i}]");
        if group.len() < 2 {
            errors.push(ConfigError::new(
                &key,
                "a binding group needs at least two tables",
            ));
        }
        let mut first: Option<(&str, &ShardedTable)> = None;
        for name in group {
            if !grouped.insert(name.clone()) {
                errors.push(ConfigError::new(
                    &key,
                    format!("table `{name}` is in more than one binding group"),
                ));
            }
            let Some(table) = tables.get(name) else {
                if !schema.tables.contains_key(name) {
                    errors.push(ConfigError::new(&key, format!("unknown table `{name}`")));
                }
                continue;
            };
            let TableKind::Sharded(s) = &table.kind else {
                errors.push(ConfigError::new(
                    &key,
                    format!("`{name}` is not sharded; only sharded tables bind"),
                ));
                continue;
            };
            match first {
                None => first = Some((name, s)),
                Some((fname, f)) => {
                    if f.rule != s.rule {
                        errors.push(ConfigError::new(
                            &key,
                            format!("`{fname}` uses rule `{}` but `{name}` uses `{}`; bound tables need the same rule", f.rule, s.rule),
                        ));
                    } else if f
                        .shards
                        .iter()
                        .map(|l| l.node)
                        .ne(s.shards.iter().map(|l| l.node))
                    {
                        errors.push(ConfigError::new(
                            &key,
                            format!("`{fname}` and `{name}` place their shards on different nodes"),
                        ));
                    }
                }
            }
        }
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
