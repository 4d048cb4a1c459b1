//! The sharding model that DBAs edit and the router evaluates.
//!
//! Pure: no I/O and no async runtime, so the same code validates a config file at start,
//! an admin change before it is applied, and backs unit tests without a server.
#![forbid(unsafe_code)]

pub mod config;
pub mod endpoint;
pub mod error;
pub mod runtime;

pub use config::{ClusterConfig, NodeConfig, ReplicaConfig, SchemaConfig};
pub use endpoint::Endpoint;
pub use error::{ConfigError, ConfigErrors};
pub use runtime::{DataNode, LogicalSchema, NodeId, Replica, Runtime};
