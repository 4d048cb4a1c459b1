//! SQL text → what shardgate must do with it.
//!
//! [`decide`] is the entry point for a text statement: it reads it once and returns an
//! action; [`plan`] turns statements on configured tables into targets and a merge.
//!
//! Pure: no sockets, no async. Works on the client's bytes (which need not be UTF-8) so
//! routing never re-renders or re-encodes a statement it only has to forward.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod classify;
pub mod comments;
pub mod decide;
pub mod hint;
pub mod lexer;
pub mod load_format;
pub mod load_key;
pub mod plan;
pub mod privilege;
pub mod reading;
pub mod resolve;
pub mod routine;
pub mod show;

pub use classify::{
    classify, explain_sharding, show_databases_in, PinReason, Statement, StatementKind, TxnOp,
};
pub use hint::Hints;
pub use plan::{plan, Merge, Plan, PlanCache, RouteError, Target};
