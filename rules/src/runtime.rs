//! The validated, immutable form of a [`ClusterConfig`] that statements are planned
//! against. Built once per config change and shared behind an `Arc`; never mutated.

use std::collections::BTreeMap;

use crate::config::ClusterConfig;
use crate::endpoint::Endpoint;
use crate::error::{ConfigError, ConfigErrors};

/// Index of a data node in [`Runtime::nodes`].
pub type NodeId = usize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub endpoint: Endpoint,
    /// Share of reads, relative to the other replicas of the node (≥ 1).
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataNode {
    pub name: String,
    pub primary: Endpoint,
    pub replicas: Vec<Replica>,
    pub user: String,
    pub password: String,
    pub database: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalSchema {
    pub name: String,
    pub node: NodeId,
    /// The database name on the node.
    pub database: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    pub nodes: Vec<DataNode>,
    pub schemas: BTreeMap<String, LogicalSchema>,
    pub passthrough: Option<NodeId>,
}

/// Where statements of a session with a given current database run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement<'a> {
    pub node: NodeId,
    /// Physical database on the node, `None` when the session has none selected.
    pub database: Option<&'a str>,
}

impl Runtime {
    /// Validates `config`, returning every problem found rather than the first.
    pub fn build(config: &ClusterConfig) -> Result<Runtime, ConfigErrors> {
        let mut errors = Vec::new();
        let mut nodes = Vec::new();
        let mut node_ids = BTreeMap::new();

        if config.nodes.is_empty() {
            errors.push(ConfigError::new(
                "nodes",
                "no data nodes defined; add at least one [nodes.NAME] with a primary",
            ));
        }
        for (name, node) in &config.nodes {
            let key = format!("nodes.{name}");
            check_name(&key, name, &mut errors);
            let primary = Endpoint::parse(&node.primary).unwrap_or_else(|e| {
                errors.push(ConfigError::new(format!("{key}.primary"), e));
                placeholder()
            });
            let mut replicas = Vec::new();
            for (i, r) in node.replicas.iter().enumerate() {
                let rkey = format!("{key}.replicas[{i}]");
                match Endpoint::parse(r.address()) {
                    Ok(endpoint) => {
                        if endpoint == primary {
                            errors.push(ConfigError::new(
                                &rkey,
                                format!("{endpoint} is also the primary of this node"),
                            ));
                        }
                        if replicas.iter().any(|x: &Replica| x.endpoint == endpoint) {
                            errors.push(ConfigError::new(
                                &rkey,
                                format!("{endpoint} is listed twice"),
                            ));
                        }
                        if r.weight() == 0 {
                            errors.push(ConfigError::new(
                                format!("{rkey}.weight"),
                                "weight must be at least 1; remove the replica to stop reads on it",
                            ));
                        }
                        replicas.push(Replica {
                            endpoint,
                            weight: r.weight(),
                        });
                    }
                    Err(e) => errors.push(ConfigError::new(rkey, e)),
                }
            }
            if node.user.is_empty() {
                errors.push(ConfigError::new(format!("{key}.user"), "must not be empty"));
            }
            if let Some(db) = &node.database {
                check_name(&format!("{key}.database"), db, &mut errors);
            }
            node_ids.insert(name.clone(), nodes.len());
            nodes.push(DataNode {
                name: name.clone(),
                primary,
                replicas,
                user: node.user.clone(),
                password: node.password.clone(),
                database: node.database.clone(),
            });
        }

        let mut schemas = BTreeMap::new();
        for (name, schema) in &config.schemas {
            let key = format!("schemas.{name}");
            check_name(&key, name, &mut errors);
            match node_ids.get(&schema.node) {
                Some(&id) => {
                    let database = nodes[id].database.clone().unwrap_or_else(|| name.clone());
                    schemas.insert(
                        name.clone(),
                        LogicalSchema {
                            name: name.clone(),
                            node: id,
                            database,
                        },
                    );
                }
                None => errors.push(unknown_node(format!("{key}.node"), &schema.node, &node_ids)),
            }
        }

        let passthrough = match &config.passthrough_node {
            None => None,
            Some(n) => match node_ids.get(n) {
                Some(&id) => Some(id),
                None => {
                    errors.push(unknown_node("passthrough_node".into(), n, &node_ids));
                    None
                }
            },
        };
        if schemas.is_empty() && passthrough.is_none() && !config.nodes.is_empty() {
            errors.push(ConfigError::new(
                "schemas",
                "no logical schemas and no passthrough_node: clients could reach no database",
            ));
        }

        if errors.is_empty() {
            Ok(Runtime {
                nodes,
                schemas,
                passthrough,
            })
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Where a session whose current database is `db` runs its statements, or `None`
    /// when `db` is neither a logical schema nor reachable through the passthrough node.
    pub fn placement<'a>(&'a self, db: Option<&'a str>) -> Option<Placement<'a>> {
        match db {
            Some(db) => match self.schemas.get(db) {
                Some(s) => Some(Placement {
                    node: s.node,
                    database: Some(&s.database),
                }),
                None => self.passthrough.map(|node| Placement {
                    node,
                    database: Some(db),
                }),
            },
            None => Some(Placement {
                node: self.default_node(),
                database: None,
            }),
        }
    }

    /// The node that runs statements which name no database (e.g. `SELECT 1`).
    pub fn default_node(&self) -> NodeId {
        self.passthrough
            .or_else(|| self.schemas.values().next().map(|s| s.node))
            .unwrap_or(0)
    }

    /// True when `db` names a database clients may use.
    pub fn is_known_database(&self, db: &str) -> bool {
        self.schemas.contains_key(db)
    }
}

fn placeholder() -> Endpoint {
    Endpoint {
        host: String::new(),
        port: 0,
    }
}

fn check_name(key: &str, name: &str, errors: &mut Vec<ConfigError>) {
    if name.is_empty() || name.len() > 64 || name.contains(['`', '/', '\\', '.', '\0']) {
        errors.push(ConfigError::new(
            key,
            format!(
                "`{name}` is not a usable name (1-64 characters, no backtick, slash, dot or NUL)"
            ),
        ));
    }
}

fn unknown_node(key: String, name: &str, known: &BTreeMap<String, NodeId>) -> ConfigError {
    let names: Vec<&str> = known.keys().map(String::as_str).collect();
    ConfigError::new(
        key,
        format!("unknown node `{name}`; defined nodes: {}", names.join(", ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ClusterConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn builds_a_two_node_runtime() {
        let rt = Runtime::build(&parse(
            r#"
            [nodes.dn1]
            primary = "127.0.0.1:3306"
            replicas = ["127.0.0.1:3307"]
            user = "u"
            database = "app_0"
            [nodes.dn2]
            primary = "127.0.0.1:3316"
            user = "u"
            [schemas.app]
            node = "dn1"
            [schemas.crm]
            node = "dn2"
            "#,
        ))
        .unwrap();
        let app = rt.placement(Some("app")).unwrap();
        assert_eq!(
            (rt.nodes[app.node].name.as_str(), app.database),
            ("dn1", Some("app_0"))
        );
        let crm = rt.placement(Some("crm")).unwrap();
        assert_eq!(
            (rt.nodes[crm.node].name.as_str(), crm.database),
            ("dn2", Some("crm"))
        );
        assert!(rt.placement(Some("other")).is_none());
    }

    #[test]
    fn passthrough_keeps_database_names() {
        let rt = Runtime::build(&parse(
            r#"
            passthrough_node = "dn1"
            [nodes.dn1]
            primary = "127.0.0.1:3306"
            user = "u"
            "#,
        ))
        .unwrap();
        assert_eq!(
            rt.placement(Some("anything")).unwrap().database,
            Some("anything")
        );
    }

    #[test]
    fn collects_every_error_with_its_key() {
        let err = Runtime::build(&parse(
            r#"
            [nodes.dn1]
            primary = "127.0.0.1:0"
            replicas = [{ address = "127.0.0.1:3307", weight = 0 }, "127.0.0.1:3307"]
            user = ""
            [schemas.app]
            node = "dn9"
            "#,
        ))
        .unwrap_err();
        let keys: Vec<&str> = err.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "nodes.dn1.primary",
                "nodes.dn1.replicas[0].weight",
                "nodes.dn1.replicas[1]",
                "nodes.dn1.user",
                "schemas.app.node",
                "schemas",
            ]
        );
        assert!(err
            .to_string()
            .contains("unknown node `dn9`; defined nodes: dn1"));
    }
}
