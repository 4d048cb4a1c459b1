//! shardgate's network side: the MySQL wire protocol, client sessions, backend pools,
//! the topology they run against; with the `playground` feature, the local MariaDB
//! sandbox behind `shardgate playground`, the tests and the benchmarks.
#![forbid(unsafe_code)]

pub mod backend;
pub mod check_broadcast;
pub mod config;
pub mod control;
pub mod ids;
pub mod merge;
#[cfg(feature = "playground")]
pub mod playground;
#[cfg(feature = "playground")]
pub mod sandbox;
pub mod server;
pub mod session;
pub mod shared;
pub mod tls;
pub mod topology;
pub mod wire;
