//! The layout read back from the tables: each row into its key of the layout's TOML
//! form, loosely (a wrong value is left for validation, which names its key).

use std::collections::BTreeMap;

use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::Connection;
use toml::{Table, Value};

use super::{parse_literal, BAD_ROW};

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
