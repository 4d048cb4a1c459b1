//! The layout as a TOML table: the form the admin port stages, compares, keeps in its
//! history and writes back into the config file. One form for all of them, so what a
//! DBA loads is exactly what the next start reads.

use std::collections::BTreeMap;

use rules::{
    ClusterConfig, ConfigError, NodeConfig, ReadsConfig, RuleConfig, SchemaConfig,
    TransactionsConfig,
};
use serde::{Deserialize, Serialize};

use super::{Layout, UserConfig};

/// The top-level keys of a config file that make the layout; the others (`server`,
/// `pool`, `tls`, `admin`) are fixed for the life of the process.
pub const LAYOUT_KEYS: [&str; 7] = [
    "users",
    "nodes",
    "schemas",
    "passthrough_node",
    "rules",
    "reads",
    "transactions",
];

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct LayoutForm {
    #[serde(default)]
    users: Vec<UserConfig>,
    #[serde(default)]
    nodes: BTreeMap<String, NodeConfig>,
    #[serde(default)]
    schemas: BTreeMap<String, SchemaConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    passthrough_node: Option<String>,
    #[serde(default)]
    rules: BTreeMap<String, RuleConfig>,
    #[serde(default)]
    reads: ReadsConfig,
    #[serde(default)]
    transactions: TransactionsConfig,
}

impl Layout {
    /// The layout's keys, as a config file holds them.
    pub fn document(&self) -> toml::Table {
        document_of(&self.cluster, &self.users)
    }

    /// Reads and validates a layout from its keys; every problem is reported under
    /// its key. `tls`: clients can be offered TLS.
    pub fn from_document(doc: &toml::Table, tls: bool) -> Result<Layout, Vec<ConfigError>> {
        let form = read_form(doc)?;
        let cluster = ClusterConfig {
            nodes: form.nodes,
            schemas: form.schemas,
            passthrough_node: form.passthrough_node,
            rules: form.rules,
            reads: form.reads,
            transactions: form.transactions,
        };
        Layout::validate(cluster, form.users, tls)
    }
}

/// A layout's keys as the config file's form writes them (every default spelled out),
/// without validating what they say: what LOAD CONFIG FROM DISK stages.
pub fn normalized(doc: &toml::Table) -> Result<toml::Table, Vec<ConfigError>> {
    let form = read_form(doc)?;
    toml::Table::try_from(form).map_err(|e| vec![ConfigError::new("config", e.to_string())])
}

/// The layout's keys read into their form; a type error is reported under its key,
/// and every entry (node, rule, schema, user) is read on its own, so that all their
/// errors are reported at once rather than the first.
fn read_form(doc: &toml::Table) -> Result<LayoutForm, Vec<ConfigError>> {
    read_value::<LayoutForm>(doc, toml::Value::Table(doc.clone()), "").map_err(|first| {
        let mut all = Vec::new();
        for (key, value) in doc {
            let entries = value
                .as_table()
                .filter(|_| ["nodes", "schemas", "rules"].contains(&key.as_str()));
            match (key.as_str(), entries) {
                ("nodes", Some(t)) => each::<NodeConfig>(doc, t, key, &mut all),
                ("schemas", Some(t)) => each::<SchemaConfig>(doc, t, key, &mut all),
                ("rules", Some(t)) => each::<RuleConfig>(doc, t, key, &mut all),
                ("users", _) => {
                    for (i, u) in value.as_array().into_iter().flatten().enumerate() {
                        if let Err(e) =
                            read_value::<UserConfig>(doc, u.clone(), &format!("users[{i}]"))
                        {
                            all.extend(e);
                        }
                    }
                }
                ("reads", _) => all.extend(
                    read_value::<ReadsConfig>(doc, value.clone(), key)
                        .err()
                        .unwrap_or_default(),
                ),
                ("transactions", _) => all.extend(
                    read_value::<TransactionsConfig>(doc, value.clone(), key)
                        .err()
                        .unwrap_or_default(),
                ),
                // A staged row that belongs nowhere, and why (admin tables).
                _ if key.starts_with(admin::tables::BAD_ROW) => all.push(ConfigError::new(
                    key[admin::tables::BAD_ROW.len()..].trim().to_string(),
                    value.as_str().unwrap_or_default().to_string(),
                )),
                _ if !LAYOUT_KEYS.contains(&key.as_str()) => all.push(ConfigError::new(
                    key.clone(),
                    format!(
                        "unknown key; the layout's keys are {}",
                        LAYOUT_KEYS.join(", ")
                    ),
                )),
                _ => {}
            }
        }
        // The whole form's own error (a key of the wrong shape, `users = "x"`) is
        // kept when no entry reported on it.
        for e in first {
            if !all
                .iter()
                .any(|a| a.key.starts_with(&e.key) || e.key.starts_with(&a.key))
            {
                all.push(e);
            }
        }
        all
    })
}

/// Reads each entry of `table` (under `key`) as a `T`, adding what fails to `all`.
fn each<T: serde::de::DeserializeOwned>(
    doc: &toml::Table,
    table: &toml::Table,
    key: &str,
    all: &mut Vec<ConfigError>,
) {
    for (name, entry) in table {
        if let Err(e) = read_value::<T>(doc, entry.clone(), &format!("{key}.{name}")) {
            all.extend(e);
        }
    }
}

/// `value` (found at `at` in `doc`) read as a `T`; its error under its full key.
fn read_value<T: serde::de::DeserializeOwned>(
    doc: &toml::Table,
    value: toml::Value,
    at: &str,
) -> Result<T, Vec<ConfigError>> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let mut key = match (at.is_empty(), inner.as_str()) {
            (true, _) => inner,
            (false, "" | ".") => at.to_string(),
            (false, _) => format!("{at}.{inner}"),
        };
        let message = e.into_inner().message().trim_end().to_string();
        if let Some(field) = super::offending_field(doc, &key, &message) {
            key = format!("{key}.{field}");
        }
        // `unknown field `shardz`, expected …` is about that field.
        if let Some(field) = message
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
        {
            key = format!("{key}.{field}");
        }
        let key = if key.is_empty() || key == "." {
            "config".to_string()
        } else {
            key
        };
        // A password is never quoted back.
        let message = if key.ends_with("password") {
            "must be a quoted string".to_string()
        } else {
            message
        };
        vec![ConfigError::new(key, message)]
    })
}

/// The layout's keys, as a config file holds them, for `cluster` and `users`.
pub fn document_of(c: &ClusterConfig, users: &[UserConfig]) -> toml::Table {
    let form = LayoutForm {
        users: users.to_vec(),
        nodes: c.nodes.clone(),
        schemas: c.schemas.clone(),
        passthrough_node: c.passthrough_node.clone(),
        rules: c.rules.clone(),
        reads: c.reads,
        transactions: c.transactions,
    };
    // Every field is a string, number, flag or table of them: always a table.
    toml::Table::try_from(form).unwrap_or_default()
}

/// A config file's sections besides the layout for a shardgate started without one:
/// where it listens, and its admin port and account, so that the file written by
/// SAVE CONFIG TO DISK starts the same shardgate.
pub fn fresh_file(settings: &super::Settings) -> toml::Table {
    let mut server = toml::Table::new();
    server.insert("listen".into(), settings.listen.clone().into());
    if settings.data_dir.is_some() {
        // The file is written into the data directory: "." keeps the history,
        // audit and XA log where they are.
        server.insert("data_dir".into(), ".".into());
    }
    let mut admin = toml::Table::new();
    // What --admin-listen and --http-listen said ("" for off), else nothing: the
    // defaults.
    let port = |asked: bool, at: &Option<String>| asked.then(|| at.clone().unwrap_or_default());
    if let Some(l) = port(settings.admin_listen_asked, &settings.admin_listen) {
        admin.insert("listen".into(), l.into());
    }
    if let Some(h) = port(settings.http_listen_asked, &settings.http_listen) {
        admin.insert("http_listen".into(), h.into());
    }
    let users: Vec<toml::Value> = settings
        .admin_users
        .iter()
        .map(|u| {
            let mut t = toml::Table::new();
            t.insert("name".into(), u.name.clone().into());
            t.insert("password".into(), u.password.clone().into());
            toml::Value::Table(t)
        })
        .collect();
    admin.insert("users".into(), toml::Value::Array(users));
    toml::Table::from_iter([
        ("server".to_string(), toml::Value::Table(server)),
        ("admin".to_string(), toml::Value::Table(admin)),
    ])
}

/// The file's table with its layout keys replaced by `layout`'s.
pub fn with_layout(mut file: toml::Table, layout: &toml::Table) -> toml::Table {
    for key in LAYOUT_KEYS {
        file.remove(key);
    }
    for (k, v) in layout {
        file.insert(k.clone(), v.clone());
    }
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
        passthrough_node = "dn1"
        [[users]]
        name = "app"
        password = "pw"
        schemas = ["shop"]
        causal_reads = "global"
        [nodes.dn1]
        primary = "127.0.0.1:1"
        user = "u"
        password = "p"
        replicas = ["127.0.0.1:2", { address = "127.0.0.1:3", weight = 3 }]
        [nodes.dn2]
        primary = "127.0.0.1:4"
        user = "u"
        database = "shop_b"
        auto_detect_primary = true
        [rules.by_user]
        algorithm = "range"
        boundaries = [0, 100, 200]
        open_above = true
        [rules.by_month]
        algorithm = "date"
        unit = "month"
        start = "2024-01-01"
        time_zone = "UTC"
        shards = 12
        suffix_pattern = "yyyyMM"
        [rules.by_country]
        algorithm = "list"
        shards = 2
        values = { de = 0, fr = 1 }
        [schemas.shop]
        node = "dn1"
        binding = [["orders", "items"]]
        transactions = "best_effort"
        [schemas.shop.tables.orders]
        kind = "sharded"
        column = "user_id"
        rule = "by_user"
        nodes = ["dn1", "dn2"]
        tables_per_node = 1
        global_id = { column = "id", worker_id = 3 }
        [schemas.shop.tables.items]
        kind = "sharded"
        column = "user_id"
        rule = "by_user"
        nodes = ["dn1", "dn2"]
        tables_per_node = 1
        [schemas.shop.tables.events]
        kind = "sharded"
        column = "at"
        rule = "by_month"
        nodes = ["dn1", "dn2"]
        tables_per_node = 6
        naming = "{table}_{suffix}"
        [schemas.shop.tables.countries]
        kind = "broadcast"
        [schemas.shop.tables.log]
        kind = "single"
        node = "dn2"
        [reads]
        causal_wait_ms = 50
    "#;

    fn layout(text: &str) -> Layout {
        let doc: toml::Table = toml::from_str(text).expect("toml");
        Layout::from_document(&doc, false).expect("valid")
    }

    #[test]
    fn a_layout_survives_its_document() {
        let first = layout(FULL);
        let doc = first.document();
        let again = Layout::from_document(&doc, false).expect("valid");
        assert_eq!(first.cluster, again.cluster);
        assert_eq!(doc, again.document());
        // And through the text a config file holds.
        let text = toml::to_string(&doc).expect("renders");
        assert_eq!(layout(&text).cluster, first.cluster, "{text}");
    }

    #[test]
    fn every_entry_s_errors_at_once() {
        let doc: toml::Table = toml::from_str(
            "[[users]]\nname = \"a\"\nprivileges = \"read\"\n\
             [nodes.dn1]\nprimary = \"h:1\"\nuser = 5\n\
             [rules.r]\nalgorithm = \"mod\"\nshards = 2\nshardz = 3\n\
             [rules.m]\nalgorithm = \"date\"\nunit = \"month\"\nstart = \"2024-01-01\"\n\
             open_ended = true\nahead = -1\n",
        )
        .expect("toml");
        let e = Layout::from_document(&doc, false).expect_err("refused");
        let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
        for key in [
            "users[0].privileges",
            "nodes.dn1.user",
            "rules.r.shardz",
            "rules.m.ahead",
        ] {
            assert!(keys.contains(&key), "{key} in {e:?}");
        }
    }

    #[test]
    fn errors_name_their_key() {
        let doc: toml::Table =
            toml::from_str("[rules.r]\nalgorithm = \"mod\"\nshards = \"eight\"\n").expect("toml");
        let e = Layout::from_document(&doc, false).expect_err("refused");
        assert_eq!(e[0].key, "rules.r.shards", "{e:?}");
        let doc: toml::Table =
            toml::from_str("[nodes.dn1]\nprimary = \"x\"\nuser = 5\n").expect("toml");
        let e = Layout::from_document(&doc, false).expect_err("refused");
        assert_eq!(e[0].key, "nodes.dn1.user", "{e:?}");
    }
}
