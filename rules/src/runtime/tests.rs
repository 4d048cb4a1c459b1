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
