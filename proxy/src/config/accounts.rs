//! The accounts in a config: front-end users (`[[users]]`) and admin accounts
//! (`[[admin.users]]`), their rights and credentials, and the checks on them.

use std::collections::BTreeMap;

use rules::{CausalReads, ClusterConfig, TransactionMode};
use serde::{Deserialize, Serialize};

use super::UserRules;
use crate::credential::Credential;

/// An account of the admin port (`[[admin.users]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminUser {
    pub name: String,
    #[serde(default)]
    pub password: String,
    /// The password as hashes instead (see [`Credential`]).
    #[serde(default)]
    pub password_native_hash: Option<String>,
    #[serde(default)]
    pub password_sha2_hash: Option<String>,
    /// What logins are checked against: set when the config is validated.
    #[serde(skip)]
    pub credential: Credential,
}

impl AdminUser {
    /// An account with a cleartext password (zero-config mode).
    pub fn new(name: &str, password: &str) -> AdminUser {
        AdminUser {
            name: name.to_string(),
            password: password.to_string(),
            password_native_hash: None,
            password_sha2_hash: None,
            credential: Credential::from_password(password),
        }
    }
}

/// A front-end account: what clients log in to shardgate with.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    #[serde(default)]
    pub password: String,
    /// The password as `mysql_native_password`'s hash (`*` and 40 hex digits) instead
    /// of in clear; see [`Credential`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_native_hash: Option<String>,
    /// The password as `caching_sha2_password`'s SHA256(SHA256(password)), 64 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_sha2_hash: Option<String>,
    /// Most sessions this user may have at once (MySQL's MAX_USER_CONNECTIONS); unset:
    /// `server.max_user_connections`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_user_connections: Option<usize>,
    /// Logical schemas this user may use; empty means every logical schema, and `*`
    /// also the databases a `passthrough_node` makes visible.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schemas: Vec<String>,
    /// Refuse this user's logins that do not use TLS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_tls: bool,
    /// What the user may do: `read`, `write`, `ddl` (the default is all three), and
    /// the grants statements on the server as a whole need: `account`, `file`, `admin`.
    #[serde(default = "default_privileges")]
    pub privileges: Vec<String>,
    /// Overrides `reads.causal_reads` for this user's sessions (a schema's own setting
    /// overrides both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causal_reads: Option<CausalReads>,
    /// Overrides `transactions.mode` for this user's sessions (a schema's own
    /// setting overrides both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions: Option<TransactionMode>,
    /// Rights on single tables (`"schema.table" = ["read"]`), in place of `privileges`
    /// there: a table can be made read-only or unreachable (`[]`), or writable for a
    /// user whose `privileges` do not write.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tables: BTreeMap<String, Vec<String>>,
    /// The SQL firewall: statements refused whatever the rights, by digest (16 hex
    /// digits, as SHOW STATS shows them) ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_digests: Vec<String>,
    /// ... or by a regular expression matched against the digest text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_patterns: Vec<String>,
    /// Refuse UPDATE and DELETE without a WHERE clause on sharded tables (an accident
    /// that rewrites every shard).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_where: bool,
    /// `tables`, `deny_digests` and `deny_patterns` compiled: set when the layout is
    /// validated.
    #[serde(skip)]
    pub rules: UserRules,
    /// `privileges` read once: every statement asks.
    #[serde(skip)]
    needs: std::sync::OnceLock<Vec<router::privilege::Need>>,
    /// What logins are checked against: set when the layout is validated (until
    /// then nobody can log in as this user).
    #[serde(skip)]
    pub credential: Credential,
}

fn default_privileges() -> Vec<String> {
    ["read", "write", "ddl"].map(String::from).to_vec()
}

impl UserConfig {
    /// The user holds `need`.
    pub fn may(&self, need: router::privilege::Need) -> bool {
        self.needs
            .get_or_init(|| {
                self.privileges
                    .iter()
                    .filter_map(|p| router::privilege::Need::parse(p))
                    .collect()
            })
            .contains(&need)
    }

    /// The user may use database `db`: a logical schema (all of them when `schemas`
    /// is empty), or, with `*`, anything a passthrough node shows.
    pub fn may_use(&self, db: &str, logical: bool) -> bool {
        if self.schemas.iter().any(|s| s == "*") {
            return true;
        }
        logical && (self.schemas.is_empty() || self.schemas.iter().any(|s| s == db))
    }
}

/// An account's credential from its password or hashes; a bad one is an error under
/// `key` (and the account can log in with nothing).
pub(super) fn credential(
    key: &str,
    password: &str,
    [native, sha2]: [&Option<String>; 2],
    errors: &mut Vec<rules::ConfigError>,
) -> Credential {
    Credential::from_config(password, native.as_deref(), sha2.as_deref()).unwrap_or_else(|e| {
        errors.push(rules::ConfigError::new(key, e.to_string()));
        Credential::default()
    })
}

pub(super) fn user_errors(
    users: &[UserConfig],
    cluster: &ClusterConfig,
    tls: bool,
) -> Vec<rules::ConfigError> {
    let mut errors = Vec::new();
    if !tls && users.iter().any(|u| u.require_tls) {
        errors.push(rules::ConfigError::new(
            "users",
            "a user has require_tls, but there is no [tls] section with cert and key",
        ));
    }
    if users.is_empty() {
        errors.push(rules::ConfigError::new(
            "users",
            "no users: add at least one [[users]] with name and password",
        ));
    }
    for (i, u) in users.iter().enumerate() {
        if u.name.is_empty() {
            errors.push(rules::ConfigError::new(
                format!("users[{i}].name"),
                "must not be empty",
            ));
        }
        if users[..i].iter().any(|o| o.name == u.name) {
            errors.push(rules::ConfigError::new(
                format!("users[{i}].name"),
                format!("user `{}` is defined twice", u.name),
            ));
        }
        for p in &u.privileges {
            if router::privilege::Need::parse(p).is_none() {
                errors.push(rules::ConfigError::new(
                    format!("users[{i}].privileges"),
                    format!("unknown privilege `{p}`; use read, write, ddl, account, file, admin"),
                ));
            }
        }
        for sch in &u.schemas {
            if sch != "*" && !cluster.schemas.contains_key(sch) {
                errors.push(rules::ConfigError::new(
                    format!("users[{i}].schemas"),
                    format!("unknown schema `{sch}`"),
                ));
            }
        }
    }
    errors
}
