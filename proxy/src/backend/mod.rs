//! Connections from shardgate to MariaDB/MySQL servers and their pools.

pub mod conn;
pub mod connect;
pub mod gtid;
pub mod health;
pub mod link;
pub mod node;
pub mod pool;
pub mod replication;
pub mod results;
pub mod timed;
mod tracking;

pub use conn::{BackendConn, ForwardError, ScanColumn};
pub use node::{NodePools, Role};
pub use pool::{Pool, PoolSettings, PooledConn};

use mysql_common::constants::CapabilityFlags;

/// The client-chosen properties a backend connection must share with the client it
/// serves, because they change bytes on the wire: capability bits and collation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flavor {
    pub capabilities: CapabilityFlags,
    pub collation: u8,
}

impl Flavor {
    pub fn deprecate_eof(&self) -> bool {
        self.capabilities
            .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    }
}

impl Default for Flavor {
    /// What most modern drivers ask for: utf8mb4, no EOF packets, multi-statements.
    fn default() -> Self {
        Flavor {
            capabilities: CapabilityFlags::CLIENT_DEPRECATE_EOF
                | CapabilityFlags::CLIENT_MULTI_STATEMENTS,
            collation: 45,
        }
    }
}

/// A backend server and how to log in to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendServer {
    /// `dn1/primary`, `dn1/replica[0]`: how logs and errors name it.
    pub label: String,
    pub address: String,
    pub user: String,
    pub password: String,
    /// Connections report the GTID of each write in its OK packet (a primary with
    /// replicas that reads may need to wait for).
    pub track_gtid: bool,
    /// A read or write on its connections that makes no progress this long fails
    /// (`pool.read_timeout_ms`); `None`: no limit.
    pub read_timeout: Option<std::time::Duration>,
    /// TLS to it, with the node's CA and name; `None`: plain TCP.
    pub tls: Option<std::sync::Arc<link::BackendTls>>,
}
