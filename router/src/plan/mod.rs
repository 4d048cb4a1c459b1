//! SQL text + the runtime model → a routing plan: which data nodes run which physical
//! SQL, and how their answers combine.
//!
//! Only statements that name configured tables are parsed; others run unchanged on the
//! schema's node. Physical SQL is the client's text with table names spliced in, so
//! comments, hints and formatting reach the backend byte for byte.

mod cache;
pub mod catalog_view;
mod clauses;
mod direct;
mod fill_ids;
mod gather;
mod insert_select;
mod joins;
mod keys;
mod load_data;
mod merge;
mod names;
mod prepared;
mod pushdown;
mod refs;
mod rewrite;
mod spans;
mod table_access;
mod template;
mod union;
mod unsharded;
mod values;
mod write_targets;

use rules::runtime::LogicalSchema;
use rules::{NodeId, RuleError, Runtime, ShardSet, TableKind};
use sqlparser::ast::{Expr, SetExpr, Statement};
use sqlparser::parser::Parser;

use crate::lexer::Token;
use crate::reading::Reading;

pub use cache::{Cached, PlanCache};
use direct::mask_lock_in_share_mode;
use direct::plan_direct;
pub use fill_ids::FillIds;
pub use gather::{Gather, Gathered, Source};
use insert_select::insert_select_shards;
pub use keys::{KeyExpr, Operand as KeyOperand};
pub use load_data::LoadSplit;
pub use merge::{Agg, CmpOp, Col, Cond, Grouping, Key, MergeSpec, Operand};
pub use names::{table_refs, Names};
pub use prepared::{Prepared, Routing};
pub use table_access::{on_tables, table_access, TableAccess, TableUse};
use union::{parenthesized_union_parts, plan_union_all, union_parts};
use unsharded::plan_unsharded;

/// One statement for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub node: NodeId,
    /// Shard number, for statements on a sharded table.
    pub shard: Option<u32>,
    pub sql: String,
}

/// How the answers of several targets become one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merge {
    /// One target: its answer, forwarded as is.
    Single,
    /// Writes on several targets: one OK with the summed affected rows.
    SumAffected,
    /// A write on every copy of a broadcast table: one table to the client, so one
    /// copy's OK answers.
    Copies,
    /// Reads on several targets: one result set, the rows of each in turn.
    Concat,
    /// Broadcast reads: any one target answers (the plan lists one).
    Any,
    /// Reads on several targets that need ordering, limiting or combining.
    Combine(Box<MergeSpec>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub targets: Vec<Target>,
    /// Must run on primaries.
    pub write: bool,
    /// No shard key narrowed a sharded table: every shard runs it.
    pub scatter: bool,
    pub merge: Merge,
    /// INSERT without the global-id column: the executor generates the ids, adds
    /// them with [`FillIds::apply`] and plans the result (this plan has no targets).
    pub fill_global_id: Option<FillIds>,
    /// A read no direct strategy answers exactly: its tables are gathered on one
    /// node, which runs the statement (this plan has no targets).
    pub gather: Option<Box<Gather>>,
    /// LOAD DATA LOCAL into a sharded or broadcast table: the executor splits the
    /// file's lines over the targets (each runs its own statement on its table).
    pub load: Option<Box<LoadSplit>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error(
        "statement on sharded schema `{0}` is not valid UTF-8; shardgate must parse it to route it"
    )]
    NotUtf8(String),
    #[error("shardgate could not parse the statement to route it: {0}")]
    Parse(String),
    /// A physical shard table named directly: clients see only the logical table,
    /// and a row written there would sit where its shard key does not send reads.
    #[error(
        "Table '{0}.{1}' doesn't exist (it is a shard of a sharded table; use the logical table)"
    )]
    ShardTable(String, String),
    #[error("not supported by shardgate yet: {0}")]
    Unsupported(String),
    /// An INSERT (or LOAD DATA) into sharded `table` without a column list: the
    /// executor reads the table's columns (as the server would take them) and puts
    /// the list in at byte `at`, then plans again.
    #[error("INSERT or LOAD DATA into sharded table `{table}` without a column list")]
    NeedsColumns { table: String, at: usize },
    #[error("{0}")]
    Rule(#[from] RuleError),
    #[error("{0}")]
    Invalid(String),
}

/// True when `sql` may name a configured table of `schema` (cheap lexical check).
/// Physical shard tables count: the plan refuses them.
pub fn mentions_configured_table(sql: &[u8], schema: &LogicalSchema, reading: Reading) -> bool {
    if schema.tables.is_empty() {
        return false;
    }
    reading.lexer(sql).any(|t| match t {
        Token::Word(w) | Token::Quoted(w) => std::str::from_utf8(w)
            .map(|w| {
                schema.tables.keys().any(|k| k.eq_ignore_ascii_case(w))
                    || (!schema.shard_tables.is_empty()
                        && schema.shard_tables.contains(&w.to_lowercase()))
            })
            .unwrap_or(false),
        _ => false,
    })
}

/// Plans `sql` in `schema`. `Ok(None)`: no configured table is named, so the statement
/// runs unchanged on the schema's node.
pub fn plan(
    sql: &[u8],
    schema: &LogicalSchema,
    rt: &Runtime,
    reading: Reading,
) -> Result<Option<Plan>, RouteError> {
    Ok(plan_with(sql, schema, rt, false, false, reading)?.map(|p| p.plan))
}

/// Plans a statement that names `schema`'s tables with a qualifier (`shop.orders`)
/// from a session whose own database is another one (or none): every table must then
/// be qualified, since an unqualified name belongs to the session's database.
pub fn plan_foreign(
    sql: &[u8],
    schema: &LogicalSchema,
    rt: &Runtime,
    reading: Reading,
) -> Result<Option<Plan>, RouteError> {
    Ok(plan_with(sql, schema, rt, false, true, reading)?.map(|p| p.plan))
}

/// Plans a statement to prepare: `?` parameters may stand for shard-key values.
pub fn prepare(
    sql: &[u8],
    schema: &LogicalSchema,
    rt: &Runtime,
    reading: Reading,
) -> Result<Option<Prepared>, RouteError> {
    plan_with(sql, schema, rt, true, false, reading)
}

fn plan_with(
    sql: &[u8],
    schema: &LogicalSchema,
    rt: &Runtime,
    prepared: bool,
    foreign: bool,
    reading: Reading,
) -> Result<Option<Prepared>, RouteError> {
    match plan_direct(sql, schema, rt, prepared, foreign, reading) {
        // A read no direct strategy answers exactly: gathered, when it is one. (A
        // prepared one is run as text with its parameters written in.)
        Err(RouteError::Unsupported(reason)) => {
            let text =
                std::str::from_utf8(sql).map_err(|_| RouteError::NotUtf8(schema.name.clone()))?;
            match gather::plan(text, schema, rt, foreign, reading, &reason)? {
                Some(g) => Ok(Some(Prepared {
                    plan: Plan {
                        targets: Vec::new(),
                        write: false,
                        scatter: true,
                        merge: Merge::Single,
                        fill_global_id: None,
                        gather: Some(Box::new(g)),
                        load: None,
                    },
                    routing: Routing::Fixed,
                    algorithm: None,
                    params: if prepared {
                        keys::Params::new(text, reading).count()
                    } else {
                        0
                    },
                })),
                None => Err(RouteError::Unsupported(reason)),
            }
        }
        other => other,
    }
}

/// Plans a read as a gather, for a direct plan that found it cannot answer once it
/// saw the shards' columns (an ORDER BY an ENUM, say); `reason` says why.
pub fn gather_plan(
    text: &str,
    schema: &LogicalSchema,
    rt: &Runtime,
    reading: Reading,
    reason: &str,
) -> Result<Option<Gather>, RouteError> {
    gather::plan(text, schema, rt, false, reading, reason)
}
