//! The sharding model that DBAs edit and the router evaluates.
//!
//! Pure: no I/O and no async runtime, so the same code validates a config file at start,
//! an admin change before it is applied, and backs unit tests without a server.
#![forbid(unsafe_code)]

pub mod algorithm;
pub mod config;
pub mod endpoint;
pub mod error;
pub mod hash;
pub mod preview;
pub mod rule_config;
pub mod runtime;
pub mod table;
pub mod value;

pub use algorithm::{Algorithm, RuleError, ShardSet};
pub use config::{
    CausalReads, ClusterConfig, GlobalIdConfig, NodeConfig, ReadsConfig, ReplicaConfig,
    SchemaConfig, TableConfig, TableKindConfig, TransactionMode, TransactionsConfig,
};
pub use endpoint::Endpoint;
pub use error::{ConfigError, ConfigErrors};
pub use rule_config::RuleConfig;
pub use runtime::{DataNode, LogicalSchema, NodeId, NodeTls, Replica, Runtime};
pub use table::{ShardLocation, ShardedTable, Table, TableKind};
pub use value::Value;
