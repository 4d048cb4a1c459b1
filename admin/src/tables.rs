//! The layout as SQL tables: what DBAs read and change on the admin port. The same
//! tables exist twice, staged (`nodes`, `rules`, …) and in effect (`runtime_nodes`,
//! …), and convert to and from the layout's TOML form, which stays the one that is
//! validated, compared, kept in the history and written to the config file.
//!
//! Values are read back loosely (SQLite's columns take any type): a wrong one is left
//! for validation, which names its config key, rather than refused here.

use rusqlite::types::{Value as Sql, ValueRef};
use std::collections::BTreeMap;

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

/// The layout the tables under `prefix` hold.
pub fn read(db: &Connection, prefix: &str) -> rusqlite::Result<Table> {
    let mut doc = Table::new();
    let mut nodes = Table::new();
    for row in rows(db, &format!("SELECT name, primary_address, user, password, database_name, auto_detect_primary, password_env, password_file, tls_ca, tls_server_name FROM {prefix}nodes ORDER BY name"))? {
        let mut n = Table::new();
        put(&mut n, "primary", value(&row[1], false));
        put(&mut n, "user", value(&row[2], false));
        put(&mut n, "password", value(&row[3], false));
        put(&mut n, "database", value(&row[4], false));
        put(&mut n, "auto_detect_primary", boolean(&row[5]));
        put(&mut n, "password_env", value(&row[6], false));
        put(&mut n, "password_file", value(&row[7], false));
        put(&mut n, "tls_ca", value(&row[8], false));
        put(&mut n, "tls_server_name", value(&row[9], false));
        nodes.insert(name_of(&row[0]), Value::Table(n));
    }
    for row in rows(
        db,
        &format!("SELECT node, address, weight FROM {prefix}replicas ORDER BY rowid"),
    )? {
        let node = entry(&mut nodes, &name_of(&row[0]));
        let address = value(&row[1], false).unwrap_or_else(|| Value::String(String::new()));
        let replica = match value(&row[2], true) {
            None | Some(Value::Integer(1)) => address,
            Some(weight) => Value::Table(Table::from_iter([
                ("address".to_string(), address),
                ("weight".to_string(), weight),
            ])),
        };
        let list = node
            .entry("replicas")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = list {
            a.push(replica);
        }
    }
    put_table(&mut doc, "nodes", nodes);

    let mut rules = Table::new();
    for row in rows(
        db,
        &format!("SELECT name, algorithm FROM {prefix}rules ORDER BY name"),
    )? {
        let mut r = Table::new();
        put(&mut r, "algorithm", value(&row[1], false));
        rules.insert(name_of(&row[0]), Value::Table(r));
    }
    let props = format!(
        "SELECT rule, property, value FROM {prefix}rule_properties ORDER BY rule, property"
    );
    for row in rows(db, &props)? {
        let rule = entry(&mut rules, &name_of(&row[0]));
        let property = name_of(&row[1]);
        let v = parse_literal(&name_of(&row[2]));
        match property.split_once('.') {
            Some((map, key)) => {
                entry(rule, map).insert(key.to_string(), v);
            }
            None => {
                rule.insert(property, v);
            }
        }
    }
    put_table(&mut doc, "rules", rules);

    let mut schemas = Table::new();
    for row in rows(
        db,
        &format!(
            "SELECT name, node, causal_reads, transactions FROM {prefix}schemas ORDER BY name"
        ),
    )? {
        let mut s = Table::new();
        put(&mut s, "node", value(&row[1], false));
        put(&mut s, "causal_reads", value(&row[2], false));
        put(&mut s, "transactions", value(&row[3], false));
        schemas.insert(name_of(&row[0]), Value::Table(s));
    }
    let tables = format!(
        "SELECT schema_name, name, kind, shard_column, rule, nodes, tables_per_node, naming, \
         placement, node, global_id_column, global_id_generator, global_id_worker_id \
         FROM {prefix}tables ORDER BY schema_name, name"
    );
    for row in rows(db, &tables)? {
        let mut t = Table::new();
        put(&mut t, "kind", value(&row[2], false));
        put(&mut t, "column", value(&row[3], false));
        put(&mut t, "rule", value(&row[4], false));
        put(&mut t, "nodes", split(&row[5]));
        put(&mut t, "tables_per_node", value(&row[6], true));
        put(&mut t, "naming", value(&row[7], false));
        put(&mut t, "placement", value(&row[8], false));
        put(&mut t, "node", value(&row[9], false));
        let mut gid = Table::new();
        put(&mut gid, "column", value(&row[10], false));
        put(&mut gid, "generator", value(&row[11], false));
        put(&mut gid, "worker_id", value(&row[12], true));
        put_table(&mut t, "global_id", gid);
        let schema = entry(&mut schemas, &name_of(&row[0]));
        entry(schema, "tables").insert(name_of(&row[1]), Value::Table(t));
    }
    let groups = format!(
        "SELECT schema_name, group_no, table_name FROM {prefix}binding_groups \
         ORDER BY schema_name, group_no, rowid"
    );
    let mut last: Option<(String, String)> = None;
    for row in rows(db, &groups)? {
        let (schema_name, group) = (name_of(&row[0]), name_of(&row[1]));
        let schema = entry(&mut schemas, &schema_name);
        let list = schema
            .entry("binding")
            .or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(list) = list else { continue };
        let key = Some((schema_name, group));
        if last != key || list.is_empty() {
            list.push(Value::Array(Vec::new()));
        }
        last = key;
        if let Some(Value::Array(members)) = list.last_mut() {
            members.push(Value::String(name_of(&row[2])));
        }
    }
    put_table(&mut doc, "schemas", schemas);

    // Rights per table and firewall rules, by user.
    let mut own_tables: BTreeMap<String, Table> = BTreeMap::new();
    let sql =
        format!("SELECT user_name, table_name, privileges FROM {prefix}user_tables ORDER BY rowid");
    for r in rows(db, &sql)? {
        let rights = split(&r[2]).unwrap_or(Value::Array(Vec::new()));
        own_tables
            .entry(name_of(&r[0]))
            .or_default()
            .insert(name_of(&r[1]), rights);
    }
    let mut denials: BTreeMap<String, BTreeMap<String, Vec<Value>>> = BTreeMap::new();
    let mut bad: Vec<(String, String)> = Vec::new();
    let sql = format!("SELECT user_name, kind, value FROM {prefix}firewall_rules ORDER BY rowid");
    for r in rows(db, &sql)? {
        let (user, kind) = (name_of(&r[0]), name_of(&r[1]));
        let key = match kind.as_str() {
            "digest" => "deny_digests",
            "pattern" => "deny_patterns",
            _ => {
                bad.push((
                    format!("firewall_rules ({user}, {kind})"),
                    format!("kind `{kind}` is none: use digest or pattern"),
                ));
                continue;
            }
        };
        denials
            .entry(user)
            .or_default()
            .entry(key.to_string())
            .or_default()
            .push(Value::String(name_of(&r[2])));
    }
    let mut users = Vec::new();
    for row in rows(
        db,
        &format!(
            "SELECT name, password, schemas, privileges, require_tls, causal_reads, transactions, \
             password_native_hash, password_sha2_hash, max_user_connections, require_where \
             FROM {prefix}users ORDER BY rowid"
        ),
    )? {
        let mut u = Table::new();
        put(&mut u, "name", value(&row[0], false));
        put(&mut u, "password", value(&row[1], false));
        put(&mut u, "schemas", split(&row[2]));
        // NULL: the default rights; empty text: none.
        let privileges = match &row[3] {
            Sql::Null => None,
            other => split(other).or_else(|| Some(Value::Array(Vec::new()))),
        };
        put(&mut u, "privileges", privileges);
        put(&mut u, "require_tls", boolean(&row[4]));
        put(&mut u, "causal_reads", value(&row[5], false));
        put(&mut u, "transactions", value(&row[6], false));
        put(&mut u, "password_native_hash", value(&row[7], false));
        put(&mut u, "password_sha2_hash", value(&row[8], false));
        put(&mut u, "max_user_connections", value(&row[9], true));
        put(&mut u, "require_where", boolean(&row[10]));
        let name = name_of(&row[0]);
        put_table(
            &mut u,
            "tables",
            own_tables.remove(&name).unwrap_or_default(),
        );
        for (key, values) in denials.remove(&name).unwrap_or_default() {
            u.insert(key, Value::Array(values));
        }
        users.push(Value::Table(u));
    }
    if !users.is_empty() {
        doc.insert("users".into(), Value::Array(users));
    }
    // Rows for a user that does not exist would silently grant or deny nothing.
    for name in own_tables.keys() {
        bad.push((
            format!("user_tables ({name}, …)"),
            format!("no user `{name}` in users: add the user, or delete its rows"),
        ));
    }
    for name in denials.keys() {
        bad.push((
            format!("firewall_rules ({name}, …)"),
            format!("no user `{name}` in users: add the user, or delete its rows"),
        ));
    }
    for (row, why) in bad {
        doc.insert(format!("{BAD_ROW} {row}"), Value::String(why));
    }

    for row in rows(
        db,
        &format!("SELECT name, value FROM {prefix}settings ORDER BY name"),
    )? {
        let name = name_of(&row[0]);
        let v = parse_literal(&name_of(&row[1]));
        match name.split_once('.') {
            Some((section, key)) => {
                entry(&mut doc, section).insert(key.to_string(), v);
            }
            None => {
                doc.insert(name, v);
            }
        }
    }
    Ok(doc)
}

fn rows(db: &Connection, sql: &str) -> rusqlite::Result<Vec<Vec<Sql>>> {
    let mut stmt = db.prepare(sql)?;
    let n = stmt.column_count();
    let out = stmt
        .query_map([], |r| {
            (0..n)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        // Text that is not UTF-8 (a DBA's CAST of bytes) is read as
                        // well as it can be, never a failure.
                        ValueRef::Text(t) => Sql::Text(String::from_utf8_lossy(t).into_owned()),
                        other => Sql::from(other),
                    })
                })
                .collect()
        })?
        .collect();
    out
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

/// The table under `key`, made when missing (or when something else is there, which
/// validation will then report as missing fields).
fn entry<'a>(t: &'a mut Table, key: &str) -> &'a mut Table {
    let slot = t
        .entry(key.to_string())
        .or_insert_with(|| Value::Table(Table::new()));
    if !slot.is_table() {
        *slot = Value::Table(Table::new());
    }
    match slot {
        Value::Table(inner) => inner,
        _ => unreachable!("made a table above"),
    }
}

fn put(t: &mut Table, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        t.insert(key.to_string(), v);
    }
}

fn put_table(t: &mut Table, key: &str, inner: Table) {
    if !inner.is_empty() {
        t.insert(key.to_string(), Value::Table(inner));
    }
}

fn name_of(v: &Sql) -> String {
    match v {
        Sql::Null => String::new(),
        Sql::Integer(i) => i.to_string(),
        Sql::Real(f) => f.to_string(),
        Sql::Text(s) => s.clone(),
        Sql::Blob(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// A column's value in the layout; `integer`: the column holds a number, and text
/// that reads as one is taken as one.
fn value(v: &Sql, integer: bool) -> Option<Value> {
    match v {
        Sql::Null => None,
        Sql::Integer(i) if integer => Some(Value::Integer(*i)),
        Sql::Text(s) if integer => Some(
            s.trim()
                .parse::<i64>()
                .map_or_else(|_| Value::String(s.clone()), Value::Integer),
        ),
        Sql::Real(f) if integer => Some(Value::Float(*f)),
        other => Some(Value::String(name_of(other))),
    }
}

/// A flag column: 0 leaves the key out, as the config file would.
fn boolean(v: &Sql) -> Option<Value> {
    match v {
        Sql::Null | Sql::Integer(0) => None,
        Sql::Integer(1) => Some(Value::Boolean(true)),
        Sql::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
            "0" | "false" | "" => None,
            "1" | "true" => Some(Value::Boolean(true)),
            _ => Some(Value::String(s.clone())),
        },
        other => value(other, true),
    }
}

/// A comma-separated list column.
fn split(v: &Sql) -> Option<Value> {
    let text = match v {
        Sql::Null => return None,
        other => name_of(other),
    };
    let items: Vec<Value> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Value::String(s.to_string()))
        .collect();
    (!items.is_empty()).then_some(Value::Array(items))
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

#[cfg(test)]
mod tests;
