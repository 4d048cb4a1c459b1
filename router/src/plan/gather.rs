//! The general strategy for reads the direct strategies cannot answer exactly
//! (subqueries, joins across shard keys, set operations, window functions, the
//! aggregates the merge step does not combine): every table the statement names is
//! gathered into a temporary table of the same name on one node, and that node's
//! server runs the client's own statement over them. The answer is then MariaDB's to
//! the last digit, with its own types, collations and NULL rules; shardgate never
//! re-implements them.
//!
//! The plan says what to gather and from where; the executor owns the connections,
//! the temporary tables and the budget.

use rules::runtime::LogicalSchema;
use rules::{NodeId, Runtime, ShardSet, TableKind};
use sqlparser::ast::{SetExpr, Statement};
use sqlparser::parser::Parser;

use super::pushdown;
use super::refs;
use super::spans::Offsets;
use super::{rewrite, RouteError};
use crate::reading::Reading;

/// A statement evaluated on one node over gathered rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gather {
    /// The node whose primary evaluates the statement (the schema's own node).
    pub node: NodeId,
    /// The schema's database there: the temporary tables live in it, shadowing any
    /// table of the same name for the evaluating connection only.
    pub database: String,
    pub tables: Vec<Gathered>,
    /// The client's statement with schema qualifiers naming `database`.
    pub sql: String,
    /// Why no direct strategy answered (shown by EXPLAIN SHARDING).
    pub reason: String,
}

/// One logical table the statement reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gathered {
    /// Its logical name: the temporary table's name too.
    pub name: String,
    /// The name its columns are qualified with in `filter`.
    pub alias: String,
    /// Conditions of the statement that concern this table alone, in the client's
    /// words: rows failing them cannot reach the answer, so they are not copied.
    pub filter: Option<String>,
    /// Where its rows are read: every shard (the filter may rule some out), or one
    /// copy.
    pub sources: Vec<Source>,
    /// The table exists on the evaluating node under this name with all its rows (a
    /// broadcast copy, a single or unconfigured table there): outside a transaction
    /// the statement may read it where it is, without a copy.
    pub in_place: bool,
}

/// A physical table holding rows of a gathered table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub node: NodeId,
    pub shard: Option<u32>,
    pub database: String,
    pub table: String,
}

/// Session functions whose value belongs to the connection that runs them: on the
/// evaluating connection they would answer for it, not for the client's session.
const SESSION_FUNCTIONS: [&str; 15] = [
    "last_insert_id",
    "found_rows",
    "row_count",
    "connection_id",
    "database",
    "schema",
    "user",
    "current_user",
    "session_user",
    "system_user",
    "get_lock",
    "release_lock",
    "release_all_locks",
    "is_used_lock",
    "is_free_lock",
];

/// Session variables that belong to the connection that reads them.
const SESSION_VARIABLES: [&str; 3] = ["identity", "last_insert_id", "insert_id"];

/// Plans `text` (a read the direct strategies refused for `reason`) as a gather;
/// `Ok(None)` when the statement is not a plain read of this schema's tables, so the
/// direct strategies' refusal stands.
pub(super) fn plan(
    text: &str,
    schema: &LogicalSchema,
    rt: &Runtime,
    foreign: bool,
    reading: Reading,
    reason: &str,
) -> Result<Option<Gather>, RouteError> {
    let masked = super::mask_lock_in_share_mode(text, reading);
    let Ok(mut statements) =
        Parser::parse_sql(&reading.dialect(), masked.as_deref().unwrap_or(text))
    else {
        return Ok(None);
    };
    let (Some(statement), None) = (statements.pop(), statements.pop()) else {
        return Ok(None);
    };
    let Statement::Query(query) = &statement else {
        return Ok(None);
    };
    if locks_anywhere(&statement) {
        return Err(RouteError::Unsupported(format!(
            "a locking read (FOR UPDATE / FOR SHARE) that needs the rows of several shards \
             evaluated together ({reason}); lock the rows with a read on one shard first"
        )));
    }
    if into_in(query.body.as_ref()) {
        return Err(RouteError::Unsupported(format!(
            "SELECT ... INTO that needs the rows of several shards evaluated together ({reason}); \
             read the values and set them in a second statement"
        )));
    }
    if let Some(what) = session_bound(text, reading, &[]) {
        return Err(RouteError::Unsupported(format!(
            "{what} in a statement that needs the rows of several shards evaluated together \
             ({reason}): it is evaluated on a connection of its own, where {what} is not this \
             session's"
        )));
    }
    let offsets = Offsets::new(text);
    let refs = refs::collect(&statement, &offsets);
    if refs.unlocated {
        return Ok(None);
    }
    let ctes = refs::cte_names(&statement);
    let mut names: Vec<&str> = Vec::new();
    for t in &refs.tables {
        let cte = t.schema.is_none() && ctes.iter().any(|c| c.eq_ignore_ascii_case(&t.name));
        if cte {
            continue;
        }
        match t.schema.as_deref() {
            Some(s) if s != schema.name => return Ok(None),
            None if foreign => return Ok(None),
            _ => {}
        }
        // One gathered table per table, however its name is spelled (MariaDB may
        // fold case).
        if !names.iter().any(|n| n.eq_ignore_ascii_case(&t.name)) {
            names.push(&t.name);
        }
    }
    if names.is_empty() {
        return Ok(None);
    }
    let node = schema.node;
    let database = schema.database_on(&rt.nodes, node).to_string();
    let filters = pushdown::filters(&statement, text, &offsets, reading);
    let mut tables = Vec::with_capacity(names.len());
    for name in names {
        let mut mentions = refs
            .tables
            .iter()
            .filter(|t| t.name.eq_ignore_ascii_case(name));
        let only = match (mentions.next(), mentions.next()) {
            (Some(t), None) => Some(t),
            _ => None,
        };
        let alias = refs
            .aliases
            .iter()
            .find(|(t, _)| t == name)
            .map_or(name, |(_, a)| a.as_str());
        // A table named twice may be read under two conditions: only the union of
        // its rows is safe to copy, so it is copied whole. Conditions are matched to
        // the mention by its place in the text, never by a name another scope may
        // reuse.
        let pushed = only.and_then(|t| filters.get(&t.name_range.0));
        let filter = pushed.map(|p| p.text.clone());
        let on = |n: NodeId| Source {
            node: n,
            shard: None,
            database: schema.database_on(&rt.nodes, n).to_string(),
            table: name.to_string(),
        };
        let (sources, in_place) = match schema.tables.get(name).map(|t| &t.kind) {
            Some(TableKind::Sharded(s)) => {
                let all = ShardSet::all(s.algorithm.shards());
                let wanted = pushed.map_or(all.clone(), |p| {
                    p.shards(&s.column, &[name, alias], &s.algorithm)
                        .unwrap_or(all)
                });
                // Conditions no row meets: one shard is read (for nothing), so the
                // copy exists, empty.
                let wanted = if wanted.is_empty() {
                    ShardSet::one(0)
                } else {
                    wanted
                };
                let sources = wanted
                    .iter()
                    .filter_map(|i| {
                        let loc = s.shards.get(i as usize)?;
                        Some(Source {
                            node: loc.node,
                            shard: Some(i),
                            database: schema.database_on(&rt.nodes, loc.node).to_string(),
                            table: loc.table.clone(),
                        })
                    })
                    .collect();
                (sources, false)
            }
            Some(TableKind::Broadcast { nodes }) => {
                let here = nodes.contains(&node);
                let copy = if here { node } else { nodes[0] };
                (vec![on(copy)], here)
            }
            Some(TableKind::Single { node: n }) => (vec![on(*n)], *n == node),
            None => (vec![on(schema.node)], true),
        };
        tables.push(Gathered {
            name: name.to_string(),
            alias: alias.to_string(),
            filter,
            sources,
            in_place,
        });
    }
    let sql = rewrite::for_shard(text, schema, rt, node, None, &refs, &[])?;
    Ok(Some(Gather {
        node,
        database,
        tables,
        sql,
        reason: reason.to_string(),
    }))
}

/// A locking clause in any query of the statement (derived tables and subqueries
/// too): on copies it would lock nothing.
fn locks_anywhere(statement: &Statement) -> bool {
    use sqlparser::ast::{Visit, Visitor};
    use std::ops::ControlFlow;
    struct Locks;
    impl Visitor for Locks {
        type Break = ();
        fn pre_visit_query(&mut self, q: &sqlparser::ast::Query) -> ControlFlow<()> {
            if q.locks.is_empty() {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        }
    }
    statement.visit(&mut Locks).is_break()
}

fn into_in(body: &SetExpr) -> bool {
    match body {
        SetExpr::Select(s) => s.into.is_some(),
        SetExpr::Query(q) => into_in(q.body.as_ref()),
        SetExpr::SetOperation { left, right, .. } => into_in(left) || into_in(right),
        _ => false,
    }
}

/// A user variable or a session function the statement reads, by name.
/// `bound`: user variables the statement itself sets (LOAD DATA's column list), which
/// are not the session's.
pub(super) fn session_bound(text: &str, reading: Reading, bound: &[String]) -> Option<String> {
    use crate::lexer::Token;
    let tokens: Vec<Token<'_>> = reading
        .lexer(text.as_bytes())
        .filter(|t| !matches!(t, Token::Comment(_)))
        .collect();
    for (i, t) in tokens.iter().enumerate() {
        match t {
            // `@@name` is a system variable: the evaluating connection has the
            // session's settings.
            Token::UserVar(v) => {
                let name = String::from_utf8_lossy(v);
                let name = name.trim_start_matches('@');
                if !bound.iter().any(|b| b.eq_ignore_ascii_case(name)) {
                    return Some(format!("user variable @{name}"));
                }
            }
            Token::SysVar(v) => {
                let name = v.rsplit(|b| *b == b'.').next().unwrap_or(v);
                if let Some(n) = SESSION_VARIABLES
                    .iter()
                    .find(|n| name.eq_ignore_ascii_case(n.as_bytes()))
                {
                    return Some(format!("@@{n}"));
                }
            }
            Token::Word(w) => {
                let called = matches!(tokens.get(i + 1), Some(Token::Punct(q)) if *q == b"(");
                if let Some(f) = SESSION_FUNCTIONS
                    .iter()
                    .find(|f| called && w.eq_ignore_ascii_case(f.as_bytes()))
                {
                    return Some(format!("{}()", f.to_uppercase()));
                }
            }
            _ => {}
        }
    }
    None
}
