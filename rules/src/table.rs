//! Validated logical tables: where each shard of a sharded table lives.

use std::sync::Arc;

use crate::algorithm::Algorithm;
use crate::runtime::NodeId;

#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub kind: TableKind,
}

#[derive(Debug, Clone)]
pub enum TableKind {
    Sharded(ShardedTable),
    Broadcast { nodes: Vec<NodeId> },
    Single { node: NodeId },
}

/// One shard: a physical table on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardLocation {
    pub node: NodeId,
    pub table: String,
}

#[derive(Debug, Clone)]
pub struct ShardedTable {
    pub column: String,
    pub rule: String,
    pub algorithm: Arc<Algorithm>,
    /// Indexed by shard number.
    pub shards: Vec<ShardLocation>,
    pub global_id: Option<GlobalId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalId {
    pub column: String,
    pub worker_id: u16,
}

/// Snowflake ids: 41 bits of milliseconds since 2020-01-01T00:00:00Z, 10 bits of
/// worker, 12 bits of per-millisecond sequence. Pure; the clock and sequence are the
/// caller's.
pub fn snowflake(unix_millis: u64, worker_id: u16, sequence: u16) -> i64 {
    const EPOCH_2020: u64 = 1_577_836_800_000;
    let ms = unix_millis.saturating_sub(EPOCH_2020) & ((1 << 41) - 1);
    ((ms << 22) | ((worker_id as u64 & 0x3ff) << 12) | (sequence as u64 & 0xfff)) as i64
}

/// Expands a naming template for shard `shard`.
pub fn physical_name(
    template: &str,
    table: &str,
    shard: u32,
    suffix: Option<&str>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("`{template}`: unclosed `{{`"))?
            + open;
        let field = &rest[open + 1..close];
        match field {
            "table" => out.push_str(table),
            "shard" => out.push_str(&shard.to_string()),
            "suffix" => out.push_str(suffix.ok_or_else(|| format!("`{template}`: {{suffix}} needs a rule with a suffix pattern"))?),
            f if f.starts_with("shard:") => {
                let width: usize = f[6..].parse().map_err(|_| format!("`{template}`: bad width in {{{f}}}"))?;
                out.push_str(&format!("{shard:0width$}"));
            }
            other => return Err(format!("`{template}`: unknown placeholder {{{other}}}; use {{table}}, {{shard}}, {{shard:04}} or {{suffix}}")),
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    if out.is_empty() || out.len() > 64 || out.contains('`') {
        return Err(format!(
            "`{template}` gives `{out}`, not a usable table name"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naming_templates() {
        assert_eq!(
            physical_name("{table}_{shard:04}", "orders", 7, None).unwrap(),
            "orders_0007"
        );
        assert_eq!(physical_name("t{shard}", "x", 12, None).unwrap(), "t12");
        assert_eq!(
            physical_name("{table}_{suffix}", "log", 0, Some("202401")).unwrap(),
            "log_202401"
        );
        assert!(physical_name("{table}_{suffix}", "log", 0, None).is_err());
        assert!(physical_name("{tabel}", "log", 0, None).is_err());
    }

    #[test]
    fn snowflake_layout() {
        let id = snowflake(1_577_836_800_000 + 5, 3, 9);
        assert_eq!(id, (5 << 22) | (3 << 12) | 9);
        assert!(snowflake(1_900_000_000_000, 1023, 4095) > 0);
    }
}
