//! shardgate's network side: the MySQL wire protocol, client sessions, backend pools,
//! and the local MariaDB sandbox behind `shardgate playground` and the tests.
#![forbid(unsafe_code)]

pub mod backend;
pub mod check_broadcast;
pub mod config;
pub mod control;
pub mod ids;
pub mod merge;
pub mod playground;
pub mod sandbox;
pub mod server;
pub mod session;
pub mod tls;
pub mod topology;
pub mod wire;
