//! The admin model: the staged layout as SQL tables, the layouts in effect over time,
//! the audit, and the admin port's statements. No sockets: the proxy runs these
//! against its topology.
#![forbid(unsafe_code)]

pub mod diff;
pub mod statement;
pub mod store;
pub mod tables;

/// Why an admin operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The admin database refused or failed a statement.
    #[error("{0}")]
    Sql(#[from] rusqlite::Error),
    /// The statement needs something the admin port does not allow.
    #[error("{0}")]
    Denied(String),
    #[error("the admin database: {0}")]
    Store(String),
}
