//! The TOML form of shardgate's own sections (`[server]`, `[pool]`, `[admin]`,
//! `[tls]`) and of the file as a whole, with their defaults; validated into
//! [`super::Settings`] by the parent module.

use std::collections::BTreeMap;

use rules::{NodeConfig, ReadsConfig, RuleConfig, SchemaConfig, TransactionsConfig};
use serde::Deserialize;

use super::{AdminUser, UserConfig, DEFAULT_LISTEN};
use crate::backend::PoolSettings;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    #[serde(default)]
    pub(super) server: ServerSection,
    #[serde(default)]
    pub(super) pool: PoolSection,
    #[serde(default)]
    pub(super) users: Vec<UserConfig>,
    #[serde(default)]
    pub(super) nodes: BTreeMap<String, NodeConfig>,
    #[serde(default)]
    pub(super) schemas: BTreeMap<String, SchemaConfig>,
    #[serde(default)]
    pub(super) passthrough_node: Option<String>,
    #[serde(default)]
    pub(super) rules: BTreeMap<String, RuleConfig>,
    #[serde(default)]
    pub(super) tls: Option<TlsSection>,
    #[serde(default)]
    pub(super) reads: ReadsConfig,
    #[serde(default)]
    pub(super) transactions: TransactionsConfig,
    #[serde(default)]
    pub(super) admin: AdminSection,
}

/// `[admin]`: what operators reach.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct AdminSection {
    /// The admin SQL port; "" turns it off. Without `users` nobody could log in, so
    /// it is off then too. Unset: the default, which only warns when taken.
    pub(super) listen: Option<String>,
    /// `/metrics`, `/health`, `/ready`; "" turns it off. Unset: as `listen`.
    pub(super) http_listen: Option<String>,
    /// Who may log in to the admin port: accounts of their own, never the data
    /// port's users.
    pub(super) users: Vec<AdminUser>,
    /// Statements at least this long go to the slow log (`SHOW SLOW QUERIES`).
    pub(super) slow_query_ms: u64,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            listen: None,
            http_listen: None,
            users: Vec::new(),
            slow_query_ms: 1000,
        }
    }
}

/// TLS for clients: a PEM certificate chain and its private key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsSection {
    pub(super) cert: std::path::PathBuf,
    pub(super) key: std::path::PathBuf,
    /// The oldest TLS version clients may use: "1.2" (the default) or "1.3".
    #[serde(default)]
    pub(super) min_version: Option<String>,
    /// Cipher suites offered, by IANA name; unset: rustls' safe defaults.
    #[serde(default)]
    pub(super) ciphers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ServerSection {
    pub(super) listen: String,
    pub(super) max_connections: usize,
    /// New connections the kernel queues before shardgate accepts them (a burst of
    /// clients starting at once); capped by net.core.somaxconn.
    pub(super) listen_backlog: u32,
    /// Sessions one user may have at once unless the user says otherwise; 0 = no limit.
    pub(super) max_user_connections: usize,
    pub(super) max_allowed_packet: usize,
    pub(super) server_version: Option<String>,
    pub(super) worker_threads: usize,
    /// Close client connections idle this long (MySQL's wait_timeout); 0 = never.
    pub(super) client_idle_timeout_ms: u64,
    /// Stop (KILL QUERY on the backend) a statement running longer; 0 = never.
    pub(super) statement_timeout_ms: u64,
    /// A client that has not logged in within this long is disconnected (MariaDB's
    /// connect_timeout).
    pub(super) connect_timeout_ms: u64,
    /// Connections still logging in, at most; they do not count against
    /// `max_connections`, which is for logged-in clients.
    pub(super) max_unauthenticated: usize,
    /// Failed logins in a row after which a client address is refused until FLUSH
    /// HOSTS on the admin port; 0 = never.
    pub(super) max_connect_errors: u32,
    /// Failed logins in a row from an address before its attempts are delayed; 0 =
    /// never.
    pub(super) login_delay_after: u32,
    /// The first delay; it doubles with each further failure, up to the max.
    pub(super) login_delay_ms: u64,
    pub(super) login_delay_max_ms: u64,
    /// Names this shardgate in the XA transactions it starts, so that instances
    /// sharing backends never take each other's branches for their own.
    pub(super) instance_id: Option<String>,
    /// Where the XA decision log lives; relative to the config file's directory.
    pub(super) data_dir: std::path::PathBuf,
    /// Most rows one statement may gather into temporary tables (reads no direct
    /// strategy answers: cross-shard joins, subqueries, …).
    pub(super) gather_max_rows: u64,
    /// Most bytes of row data one statement may gather.
    pub(super) gather_max_bytes: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: DEFAULT_LISTEN.into(),
            max_connections: 1000,
            listen_backlog: 4096,
            max_user_connections: 0,
            max_allowed_packet: 64 * 1024 * 1024,
            server_version: None,
            worker_threads: 1,
            client_idle_timeout_ms: 28_800_000,
            connect_timeout_ms: 10_000,
            max_unauthenticated: 1000,
            max_connect_errors: 100,
            login_delay_after: 3,
            login_delay_ms: 1000,
            login_delay_max_ms: 8000,
            statement_timeout_ms: 0,
            instance_id: None,
            data_dir: "shardgate-data".into(),
            gather_max_rows: 5_000_000,
            gather_max_bytes: 1 << 30,
        }
    }
}

/// Share of a backend's `max_connections` one shardgate uses when `pool.max_size` is
/// unset: room stays for replication, administrators and other clients.
const DEFAULT_BACKEND_SHARE: f64 = 0.8;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct PoolSection {
    pub(super) min_idle: usize,
    /// Unset: sized from each backend's own `max_connections` × `backend_share`.
    pub(super) max_size: Option<usize>,
    pub(super) backend_share: f64,
    pub(super) idle_timeout_ms: u64,
    pub(super) connect_timeout_ms: u64,
    pub(super) acquire_timeout_ms: u64,
    /// A backend that sends (or takes) nothing for this long while a statement waits
    /// on it has its connection closed and the statement fails; 0 = never. Must be
    /// longer than the longest statement's silence (a slow query sends nothing until
    /// its first row).
    pub(super) read_timeout_ms: u64,
    pub(super) health_check_interval_ms: u64,
}

impl Default for PoolSection {
    fn default() -> Self {
        let p = PoolSettings::default();
        PoolSection {
            min_idle: p.min_idle,
            max_size: None,
            backend_share: DEFAULT_BACKEND_SHARE,
            idle_timeout_ms: p.idle_timeout.as_millis() as u64,
            connect_timeout_ms: p.connect_timeout.as_millis() as u64,
            acquire_timeout_ms: p.acquire_timeout.as_millis() as u64,
            read_timeout_ms: 0,
            health_check_interval_ms: 1000,
        }
    }
}
