//! Two layouts compared key by key (`SHOW CONFIG DIFF`), and where a config key lives
//! among the staged tables (so a validation error points at the row to fix).

use std::collections::BTreeMap;

use toml::{Table, Value};

use crate::tables::literal;

/// One difference: the key, and its value on each side (`None`: absent there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: String,
    pub runtime: Option<String>,
    pub staged: Option<String>,
}

/// What differs from `runtime` to `staged`. Passwords show as `(set)`, never as text.
pub fn diff(runtime: &Table, staged: &Table) -> Vec<Change> {
    let (a, b) = (flatten(runtime), flatten(staged));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let shown = |v: Option<&String>| {
                v.map(|v| {
                    if k.ends_with(".password") {
                        if v.is_empty() { "(empty)" } else { "(set)" }.to_string()
                    } else {
                        v.clone()
                    }
                })
            };
            let (runtime, mut staged) = (shown(a.get(k)), shown(b.get(k)));
            if k.ends_with(".password") && runtime.is_some() && runtime == staged {
                staged = Some("(changed)".into());
            }
            Change {
                key: k.clone(),
                runtime,
                staged,
            }
        })
        .collect()
}

/// Dotted key → value text. Users are keyed by name, not by position.
fn flatten(doc: &Table) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in doc {
        match (k.as_str(), v) {
            ("users", Value::Array(users)) => {
                for (i, u) in users.iter().enumerate() {
                    let name = u
                        .get("name")
                        .and_then(Value::as_str)
                        .map_or_else(|| format!("#{i}"), String::from);
                    walk(&format!("users.{name}"), u, &mut out);
                }
            }
            _ => walk(k, v, &mut out),
        }
    }
    out
}

fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Table(t) => {
            for (k, v) in t {
                walk(&format!("{prefix}.{k}"), v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), literal(other));
        }
    }
}

/// `staged` with what changed from `old` to `new` outside the admin port (a followed
/// promotion, a reload, new date periods) carried over, entry by entry (a node, a
/// rule, a schema, a user, a setting), where the staged entry is still the old one.
/// Returns the entries both sides changed: left as staged, listed for the DBA.
pub fn rebase(staged: &Table, old: &Table, new: &Table) -> (Table, Vec<String>) {
    let mut out = staged.clone();
    let mut conflicts = Vec::new();
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (o, n) = (old.get(key), new.get(key));
        if o == n {
            continue;
        }
        match (key.as_str(), o, n) {
            // Tables of entries: a node, a rule, a schema, a setting.
            ("nodes" | "rules" | "schemas" | "reads" | "transactions", _, _) => {
                let table =
                    |v: Option<&Value>| v.and_then(Value::as_table).cloned().unwrap_or_default();
                let (ot, nt) = (table(o), table(n));
                let mut st = table(staged.get(key));
                let mut names: Vec<&String> = ot.keys().chain(nt.keys()).collect();
                names.sort();
                names.dedup();
                for name in names {
                    let (oe, ne) = (ot.get(name), nt.get(name));
                    if oe == ne {
                        continue;
                    }
                    if st.get(name) == oe {
                        match ne {
                            Some(v) => st.insert(name.clone(), v.clone()),
                            None => st.remove(name),
                        };
                    } else if st.get(name) != ne {
                        conflicts.push(format!("{key}.{name}"));
                    }
                }
                out.insert(key.clone(), Value::Table(st));
            }
            ("users", _, _) => {
                let list =
                    |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
                let by_name = |users: &[Value], name: &str| {
                    users
                        .iter()
                        .find(|u| u.get("name").and_then(Value::as_str) == Some(name))
                        .cloned()
                };
                let (ou, nu) = (list(o), list(n));
                let mut su = list(staged.get(key));
                let mut names: Vec<String> = ou
                    .iter()
                    .chain(nu.iter())
                    .filter_map(|u| u.get("name").and_then(Value::as_str).map(String::from))
                    .collect();
                names.sort();
                names.dedup();
                for name in names {
                    let (oe, ne) = (by_name(&ou, &name), by_name(&nu, &name));
                    if oe == ne {
                        continue;
                    }
                    let se = by_name(&su, &name);
                    if se == oe {
                        su.retain(|u| u.get("name").and_then(Value::as_str) != Some(name.as_str()));
                        if let Some(v) = ne {
                            su.push(v);
                        }
                    } else if se != ne {
                        conflicts.push(format!("users.{name}"));
                    }
                }
                out.insert(key.clone(), Value::Array(su));
            }
            _ => {
                if staged.get(key) == o {
                    match n {
                        Some(v) => out.insert(key.clone(), v.clone()),
                        None => out.remove(key),
                    };
                } else if staged.get(key) != n {
                    conflicts.push(key.clone());
                }
            }
        }
    }
    (out, conflicts)
}

/// The staged row and column that hold config key `key` (`schemas.shop.tables.t.rule`
/// → `tables (shop, t): rule`).
pub fn staged_place(key: &str, doc: &Table) -> String {
    let parts: Vec<&str> = key.split('.').collect();
    let column = |c: &str| -> String {
        match c {
            "primary" => "primary_address".into(),
            "database" => "database_name".into(),
            "column" => "shard_column".into(),
            "global_id" => "global_id_*".into(),
            other => other.split('[').next().unwrap_or(other).to_string(),
        }
    };
    match parts.as_slice() {
        ["nodes", n, "replicas", ..] => format!("replicas ({n})"),
        ["nodes", n, c, ..] => format!("nodes ({n}): {}", column(c)),
        ["nodes", n] => format!("nodes ({n})"),
        ["rules", r, "algorithm"] | ["rules", r] => format!("rules ({r})"),
        ["rules", r, ..] => format!("rule_properties ({r}, {})", parts[2..].join(".")),
        ["schemas", s, "tables", t, c, ..] => format!("tables ({s}, {t}): {}", column(c)),
        ["schemas", s, "tables", t] => format!("tables ({s}, {t})"),
        ["schemas", s, c, ..] if c.starts_with("binding") => format!("binding_groups ({s})"),
        ["schemas", s, c, ..] => format!("schemas ({s}): {}", column(c)),
        ["schemas", s] => format!("schemas ({s})"),
        [u, rest @ ..] if u.starts_with("users") => {
            let index = u
                .trim_start_matches("users[")
                .trim_end_matches(']')
                .parse::<usize>()
                .ok();
            let name = index.and_then(|i| {
                doc.get("users")?
                    .as_array()?
                    .get(i)?
                    .get("name")?
                    .as_str()
                    .map(String::from)
            });
            match (name, rest.first()) {
                (Some(n), Some(c)) => format!("users ({n}): {}", column(c)),
                (Some(n), None) => format!("users ({n})"),
                _ => "users".into(),
            }
        }
        ["reads" | "transactions", ..] | ["passthrough_node"] => format!("settings ({key})"),
        _ => key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_by_key_with_passwords_hidden() {
        let a: Table = toml::from_str(
            "[[users]]\nname = \"app\"\npassword = \"old\"\n[rules.r]\nalgorithm = \"mod\"\nshards = 2\n",
        )
        .expect("toml");
        let b: Table = toml::from_str(
            "[[users]]\nname = \"app\"\npassword = \"new\"\n[rules.r]\nalgorithm = \"mod\"\nshards = 4\n[rules.s]\nalgorithm = \"mod\"\nshards = 1\n",
        )
        .expect("toml");
        let d = diff(&a, &b);
        let keys: Vec<&str> = d.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "rules.r.shards",
                "rules.s.algorithm",
                "rules.s.shards",
                "users.app.password"
            ]
        );
        assert_eq!(d[0].runtime.as_deref(), Some("2"));
        assert_eq!(d[0].staged.as_deref(), Some("4"));
        assert_eq!(d[1].runtime, None);
        assert_eq!(d[3].staged.as_deref(), Some("(changed)"));
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn outside_changes_carry_over_to_untouched_entries() {
        let old: Table = toml::from_str(
            "[nodes.dn1]\nprimary = \"a:1\"\n[nodes.dn2]\nprimary = \"b:1\"\n[reads]\ncausal_wait_ms = 5\n",
        )
        .expect("toml");
        // A promotion on dn1 and dn2, outside the admin port.
        let new: Table = toml::from_str(
            "[nodes.dn1]\nprimary = \"a:2\"\n[nodes.dn2]\nprimary = \"b:2\"\n[reads]\ncausal_wait_ms = 5\n",
        )
        .expect("toml");
        // The DBA staged a change of dn2 and of reads.
        let staged: Table = toml::from_str(
            "[nodes.dn1]\nprimary = \"a:1\"\n[nodes.dn2]\nprimary = \"b:9\"\n[reads]\ncausal_wait_ms = 7\n",
        )
        .expect("toml");
        let (rebased, conflicts) = rebase(&staged, &old, &new);
        assert_eq!(
            rebased["nodes"]["dn1"]["primary"].as_str(),
            Some("a:2"),
            "followed"
        );
        assert_eq!(
            rebased["nodes"]["dn2"]["primary"].as_str(),
            Some("b:9"),
            "the DBA's edit stays"
        );
        assert_eq!(rebased["reads"]["causal_wait_ms"].as_integer(), Some(7));
        assert_eq!(conflicts, ["nodes.dn2"]);
    }

    #[test]
    fn keys_point_at_rows() {
        let doc: Table = toml::from_str("[[users]]\nname = \"app\"\n").expect("toml");
        assert_eq!(
            staged_place("schemas.shop.tables.t.column", &doc),
            "tables (shop, t): shard_column"
        );
        assert_eq!(
            staged_place("nodes.dn1.primary", &doc),
            "nodes (dn1): primary_address"
        );
        assert_eq!(
            staged_place("rules.r.shards", &doc),
            "rule_properties (r, shards)"
        );
        assert_eq!(
            staged_place("users[0].schemas", &doc),
            "users (app): schemas"
        );
        assert_eq!(
            staged_place("reads.causal_wait_ms", &doc),
            "settings (reads.causal_wait_ms)"
        );
    }
}
