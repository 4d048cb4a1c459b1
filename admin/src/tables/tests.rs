use super::*;

#[test]
fn literals_read_back() {
    for v in [
        Value::String("month".into()),
        Value::String("2024-01-01".into()),
        Value::String("8".into()),
        Value::String("Europe/Berlin".into()),
        Value::String("a = 1\nb = 2".into()),
        Value::Integer(8),
        Value::Boolean(true),
        Value::Array(vec![Value::Integer(0), Value::Integer(100)]),
    ] {
        assert_eq!(parse_literal(&literal(&v)), v, "{v:?} as {}", literal(&v));
    }
    assert_eq!(
        parse_literal("2024-01-01"),
        Value::String("2024-01-01".into())
    );
}

#[test]
fn a_document_survives_the_tables() {
    let doc: Table = toml::from_str(
        r#"
        passthrough_node = "dn1"
        [[users]]
        name = "app"
        password = "pw"
        schemas = ["shop", "crm"]
        privileges = ["read"]
        require_tls = true
        require_where = true
        deny_digests = ["00000000000000ff"]
        deny_patterns = ["^drop ", "a,b"]
        [users.tables]
        "shop.a" = ["read", "write"]
        "crm.secret" = []
        [[users]]
        name = "ops"
        privileges = []
        [[users]]
        name = "plain"
        password = "x"
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
        tls_ca = "/etc/ca.pem"
        tls_server_name = "db2.internal"
        [rules.r]
        algorithm = "list"
        shards = 2
        values = { de = 0, "1.5" = 1 }
        case_insensitive = true
        [rules.d]
        algorithm = "date"
        start = "2024-01-01"
        unit = "month"
        [schemas.shop]
        node = "dn1"
        binding = [["a", "b"], ["c", "d"]]
        [schemas.shop.tables.a]
        kind = "sharded"
        column = "k"
        rule = "r"
        nodes = ["dn1", "dn2"]
        tables_per_node = 2
        global_id = { column = "id", generator = "snowflake", worker_id = 3 }
        [reads]
        causal_wait_ms = 50
        causal_reads = "global"
        "#,
    )
    .expect("toml");
    let db = Connection::open_in_memory().expect("sqlite");
    db.execute_batch(&ddl("")).expect("ddl");
    write(&db, "", &doc).expect("written");
    let mut expected = doc.clone();
    // Password "" is how an absent one reads back.
    if let Some(Value::Array(users)) = expected.get_mut("users") {
        if let Some(Value::Table(ops)) = users.get_mut(1) {
            ops.insert("password".into(), Value::String(String::new()));
        }
    }
    if let Some(n) = expected["nodes"]["dn2"].as_table().cloned() {
        let mut n = n;
        n.insert("password".into(), Value::String(String::new()));
        if let Some(Value::Table(nodes)) = expected.get_mut("nodes") {
            nodes.insert("dn2".into(), Value::Table(n));
        }
    }
    assert_eq!(read(&db, "").expect("read"), expected);
}

#[test]
fn rules_of_a_user_that_does_not_exist_are_named() {
    let db = Connection::open_in_memory().expect("sqlite");
    db.execute_batch(&ddl("")).expect("ddl");
    db.execute_batch(
        "INSERT INTO users (name) VALUES ('app');
         INSERT INTO user_tables VALUES ('app', 'shop.a', 'read');
         INSERT INTO user_tables VALUES ('ghost', 'shop.a', '');
         INSERT INTO firewall_rules VALUES ('app', 'regex', 'x');",
    )
    .expect("rows");
    let doc = read(&db, "").expect("read");
    assert_eq!(
        doc["users"][0]["tables"]["shop.a"],
        Value::Array(vec![Value::String("read".into())])
    );
    assert_eq!(
        doc.get(&format!("{BAD_ROW} firewall_rules (app, regex)")),
        Some(&Value::String(
            "kind `regex` is none: use digest or pattern".into()
        ))
    );
    assert_eq!(
        doc.get(&format!("{BAD_ROW} user_tables (ghost, …)")),
        Some(&Value::String(
            "no user `ghost` in users: add the user, or delete its rows".into()
        ))
    );
}
