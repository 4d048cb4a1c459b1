//! A logical schema's configured tables, built from their config and checked: shard
//! rules and placement for sharded tables, nodes for broadcast and single ones, and
//! binding groups. Separate from the runtime's top level, which builds nodes and
//! schemas and answers placement questions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{check_name, unknown_node, NodeId};
use crate::algorithm::Algorithm;
use crate::config::{SchemaConfig, TableConfig, TableKindConfig};
use crate::error::ConfigError;
use crate::table::{physical_name, GlobalId, ShardLocation, ShardedTable, Table, TableKind};

pub(super) fn build_tables(
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
    let open_ended = algorithm.open_ended();
    let names_periods = |n: &str| n.contains("{suffix}") || n.contains("{shard");
    if open_ended && t.naming.as_deref().is_some_and(|n| !names_periods(n)) {
        errors.push(ConfigError::new(
            format!("{key}.naming"),
            format!(
                "rule `{rule_name}` is open-ended: each period needs a table of its own; \
                 put {{suffix}} (or {{shard}}) in naming"
            ),
        ));
    } else if open_ended && (t.tables_per_node.is_some() || t.placement.is_some()) {
        let field = if t.tables_per_node.is_some() {
            "tables_per_node"
        } else {
            "placement"
        };
        errors.push(ConfigError::new(
            format!("{key}.{field}"),
            format!(
                "rule `{rule_name}` is open-ended: one table per period, placed round robin \
                 over the nodes; remove {field}"
            ),
        ));
    } else if per_node == 0 {
        errors.push(ConfigError::new(
            format!("{key}.tables_per_node"),
            "must be at least 1",
        ));
    } else if !open_ended
        && !nodes.is_empty()
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

pub(super) fn check_bindings(
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
