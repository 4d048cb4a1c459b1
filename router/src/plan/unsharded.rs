//! Statements on broadcast and single tables only.

use super::*;

/// Statements on broadcast and single tables only.
pub(super) fn plan_unsharded(
    text: &str,
    schema: &LogicalSchema,
    rt: &Runtime,
    named: &[&refs::TableRef],
    refs: &refs::Refs,
    write: bool,
) -> Result<Plan, RouteError> {
    // Nodes where every named table exists.
    let mut nodes: Option<Vec<NodeId>> = None;
    let mut broadcast_only = true;
    for t in named {
        let here: Vec<NodeId> = match &schema.tables[&t.name].kind {
            TableKind::Broadcast { nodes } => nodes.clone(),
            TableKind::Single { node } => {
                broadcast_only = false;
                vec![*node]
            }
            TableKind::Sharded(_) => unreachable!("no sharded tables here"),
        };
        nodes = Some(match nodes {
            None => here,
            Some(prev) => prev.into_iter().filter(|n| here.contains(n)).collect(),
        });
    }
    // Unconfigured tables live on the schema's node.
    let unconfigured = refs.tables.iter().any(|t| {
        t.schema.as_deref().is_none_or(|s| s == schema.name) && !schema.tables.contains_key(&t.name)
    });
    let mut nodes = nodes.unwrap_or_default();
    if unconfigured {
        broadcast_only = false;
        nodes.retain(|n| *n == schema.node);
    }
    if nodes.is_empty() {
        return Err(RouteError::Unsupported(
            "a statement over tables that live on different nodes (a cross-node join)".into(),
        ));
    }
    let chosen: Vec<NodeId> = if write && broadcast_only {
        nodes
    } else if nodes.contains(&schema.node) {
        vec![schema.node]
    } else {
        vec![nodes[0]]
    };
    let mut targets = Vec::new();
    for node in &chosen {
        targets.push(Target {
            node: *node,
            shard: None,
            sql: rewrite::for_shard(text, schema, rt, *node, None, refs, &[])?,
        });
    }
    let merge = match (targets.len(), write) {
        (1, false) if broadcast_only => Merge::Any,
        (1, _) => Merge::Single,
        _ => Merge::Copies,
    };
    Ok(Plan {
        targets,
        write,
        scatter: false,
        merge,
        fill_global_id: None,
        gather: None,
        load: None,
    })
}
