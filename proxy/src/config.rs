//! shardgate's own settings: the config file (`--config`) or the zero-config
//! pass-through flags, turned into one validated [`Settings`].

use std::path::Path;
use std::time::Duration;

use rules::{CausalReads, ClusterConfig, ConfigErrors, Runtime};

use crate::backend::PoolSettings;

mod accounts;
pub mod document;
mod file;
mod user_rules;

use accounts::{credential, user_errors};
pub use accounts::{AdminUser, UserConfig};
pub use user_rules::UserRules;

use file::FileConfig;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8066";
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:9067";
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9066";

/// A validated configuration: what is fixed for the life of the process, and the
/// layout a running shardgate can replace (see [`crate::topology`]).
#[derive(Debug)]
pub struct Config {
    pub settings: Settings,
    pub layout: Layout,
}

/// The part of the configuration that can change while shardgate runs: nodes,
/// schemas, rules and users, validated together (a user may only name schemas that
/// exist). It becomes a [`crate::topology::Topology`].
#[derive(Debug, Clone)]
pub struct Layout {
    /// As parsed, so that it can be shown, compared and written back.
    pub cluster: ClusterConfig,
    pub runtime: Runtime,
    pub users: Vec<UserConfig>,
}

impl Layout {
    /// Some user or schema reads with causal reads on: primaries must report GTIDs.
    pub fn causal_reads_anywhere(&self) -> bool {
        let on = |m: Option<CausalReads>| m.is_some_and(|m| m != CausalReads::None);
        self.runtime.reads.causal_reads != CausalReads::None
            || self.users.iter().any(|u| on(u.causal_reads))
            || self.runtime.schemas.values().any(|s| on(s.causal_reads))
    }

    /// Checks `cluster` and `users` together. `tls`: clients can be offered TLS, which
    /// a user with `require_tls` needs.
    pub fn validate(
        mut cluster: ClusterConfig,
        mut users: Vec<UserConfig>,
        tls: bool,
    ) -> Result<Layout, Vec<rules::ConfigError>> {
        let mut errors = Vec::new();
        // Open-ended date rules use the periods up to now plus their `ahead`.
        cluster.materialize(unix_now());
        let runtime = match Runtime::build(&cluster) {
            Ok(rt) => Some(rt),
            Err(e) => {
                errors.extend(e.0);
                None
            }
        };
        // Every node's, whether or not the runtime could be built.
        for (name, node) in &cluster.nodes {
            let Some(ca) = &node.tls_ca else { continue };
            // An unreadable file is the runtime's error already.
            let Ok(ca_pem) = std::fs::read(ca) else {
                continue;
            };
            let tls = rules::NodeTls {
                ca_file: ca.clone(),
                ca_pem,
                server_name: node.tls_server_name.clone(),
            };
            if let Err((key, e)) = crate::backend::link::BackendTls::check(&tls) {
                errors.push(rules::ConfigError::new(format!("nodes.{name}.{key}"), e));
            }
        }
        errors.extend(user_errors(&users, &cluster, tls));
        for (i, u) in users.iter_mut().enumerate() {
            let hashes = [&u.password_native_hash, &u.password_sha2_hash];
            u.credential = credential(&format!("users[{i}]"), &u.password, hashes, &mut errors);
            let known = |schema: &str| {
                cluster.schemas.contains_key(schema)
                    || (cluster.passthrough_node.is_some() && u.schemas.iter().any(|s| s == "*"))
            };
            u.rules = UserRules::compile(u, &format!("users[{i}]"), &known, &mut errors);
        }
        // Checked with the layout, which LOAD CONFIG TO RUNTIME changes too.
        if cluster.transactions.recovery_interval_ms == 0 {
            errors.push(rules::ConfigError::new(
                "transactions.recovery_interval_ms",
                "must be at least 1",
            ));
        }
        match runtime {
            Some(runtime) if errors.is_empty() => Ok(Layout {
                cluster,
                runtime,
                users,
            }),
            _ => Err(errors),
        }
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[derive(Debug, Clone, Copy)]
pub struct GatherBudget {
    pub rows: u64,
    pub bytes: u64,
}

/// What is fixed for the life of the process, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: String,
    pub max_connections: usize,
    pub listen_backlog: u32,
    /// `server.max_user_connections`: for users without their own limit; 0 = none.
    pub max_user_connections: usize,
    pub max_allowed_packet: usize,
    pub server_version: Option<String>,
    pub worker_threads: usize,
    /// `None`: idle clients are never closed.
    pub client_idle_timeout: Option<Duration>,
    pub connect_timeout: Duration,
    pub max_unauthenticated: usize,
    /// What failed logins cost an address (see [`crate::host_guard`]).
    pub login_policy: crate::host_guard::LoginPolicy,
    /// `None`: statements may run as long as they like.
    pub statement_timeout: Option<Duration>,
    /// Most rows and bytes one statement may gather (see `server.gather_max_rows`).
    pub gather_budget: GatherBudget,
    pub pool: PoolSettings,
    pub health_interval: Duration,
    /// Check statements against the users' rights (config files). Zero-config
    /// pass-through clients log in with the backend's own account: nothing to check.
    pub enforce_privileges: bool,
    /// Offered to clients when configured.
    pub tls: Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>,
    /// See `server.instance_id`; `None`: the data directory's own.
    pub instance_id: Option<String>,
    /// Where the XA decision log lives: known for a config file (beside it unless
    /// `server.data_dir` says otherwise); `None` for zero-config pass-through, which
    /// has one node and so never commits over several.
    pub data_dir: Option<std::path::PathBuf>,
    /// `server.data_dir` as written, resolved against the config file's directory.
    requested_data_dir: std::path::PathBuf,
    /// Where `/metrics`, `/health` and `/ready` are served; `None`: nowhere.
    pub http_listen: Option<String>,
    /// `http_listen` was asked for (not the default): failing to bind it stops
    /// shardgate, where the default only warns (another instance may have it).
    pub http_listen_asked: bool,
    /// Where the admin SQL port listens; `None`: nowhere.
    pub admin_listen: Option<String>,
    /// As `http_listen_asked`, for the admin port.
    pub admin_listen_asked: bool,
    pub admin_users: Vec<AdminUser>,
    /// Statements at least this long are kept in the slow log.
    pub slow_query: Duration,
    /// The config file: what `SAVE CONFIG TO DISK` writes and `LOAD CONFIG FROM DISK`
    /// reads; `None` in zero-config mode.
    pub config_file: Option<std::path::PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: invalid configuration:\n{errors}")]
    Invalid { path: String, errors: ConfigErrors },
}

/// The key of a table whose value a type error is about. serde loses the field's
/// name inside tagged enums (the shard rules), so it is found by the value the error
/// quotes: `invalid type: string "eight", expected u32` at `rules.r` is `shards`.
fn offending_field(root: &toml::Table, table_path: &str, message: &str) -> Option<String> {
    let quoted = message
        .split("invalid type: ")
        .nth(1)
        .or_else(|| message.split("invalid value: ").nth(1))?;
    let quoted = quoted.split(", expected").next()?;
    let mut table = root;
    for segment in table_path.split('.').filter(|s| !s.is_empty()) {
        table = table.get(segment)?.as_table()?;
    }
    let describe = |v: &toml::Value| match v {
        toml::Value::String(s) => format!("string {s:?}"),
        toml::Value::Integer(i) => format!("integer `{i}`"),
        toml::Value::Float(f) => format!("floating point `{f}`"),
        toml::Value::Boolean(b) => format!("boolean `{b}`"),
        toml::Value::Array(_) => "sequence".into(),
        toml::Value::Table(_) => "map".into(),
        toml::Value::Datetime(d) => format!("string {:?}", d.to_string()),
    };
    let mut found = table.iter().filter(|(_, v)| describe(v) == quoted);
    match (found.next(), found.next()) {
        (Some((k, _)), None) => Some(k.clone()),
        _ => None,
    }
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Config, LoadError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut config = Self::from_toml(&text, &shown)?;
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        config.settings.data_dir = Some(dir.join(&config.settings.requested_data_dir));
        config.settings.config_file = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses and validates config text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, LoadError> {
        // The path of the key a type error is about (`rules.r.shards`), which the TOML
        // error alone places at the table's header.
        let mut file: FileConfig = serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|e| {
                let mut key = e.path().to_string();
                let inner = e.into_inner();
                // The message and the line, never the text of the line: it may hold a
                // password.
                let line = inner.span().map(|s| {
                    let before = &text.as_bytes()[..s.start.min(text.len())];
                    before.iter().filter(|&&b| b == b'\n').count() + 1
                });
                let mut message = inner.message().trim_end().to_string();
                let root = toml::from_str::<toml::Table>(text).unwrap_or_default();
                if let Some(field) = offending_field(&root, &key, &message) {
                    key = format!("{key}.{field}");
                }
                if key.ends_with("password") {
                    message = "must be a quoted string".to_string();
                }
                if let Some(line) = line {
                    message = format!("line {line}: {message}");
                }
                LoadError::Parse {
                    path: origin.to_string(),
                    message: if key.is_empty() || key == "." {
                        message
                    } else {
                        format!("{key}: {message}")
                    },
                }
            })?;
        let cluster = ClusterConfig {
            nodes: file.nodes,
            schemas: file.schemas,
            passthrough_node: file.passthrough_node,
            rules: file.rules,
            reads: file.reads,
            transactions: file.transactions,
        };
        let mut errors = Vec::new();
        let layout = match Layout::validate(cluster, file.users, file.tls.is_some()) {
            Ok(l) => Some(l),
            Err(e) => {
                errors.extend(e);
                None
            }
        };
        let mut admin_users = std::mem::take(&mut file.admin.users);
        for (i, u) in admin_users.iter_mut().enumerate() {
            let hashes = [&u.password_native_hash, &u.password_sha2_hash];
            let key = format!("admin.users[{i}]");
            u.credential = credential(&key, &u.password, hashes, &mut errors);
        }
        let s = &file.server;
        if let Err(e) = s.listen.parse::<std::net::SocketAddr>() {
            errors.push(rules::ConfigError::new(
                "server.listen",
                format!("`{}`: {e}; write it as ip:port", s.listen),
            ));
        }
        if s.max_connections == 0 {
            errors.push(rules::ConfigError::new(
                "server.max_connections",
                "must be at least 1",
            ));
        }
        if s.max_allowed_packet < 1024 || s.max_allowed_packet > 1 << 30 {
            errors.push(rules::ConfigError::new(
                "server.max_allowed_packet",
                "must be between 1024 and 1073741824 bytes",
            ));
        }
        if let Some(Err(e)) = s
            .instance_id
            .as_deref()
            .map(crate::xa::xid::check_instance_id)
        {
            errors.push(rules::ConfigError::new("server.instance_id", e));
        }
        // Set explicitly (even to the default), a port that cannot be had stops
        // shardgate; left unset, the default only warns.
        let http_listen = file
            .admin
            .http_listen
            .clone()
            .unwrap_or_else(|| DEFAULT_HTTP_LISTEN.into());
        let admin_listen = file
            .admin
            .listen
            .clone()
            .unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.into());
        for (key, value) in [
            ("admin.http_listen", &http_listen),
            ("admin.listen", &admin_listen),
        ] {
            if !value.is_empty() {
                if let Err(e) = value.parse::<std::net::SocketAddr>() {
                    errors.push(rules::ConfigError::new(
                        key,
                        format!("`{value}`: {e}; write it as ip:port, or \"\" to turn it off"),
                    ));
                }
            }
        }
        for (i, u) in file.admin.users.iter().enumerate() {
            if u.name.is_empty() {
                errors.push(rules::ConfigError::new(
                    format!("admin.users[{i}].name"),
                    "must not be empty",
                ));
            }
            if file.admin.users[..i].iter().any(|o| o.name == u.name) {
                errors.push(rules::ConfigError::new(
                    format!("admin.users[{i}].name"),
                    format!("admin user `{}` is defined twice", u.name),
                ));
            }
        }
        if s.worker_threads == 0 {
            errors.push(rules::ConfigError::new(
                "server.worker_threads",
                "must be at least 1",
            ));
        }
        for (key, v) in [
            ("server.connect_timeout_ms", s.connect_timeout_ms),
            ("server.max_unauthenticated", s.max_unauthenticated as u64),
        ] {
            if v == 0 {
                errors.push(rules::ConfigError::new(key, "must be at least 1"));
            }
        }
        let p = &file.pool;
        if p.max_size == Some(0) {
            errors.push(rules::ConfigError::new(
                "pool.max_size",
                "must be at least 1",
            ));
        }
        if !(p.backend_share > 0.0 && p.backend_share <= 1.0) {
            errors.push(rules::ConfigError::new(
                "pool.backend_share",
                "must be more than 0 and at most 1 (the share of each backend's max_connections this shardgate may use)",
            ));
        }
        if p.max_size.is_some_and(|m| p.min_idle > m) {
            errors.push(rules::ConfigError::new(
                "pool.min_idle",
                "must not exceed pool.max_size",
            ));
        }
        for (key, v) in [
            ("pool.connect_timeout_ms", p.connect_timeout_ms),
            ("pool.acquire_timeout_ms", p.acquire_timeout_ms),
            ("pool.health_check_interval_ms", p.health_check_interval_ms),
        ] {
            if v == 0 {
                errors.push(rules::ConfigError::new(key, "must be at least 1"));
            }
        }
        let tls = match &file.tls {
            None => None,
            Some(t) => {
                let min_version_13 = match t.min_version.as_deref() {
                    None | Some("1.2") => false,
                    Some("1.3") => true,
                    Some(other) => {
                        let e = format!("`{other}`: write \"1.2\" or \"1.3\"");
                        errors.push(rules::ConfigError::new("tls.min_version", e));
                        false
                    }
                };
                let policy = crate::tls::TlsPolicy {
                    min_version_13,
                    ciphers: t.ciphers.clone(),
                };
                match crate::tls::server_config(&t.cert, &t.key, &policy) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        errors.push(rules::ConfigError::new("tls", e));
                        None
                    }
                }
            }
        };
        match layout {
            Some(layout) if errors.is_empty() => Ok(Config {
                settings: Settings {
                    listen: s.listen.clone(),
                    max_connections: s.max_connections,
                    listen_backlog: s.listen_backlog.max(1),
                    max_user_connections: s.max_user_connections,
                    max_allowed_packet: s.max_allowed_packet,
                    server_version: s.server_version.clone(),
                    worker_threads: s.worker_threads,
                    client_idle_timeout: (s.client_idle_timeout_ms > 0)
                        .then(|| Duration::from_millis(s.client_idle_timeout_ms)),
                    connect_timeout: Duration::from_millis(s.connect_timeout_ms),
                    max_unauthenticated: s.max_unauthenticated,
                    login_policy: crate::host_guard::LoginPolicy {
                        max_connect_errors: s.max_connect_errors,
                        delay_after: s.login_delay_after,
                        delay: Duration::from_millis(s.login_delay_ms),
                        // A delayed client must still get its answer before
                        // connect_timeout closes it.
                        delay_max: Duration::from_millis(
                            s.login_delay_max_ms.min(s.connect_timeout_ms / 2),
                        ),
                    },
                    statement_timeout: (s.statement_timeout_ms > 0)
                        .then(|| Duration::from_millis(s.statement_timeout_ms)),
                    gather_budget: GatherBudget {
                        rows: s.gather_max_rows,
                        bytes: s.gather_max_bytes,
                    },
                    pool: PoolSettings {
                        min_idle: p.min_idle,
                        max_size: p.max_size.unwrap_or(PoolSettings::default().max_size),
                        backend_share: p.max_size.is_none().then_some(p.backend_share),
                        idle_timeout: Duration::from_millis(p.idle_timeout_ms),
                        connect_timeout: Duration::from_millis(p.connect_timeout_ms),
                        acquire_timeout: Duration::from_millis(p.acquire_timeout_ms),
                        read_timeout: (p.read_timeout_ms > 0)
                            .then(|| Duration::from_millis(p.read_timeout_ms)),
                    },
                    health_interval: Duration::from_millis(p.health_check_interval_ms),
                    tls,
                    enforce_privileges: true,
                    instance_id: s.instance_id.clone(),
                    data_dir: None,
                    requested_data_dir: s.data_dir.clone(),
                    http_listen_asked: file.admin.http_listen.is_some(),
                    http_listen: (!http_listen.is_empty()).then_some(http_listen),
                    admin_listen_asked: file.admin.listen.is_some(),
                    admin_listen: (!admin_listen.is_empty() && !admin_users.is_empty())
                        .then_some(admin_listen),
                    admin_users,
                    slow_query: Duration::from_millis(file.admin.slow_query_ms),
                    config_file: None,
                },
                layout,
            }),
            _ => Err(LoadError::Invalid {
                path: origin.to_string(),
                errors: ConfigErrors(errors),
            }),
        }
    }

    /// Zero-config pass-through: one node, every backend database visible under its
    /// own name, clients log in with the backend's own credentials.
    pub fn passthrough(
        listen: &str,
        primary: &str,
        replicas: &[String],
        user: &str,
        password: &str,
    ) -> Result<Config, LoadError> {
        let mut text = String::new();
        use std::fmt::Write;
        let q = |s: &str| toml_string(s);
        let _ = writeln!(text, "passthrough_node = \"default\"");
        let _ = writeln!(text, "[server]\nlisten = {}", q(listen));
        // Every database and every right: the backend's own account decides, and a
        // config saved from this layout (SAVE CONFIG TO DISK) keeps it so.
        let _ = writeln!(
            text,
            "[[users]]\nname = {}\npassword = {}\nschemas = [\"*\"]\n\
             privileges = [\"read\", \"write\", \"ddl\", \"account\", \"file\", \"admin\"]",
            q(user),
            q(password)
        );
        let _ = writeln!(
            text,
            "[nodes.default]\nprimary = {}\nuser = {}\npassword = {}",
            q(primary),
            q(user),
            q(password)
        );
        let reps: Vec<String> = replicas.iter().map(|r| q(r)).collect();
        let _ = writeln!(text, "replicas = [{}]", reps.join(", "));
        let mut config = Self::from_toml(&text, "command line")?;
        config.settings.enforce_privileges = false;
        // The admin port is on, on loopback, for the account given.
        config.settings.admin_users = vec![AdminUser::new(user, password)];
        config.settings.admin_listen = Some(DEFAULT_ADMIN_LISTEN.to_string());
        Ok(config)
    }
}

fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
