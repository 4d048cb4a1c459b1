//! Physical SQL: the client's text with logical names replaced by physical ones.

use rules::runtime::LogicalSchema;
use rules::{NodeId, Runtime, TableKind};

use super::refs::Refs;
use super::RouteError;

/// Replace `text[start..end]` with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

fn quote(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

/// Part of the text a splice puts in: literal SQL, or a range of the client's text
/// (which gets the same name replacements as the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    Src((usize, usize)),
}

/// Replace `text[start..end]` with pieces. Name replacements inside the range are
/// dropped; a piece that copies client text carries its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    pub start: usize,
    pub end: usize,
    pub pieces: Vec<Piece>,
}

/// The text for `shard` on `node`: sharded table names → that shard's physical table,
/// schema qualifiers → the node's physical database, plus the `splices`.
pub fn for_shard(
    text: &str,
    schema: &LogicalSchema,
    rt: &Runtime,
    node: NodeId,
    shard: Option<u32>,
    refs: &Refs,
    splices: &[Splice],
) -> Result<String, RouteError> {
    let db = quote(schema.database_on(&rt.nodes, node));
    let mut edits: Vec<Edit> = Vec::new();
    let ours = |s: &Option<String>| s.as_deref().is_none_or(|s| s == schema.name);
    let physical_table = |name: &str| -> Option<String> {
        match (&schema.tables.get(name)?.kind, shard) {
            (TableKind::Sharded(t), Some(s)) => t.shards.get(s as usize).map(|l| quote(&l.table)),
            _ => None,
        }
    };
    for t in &refs.tables {
        if !ours(&t.schema) {
            continue;
        }
        if let Some(p) = physical_table(&t.name) {
            edits.push(Edit {
                start: t.name_range.0,
                end: t.name_range.1,
                text: p,
            });
        }
        if let Some((a, b)) = t.schema_range {
            edits.push(Edit {
                start: a,
                end: b,
                text: db.clone(),
            });
        }
    }
    let aliased = |name: &str| refs.aliases.iter().any(|(t, _)| t == name);
    for q in &refs.qualified {
        if !ours(&q.schema) {
            continue;
        }
        if !aliased(&q.table) {
            if let Some(p) = physical_table(&q.table) {
                edits.push(Edit {
                    start: q.table_range.0,
                    end: q.table_range.1,
                    text: p,
                });
            }
        }
        if let Some((a, b)) = q.schema_range {
            edits.push(Edit {
                start: a,
                end: b,
                text: db.clone(),
            });
        }
    }
    if splices.is_empty() {
        return apply(text, edits);
    }
    let names = edits.clone();
    edits.retain(|e| {
        !splices
            .iter()
            .any(|s| s.start < s.end && e.start >= s.start && e.end <= s.end)
    });
    for s in splices {
        let mut out = String::new();
        for p in &s.pieces {
            match p {
                Piece::Lit(l) => out.push_str(l),
                Piece::Src((a, b)) => {
                    let inner: Vec<Edit> = names
                        .iter()
                        .filter(|e| e.start >= *a && e.end <= *b)
                        .map(|e| Edit {
                            start: e.start - a,
                            end: e.end - a,
                            text: e.text.clone(),
                        })
                        .collect();
                    let src = text
                        .get(*a..*b)
                        .ok_or_else(|| RouteError::Unsupported("a misplaced splice".into()))?;
                    out.push_str(&apply(src, inner)?);
                }
            }
        }
        edits.push(Edit {
            start: s.start,
            end: s.end,
            text: out,
        });
    }
    apply(text, edits)
}

/// Applies non-overlapping edits.
pub fn apply(text: &str, mut edits: Vec<Edit>) -> Result<String, RouteError> {
    edits.sort_by_key(|e| (e.start, e.end));
    edits.dedup();
    let mut out = String::with_capacity(text.len() + 32);
    let mut pos = 0;
    for e in edits {
        if e.start < pos || e.end > text.len() || e.start > e.end {
            return Err(RouteError::Unsupported("overlapping name rewrites".into()));
        }
        out.push_str(&text[pos..e.start]);
        out.push_str(&e.text);
        pos = e.end;
    }
    out.push_str(&text[pos..]);
    Ok(out)
}
