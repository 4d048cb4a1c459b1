//! The model as DBAs write it: a complete config builds into the expected placements,
//! and each kind of mistake is reported under its key.

use rules::preview::{integer_sample, preview};
use rules::{ClusterConfig, Runtime, TableKind, Value};

const EXAMPLE: &str = r#"
[nodes.dn1]
primary = "10.0.0.1:3306"
user = "shardgate"
[nodes.dn2]
primary = "10.0.1.1:3306"
user = "shardgate"

[rules.by_user]
algorithm = "hash_mod"
shards = 8

[rules.by_month]
algorithm = "date"
unit = "month"
start = "2024-01-01"
time_zone = "Europe/Berlin"
shards = 24
suffix_pattern = "yyyyMM"

[schemas.shop]
node = "dn1"
binding = [["orders", "order_items"]]

[schemas.shop.tables.orders]
kind = "sharded"
column = "user_id"
rule = "by_user"
nodes = ["dn1", "dn2"]
tables_per_node = 4
global_id = { column = "id", worker_id = 7 }

[schemas.shop.tables.order_items]
kind = "sharded"
column = "user_id"
rule = "by_user"
nodes = ["dn1", "dn2"]
tables_per_node = 4

[schemas.shop.tables.events]
kind = "sharded"
column = "created_at"
rule = "by_month"
nodes = ["dn1", "dn2"]
tables_per_node = 12
placement = "block"

[schemas.shop.tables.countries]
kind = "broadcast"

[schemas.shop.tables.audit_log]
kind = "single"
node = "dn2"
"#;

fn build(text: &str) -> Result<Runtime, Vec<(String, String)>> {
    let cfg: ClusterConfig = toml::from_str(text).unwrap();
    Runtime::build(&cfg).map_err(|e| e.0.into_iter().map(|e| (e.key, e.message)).collect())
}

#[test]
fn the_readme_example_builds() {
    let rt = build(EXAMPLE).unwrap();
    let shop = &rt.schemas["shop"];
    let TableKind::Sharded(orders) = &shop.tables["orders"].kind else {
        panic!()
    };
    assert_eq!(orders.shards.len(), 8);
    let where_ = |i: usize| {
        (
            rt.nodes[orders.shards[i].node].name.as_str(),
            orders.shards[i].table.as_str(),
        )
    };
    assert_eq!(where_(0), ("dn1", "orders_0000"));
    assert_eq!(where_(1), ("dn2", "orders_0001"));
    assert_eq!(where_(7), ("dn2", "orders_0007"));
    assert_eq!(orders.global_id.as_ref().unwrap().worker_id, 7);

    let TableKind::Sharded(events) = &shop.tables["events"].kind else {
        panic!()
    };
    assert_eq!(rt.nodes[events.shards[0].node].name, "dn1");
    assert_eq!(events.shards[0].table, "events_202401");
    assert_eq!(rt.nodes[events.shards[12].node].name, "dn2");
    assert_eq!(events.shards[23].table, "events_202512");
    let march = events
        .algorithm
        .shard_of(&Value::text("2024-03-09 10:00:00"))
        .unwrap();
    assert_eq!(events.shards[march as usize].table, "events_202403");

    assert!(
        matches!(shop.tables["countries"].kind, TableKind::Broadcast { ref nodes } if nodes.len() == 2)
    );
    assert!(matches!(
        shop.tables["audit_log"].kind,
        TableKind::Single { node: 1 }
    ));
    assert_eq!(
        shop.bindings,
        vec![vec!["orders".to_string(), "order_items".to_string()]]
    );
}

fn errors_for(edit: impl Fn(&str) -> String) -> Vec<(String, String)> {
    build(&edit(EXAMPLE)).unwrap_err()
}

fn has(errors: &[(String, String)], key: &str, text: &str) -> bool {
    errors.iter().any(|(k, m)| k == key && m.contains(text))
}

#[test]
fn mistakes_are_reported_under_their_keys() {
    let e = errors_for(|t| t.replacen("rule = \"by_user\"", "rule = \"by_usr\"", 1));
    assert!(
        has(
            &e,
            "schemas.shop.tables.orders.rule",
            "unknown rule `by_usr`"
        ),
        "{e:?}"
    );

    let e = errors_for(|t| t.replacen("tables_per_node = 4", "tables_per_node = 3", 1));
    assert!(
        has(
            &e,
            "schemas.shop.tables.orders.rule",
            "8 shards, but 2 nodes × 3 tables per node = 6"
        ),
        "{e:?}"
    );

    let e = errors_for(|t| t.replace("node = \"dn2\"", "node = \"dn9\""));
    assert!(
        has(
            &e,
            "schemas.shop.tables.audit_log.node",
            "unknown node `dn9`"
        ),
        "{e:?}"
    );

    let e = errors_for(|t| t.replace("time_zone = \"Europe/Berlin\"\n", ""));
    assert!(has(&e, "rules.by_month.time_zone", "required"), "{e:?}");

    let e = errors_for(|t| {
        t.replace(
            "time_zone = \"Europe/Berlin\"",
            "time_zone = \"Mars/Olympus\"",
        )
    });
    assert!(
        has(&e, "rules.by_month.time_zone", "unknown time zone"),
        "{e:?}"
    );

    let e = errors_for(|t| t.replace("start = \"2024-01-01\"", "start = \"2024-01-15\""));
    assert!(
        has(&e, "rules.by_month.start", "not the first day of a month"),
        "{e:?}"
    );

    let e = errors_for(|t| t.replacen("column = \"user_id\"\n", "", 1));
    assert!(
        has(
            &e,
            "schemas.shop.tables.orders.column",
            "need a shard column"
        ),
        "{e:?}"
    );

    let e = errors_for(|t| {
        t.replace(
            "tables_per_node = 4\nglobal_id",
            "tables_per_node = 4\nnaming = \"orders\"\nglobal_id",
        )
    });
    assert!(
        has(
            &e,
            "schemas.shop.tables.orders.naming",
            "names two shards `orders`"
        ),
        "{e:?}"
    );

    let e = errors_for(|t| {
        t.replace(
            "binding = [[\"orders\", \"order_items\"]]",
            "binding = [[\"orders\", \"events\"]]",
        )
    });
    assert!(has(&e, "schemas.shop.binding[0]", "same rule"), "{e:?}");

    let e = errors_for(|t| {
        t.replace(
            "binding = [[\"orders\", \"order_items\"]]",
            "binding = [[\"orders\", \"countries\"]]",
        )
    });
    assert!(has(&e, "schemas.shop.binding[0]", "not sharded"), "{e:?}");

    let e = errors_for(|t| {
        t.replace(
            "kind = \"broadcast\"",
            "kind = \"broadcast\"\ncolumn = \"id\"",
        )
    });
    assert!(
        has(
            &e,
            "schemas.shop.tables.countries.column",
            "not a setting of broadcast tables"
        ),
        "{e:?}"
    );

    let e = errors_for(|t| {
        t.replace(
            "[schemas.shop]",
            "[rules.r]\nalgorithm = \"range\"\nboundaries = [0, 100, 50]\n\n[schemas.shop]",
        )
    });
    assert!(
        has(&e, "rules.r.boundaries", "strictly increasing"),
        "{e:?}"
    );

    let e = errors_for(|t| {
        t.replace("[schemas.shop]", "[rules.l]\nalgorithm = \"list\"\nshards = 2\n[rules.l.values]\n\"1\" = 0\n\"01\" = 1\n\n[schemas.shop]")
    });
    assert!(has(&e, "rules.l.values.1", "same key"), "{e:?}");

    let e = errors_for(|t| {
        t.replace("[schemas.shop]", "[rules.w]\nalgorithm = \"date\"\nunit = \"day\"\nstart = \"2024-01-01\"\nend = \"2024-01-10\"\ntime_zone = \"UTC\"\nshards = 3\n\n[schemas.shop]")
    });
    assert!(
        has(&e, "rules.w.shards", "spans 10 days, so shards must be 10"),
        "{e:?}"
    );

    // Several mistakes at once are all reported.
    let e = errors_for(|t| {
        t.replacen("rule = \"by_user\"", "rule = \"nope\"", 1)
            .replace("node = \"dn2\"", "node = \"dn9\"")
    });
    assert!(e.len() >= 2, "{e:?}");
}

#[test]
fn unknown_keys_and_algorithms_are_refused() {
    let err =
        toml::from_str::<ClusterConfig>("[rules.r]\nalgorithm = \"mod\"\nshards = 2\nshardz = 3\n")
            .unwrap_err();
    assert!(err.to_string().contains("shardz"), "{err}");
    let err = toml::from_str::<ClusterConfig>("[rules.r]\nalgorithm = \"modulo\"\nshards = 2\n")
        .unwrap_err();
    assert!(err.to_string().contains("modulo"), "{err}");
}

#[test]
fn resharding_preview_counts_moving_keys() {
    let rule = |spec: &str| {
        toml::from_str::<rules::RuleConfig>(spec)
            .unwrap()
            .build("r")
            .unwrap()
    };
    let sample = integer_sample(0, 1_000_000, 20_000);
    let (m4, m8) = (
        rule("algorithm = \"mod\"\nshards = 4"),
        rule("algorithm = \"mod\"\nshards = 8"),
    );
    let p = preview(&m4, &m8, &sample, |s| s, |s| s);
    assert!((p.moved_fraction() - 0.5).abs() < 0.02, "{p:?}");
    let (j4, j5) = (
        rule("algorithm = \"jump\"\nshards = 4"),
        rule("algorithm = \"jump\"\nshards = 5"),
    );
    let p = preview(&j4, &j5, &sample, |s| s, |s| s);
    assert!(
        (p.moved_fraction() - 0.2).abs() < 0.02,
        "jump moves only 1/5: {p:?}"
    );
    let p = preview(&j4, &j4, &sample, |s| s, |s| s);
    assert_eq!(p.moved, 0);
    let r = rule("algorithm = \"range\"\nboundaries = [0, 500000]");
    let p = preview(&m4, &r, &sample, |s| s, |s| s);
    assert!(p.unplaceable > 0, "values past the last boundary: {p:?}");
}
