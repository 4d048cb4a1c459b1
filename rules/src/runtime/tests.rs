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

/// An open-ended month rule from 2024-01: at 2024-03-15 with `ahead = 2` it has the
/// periods January to May, one table each, round robin over the nodes; a later month
/// is refused until the layout is built again later.
#[test]
fn open_ended_date_rules_grow_with_the_clock() {
    let text = r#"
        [nodes.dn1]
        primary = "127.0.0.1:3306"
        user = "u"
        [nodes.dn2]
        primary = "127.0.0.1:3316"
        user = "u"
        [rules.by_month]
        algorithm = "date"
        unit = "month"
        start = "2024-01-01"
        time_zone = "UTC"
        open_ended = true
        ahead = 2
        suffix_pattern = "yyyyMM"
        [schemas.app]
        node = "dn1"
        [schemas.app.tables.events]
        kind = "sharded"
        column = "at"
        rule = "by_month"
        nodes = ["dn1", "dn2"]
        "#;
    let mid_march_2024 = 1_710_460_800;
    let mut cfg = parse(text);
    cfg.materialize(mid_march_2024);
    let rt = Runtime::build(&cfg).expect("builds");
    let TableKind::Sharded(t) = &rt.schemas["app"].tables["events"].kind else {
        panic!("sharded");
    };
    let names: Vec<(&str, &str)> = t
        .shards
        .iter()
        .map(|l| (rt.nodes[l.node].name.as_str(), l.table.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("dn1", "events_202401"),
            ("dn2", "events_202402"),
            ("dn1", "events_202403"),
            ("dn2", "events_202404"),
            ("dn1", "events_202405"),
        ]
    );
    let may = crate::Value::text("2024-05-31 23:59:59");
    assert_eq!(t.algorithm.shard_of(&may), Ok(4));
    assert!(t
        .algorithm
        .shard_of(&crate::Value::text("2024-06-01"))
        .is_err());
    // Built again in June, June and the two months after it are in.
    let mut later = parse(text);
    later.materialize(mid_march_2024 + 90 * 86_400);
    let rt = Runtime::build(&later).expect("builds");
    let TableKind::Sharded(t) = &rt.schemas["app"].tables["events"].kind else {
        panic!("sharded");
    };
    assert_eq!(t.shards.len(), 8);
    assert_eq!(
        t.algorithm.shard_of(&crate::Value::text("2024-06-01")),
        Ok(5)
    );
    // What cannot go with open_ended.
    for (extra, key) in [
        ("shards = 12", "rules.by_month.shards"),
        ("end = \"2025-01-01\"", "rules.by_month.end"),
    ] {
        let bad = parse(&text.replace("open_ended = true", &format!("open_ended = true\n{extra}")));
        let e = Runtime::build(&bad).expect_err("refused");
        assert!(e.0.iter().any(|e| e.key == key), "{extra}: {e}");
    }
    for (from, to, key) in [
        (
            "suffix_pattern = \"yyyyMM\"",
            "suffix_pattern = \"yyyy\"",
            "rules.by_month.suffix_pattern",
        ),
        (
            "nodes = [\"dn1\", \"dn2\"]",
            "nodes = [\"dn1\", \"dn2\"]\nnaming = \"{table}_x\"",
            "schemas.app.tables.events.naming",
        ),
    ] {
        let bad = parse(&text.replace(from, to));
        let e = Runtime::build(&bad).expect_err("refused");
        assert!(e.0.iter().any(|e| e.key == key), "{to}: {e}");
    }
    let bad = parse(&text.replace(
        "nodes = [\"dn1\", \"dn2\"]",
        "nodes = [\"dn1\", \"dn2\"]\ntables_per_node = 2",
    ));
    let e = Runtime::build(&bad).expect_err("refused");
    assert!(
        e.0.iter()
            .any(|e| e.key == "schemas.app.tables.events.tables_per_node"),
        "{e}"
    );
}
