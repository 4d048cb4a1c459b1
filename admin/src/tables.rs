//! The layout as SQL tables: what DBAs read and change on the admin port. The same
//! tables exist twice, staged (`nodes`, `rules`, …) and in effect (`runtime_nodes`,
//! …), and convert to and from the layout's TOML form, which stays the one that is
//! validated, compared, kept in the history and written to the config file.
//!
//! Values are read back loosely (SQLite's columns take any type): a wrong one is left
//! for validation, which names its config key, rather than refused here.

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection};
use toml::{Table, Value};

/// A top-level key of a layout read from the tables that stands for a row that
/// belongs nowhere; its value says why. Validation reports it as an error.
pub const BAD_ROW: &str = "bad staged row";

/// The staged tables, in the order they are written.
pub const TABLES: [&str; 11] = [
    "nodes",
    "replicas",
    "rules",
    "rule_properties",
    "schemas",
    "tables",
    "binding_groups",
    "users",
    "user_tables",
    "firewall_rules",
    "settings",
];

/// The tables under `prefix` ("" for the staged ones, "runtime_" for those in effect).
pub fn ddl(prefix: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {prefix}nodes (
            name TEXT PRIMARY KEY NOT NULL,
            primary_address TEXT NOT NULL,
            user TEXT NOT NULL,
            password TEXT NOT NULL DEFAULT '',
            database_name TEXT,
            auto_detect_primary INTEGER NOT NULL DEFAULT 0,
            password_env TEXT,
            password_file TEXT,
            tls_ca TEXT,
            tls_server_name TEXT);
         CREATE TABLE IF NOT EXISTS {prefix}replicas (
            node TEXT NOT NULL,
            address TEXT NOT NULL,
            weight INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (node, address));
         CREATE TABLE IF NOT EXISTS {prefix}rules (
            name TEXT PRIMARY KEY NOT NULL,
            algorithm TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS {prefix}rule_properties (
            rule TEXT NOT NULL,
            property TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (rule, property));
         CREATE TABLE IF NOT EXISTS {prefix}schemas (
            name TEXT PRIMARY KEY NOT NULL,
            node TEXT NOT NULL,
            causal_reads TEXT,
            transactions TEXT);
         CREATE TABLE IF NOT EXISTS {prefix}tables (
            schema_name TEXT NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            shard_column TEXT,
            rule TEXT,
            nodes TEXT,
            tables_per_node INTEGER,
            naming TEXT,
            placement TEXT,
            node TEXT,
            global_id_column TEXT,
            global_id_generator TEXT,
            global_id_worker_id INTEGER,
            PRIMARY KEY (schema_name, name));
         CREATE TABLE IF NOT EXISTS {prefix}binding_groups (
            schema_name TEXT NOT NULL,
            group_no INTEGER NOT NULL,
            table_name TEXT NOT NULL,
            PRIMARY KEY (schema_name, group_no, table_name));
         CREATE TABLE IF NOT EXISTS {prefix}users (
            name TEXT PRIMARY KEY NOT NULL,
            password TEXT NOT NULL DEFAULT '',
            schemas TEXT,
            privileges TEXT,
            require_tls INTEGER NOT NULL DEFAULT 0,
            causal_reads TEXT,
            transactions TEXT,
            password_native_hash TEXT,
            password_sha2_hash TEXT,
            max_user_connections INTEGER,
            require_where INTEGER NOT NULL DEFAULT 0);
         CREATE TABLE IF NOT EXISTS {prefix}user_tables (
            user_name TEXT NOT NULL,
            table_name TEXT NOT NULL,
            privileges TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (user_name, table_name));
         CREATE TABLE IF NOT EXISTS {prefix}firewall_rules (
            user_name TEXT NOT NULL,
            kind TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (user_name, kind, value));
         CREATE TABLE IF NOT EXISTS {prefix}settings (
            name TEXT PRIMARY KEY NOT NULL,
            value TEXT NOT NULL);"
    )
}

/// Replaces the tables under `prefix` with `doc`.
pub fn write(db: &Connection, prefix: &str, doc: &Table) -> rusqlite::Result<()> {
    for t in TABLES {
        db.execute(&format!("DELETE FROM {prefix}{t}"), [])?;
    }
    let empty = Table::new();
    let table = |v: Option<&Value>| v.and_then(Value::as_table).cloned().unwrap_or_default();
    for (name, node) in &table(doc.get("nodes")) {
        let n = node.as_table().unwrap_or(&empty);
        db.execute(
            &format!("INSERT INTO {prefix}nodes VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
            params![
                name,
                text(n.get("primary")),
                text(n.get("user")),
                text(n.get("password")).unwrap_or_default(),
                text(n.get("database")),
                flag(n.get("auto_detect_primary")),
                text(n.get("password_env")),
                text(n.get("password_file")),
                text(n.get("tls_ca")),
                text(n.get("tls_server_name")),
            ],
        )?;
        for r in n
            .get("replicas")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (address, weight) = match r {
                Value::Table(w) => (
                    text(w.get("address")),
                    w.get("weight").and_then(Value::as_integer).unwrap_or(1),
                ),
                other => (text(Some(other)), 1),
            };
            db.execute(
                &format!("INSERT INTO {prefix}replicas VALUES (?1, ?2, ?3)"),
                params![name, address, weight],
            )?;
        }
    }
    for (name, rule) in &table(doc.get("rules")) {
        let r = rule.as_table().unwrap_or(&empty);
        db.execute(
            &format!("INSERT INTO {prefix}rules VALUES (?1, ?2)"),
            params![name, text(r.get("algorithm"))],
        )?;
        for (key, value) in r.iter().filter(|(k, _)| *k != "algorithm") {
            // Maps (a list rule's values, a ring's weights) one entry per row.
            let entries: Vec<(String, &Value)> = match value {
                Value::Table(map) => map.iter().map(|(k, v)| (format!("{key}.{k}"), v)).collect(),
                v => vec![(key.clone(), v)],
            };
            for (property, v) in entries {
                db.execute(
                    &format!("INSERT INTO {prefix}rule_properties VALUES (?1, ?2, ?3)"),
                    params![name, property, literal(v)],
                )?;
            }
        }
    }
    for (name, schema) in &table(doc.get("schemas")) {
        let s = schema.as_table().unwrap_or(&empty);
        db.execute(
            &format!("INSERT INTO {prefix}schemas VALUES (?1, ?2, ?3, ?4)"),
            params![
                name,
                text(s.get("node")),
                text(s.get("causal_reads")),
                text(s.get("transactions"))
            ],
        )?;
        for (tname, t) in &table(s.get("tables")) {
            let t = t.as_table().unwrap_or(&empty);
            let gid = table(t.get("global_id"));
            db.execute(
                &format!(
                    "INSERT INTO {prefix}tables VALUES \
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                ),
                params![
                    name,
                    tname,
                    text(t.get("kind")),
                    text(t.get("column")),
                    text(t.get("rule")),
                    list(t.get("nodes")),
                    t.get("tables_per_node").and_then(Value::as_integer),
                    text(t.get("naming")),
                    text(t.get("placement")),
                    text(t.get("node")),
                    text(gid.get("column")),
                    text(gid.get("generator")),
                    gid.get("worker_id").and_then(Value::as_integer),
                ],
            )?;
        }
        let groups = s.get("binding").and_then(Value::as_array);
        for (i, group) in groups.into_iter().flatten().enumerate() {
            for member in group.as_array().into_iter().flatten() {
                db.execute(
                    &format!("INSERT INTO {prefix}binding_groups VALUES (?1, ?2, ?3)"),
                    params![name, i as i64 + 1, text(Some(member))],
                )?;
            }
        }
    }
    for user in doc
        .get("users")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let u = user.as_table().unwrap_or(&empty);
        db.execute(
            &format!(
                "INSERT INTO {prefix}users VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ),
            params![
                text(u.get("name")),
                text(u.get("password")).unwrap_or_default(),
                list(u.get("schemas")),
                // Absent: the default rights; an empty list: none.
                u.get("privileges")
                    .map(|p| list(Some(p)).unwrap_or_default()),
                flag(u.get("require_tls")),
                text(u.get("causal_reads")),
                text(u.get("transactions")),
                text(u.get("password_native_hash")),
                text(u.get("password_sha2_hash")),
                u.get("max_user_connections").and_then(Value::as_integer),
                flag(u.get("require_where")),
            ],
        )?;
        for (table, rights) in &table(u.get("tables")) {
            db.execute(
                &format!("INSERT INTO {prefix}user_tables VALUES (?1, ?2, ?3)"),
                params![
                    text(u.get("name")),
                    table,
                    list(Some(rights)).unwrap_or_default()
                ],
            )?;
        }
        for (kind, key) in [("digest", "deny_digests"), ("pattern", "deny_patterns")] {
            for v in u.get(key).and_then(Value::as_array).into_iter().flatten() {
                db.execute(
                    &format!("INSERT INTO {prefix}firewall_rules VALUES (?1, ?2, ?3)"),
                    params![text(u.get("name")), kind, text(Some(v))],
                )?;
            }
        }
    }
    let mut settings = Vec::new();
    if let Some(v) = doc.get("passthrough_node") {
        settings.push(("passthrough_node".to_string(), v));
    }
    for section in ["reads", "transactions"] {
        for (k, v) in doc
            .get(section)
            .and_then(Value::as_table)
            .into_iter()
            .flatten()
        {
            settings.push((format!("{section}.{k}"), v));
        }
    }
    for (name, v) in settings {
        db.execute(
            &format!("INSERT INTO {prefix}settings VALUES (?1, ?2)"),
            params![name, literal(v)],
        )?;
    }
    Ok(())
}

/// A column's value as text for a result set; bytes that are not UTF-8 are
/// replaced, never a failure.
pub fn text_of(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn flag(v: Option<&Value>) -> i64 {
    i64::from(v.and_then(Value::as_bool).unwrap_or(false))
}

fn list(v: Option<&Value>) -> Option<String> {
    let items: Vec<String> = v?
        .as_array()?
        .iter()
        .filter_map(|i| text(Some(i)))
        .collect();
    (!items.is_empty()).then(|| items.join(","))
}

/// A property value as the DBA writes it: TOML (`8`, `true`, `[0, 100]`, `"x"`), or
/// plain text, which is a string (`month`, `Europe/Berlin`).
pub fn parse_literal(text: &str) -> Value {
    let parsed = toml::from_str::<Table>(&format!("v = {text}"));
    match parsed {
        Ok(t) if t.len() == 1 => match t.get("v") {
            Some(Value::Datetime(d)) => Value::String(d.to_string()),
            Some(v) => v.clone(),
            None => Value::String(text.to_string()),
        },
        _ => Value::String(text.to_string()),
    }
}

/// The text [`parse_literal`] reads back as `v`: plain where that is unambiguous.
pub fn literal(v: &Value) -> String {
    match v {
        Value::String(s) if parse_literal(s) == *v => s.clone(),
        other => other.to_string(),
    }
}

mod read;
pub use read::read;

#[cfg(test)]
mod tests;
