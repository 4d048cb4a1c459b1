use super::*;

#[test]
fn passthrough_builds() {
    let c = Config::passthrough(
        "127.0.0.1:0",
        "127.0.0.1:3306",
        &["127.0.0.1:3307".into()],
        "ro\"ot",
        "p\\w",
    )
    .unwrap();
    assert_eq!(c.layout.users[0].name, "ro\"ot");
    assert_eq!(c.layout.runtime.nodes[0].password, "p\\w");
    assert_eq!(c.layout.runtime.nodes[0].replicas.len(), 1);
    assert!(c.layout.runtime.passthrough.is_some());
}

#[test]
fn config_errors_never_quote_a_password() {
    let base = "[[users]]\nname = \"bob\"\n";
    for line in [
        "password = B0bSecret\n",
        "password = \"N0deS3cret\n",
        "password = 12345678\n",
    ] {
        let err = Config::from_toml(&format!("{base}{line}"), "my.toml")
            .unwrap_err()
            .to_string();
        for secret in ["B0bSecret", "N0deS3cret", "12345678"] {
            assert!(!err.contains(secret), "{line:?} gave {err}");
        }
        assert!(err.contains("line 3"), "{err}");
    }
}

/// A port written in the file is asked for, even when it is the default: taken,
/// it stops shardgate; unset, the default only warns.
#[test]
fn ports_set_to_their_defaults_are_asked_for() {
    let base = "[[users]]\nname = \"u\"\n[nodes.dn1]\nprimary = \"127.0.0.1:1\"\nuser = \"u\"\n\
                [schemas.s]\nnode = \"dn1\"\n";
    let plain = Config::from_toml(base, "t").expect("valid");
    assert!(!plain.settings.http_listen_asked && !plain.settings.admin_listen_asked);
    let set = Config::from_toml(
        &format!("{base}[admin]\nlisten = \"{DEFAULT_ADMIN_LISTEN}\"\nhttp_listen = \"{DEFAULT_HTTP_LISTEN}\"\n"),
        "t",
    )
    .expect("valid");
    assert!(set.settings.http_listen_asked && set.settings.admin_listen_asked);
}

#[test]
fn errors_name_file_and_key() {
    let err = Config::from_toml("[server]\nlisten = \"nope\"\n", "my.toml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("my.toml: invalid configuration"), "{err}");
    assert!(err.contains("server.listen"), "{err}");
    assert!(err.contains("users: no users"), "{err}");
    let err = Config::from_toml("[server]\nlisten_addr = \"x\"\n", "my.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("my.toml") && err.contains("listen_addr"),
        "{err}"
    );
}

#[test]
fn rights_per_table_and_firewall_rules_are_checked_by_key() {
    let base =
        "[nodes.dn1]\nprimary = \"127.0.0.1:1\"\nuser = \"u\"\n[schemas.s]\nnode = \"dn1\"\n\
                [schemas.s2]\nnode = \"dn1\"\n";
    let user = |rules: &str| format!("[[users]]\nname = \"u\"\n{rules}\n{base}");
    let good = user(
        "deny_digests = [\"00ff00ff00ff00ff\"]\ndeny_patterns = [\"^drop \"]\n\
         [users.tables]\n\"s.t\" = [\"read\"]\n\"s.hidden\" = []\n",
    );
    let c = Config::from_toml(&good, "t").expect("valid");
    let rules = &c.layout.users[0].rules;
    assert_eq!(
        rules.table("S", "T"),
        Some(&[router::privilege::Need::Read][..])
    );
    assert_eq!(rules.table("s", "hidden"), Some(&[][..]));
    assert_eq!(rules.table("s", "other"), None);
    assert!(rules.denial(0x00ff00ff00ff00ff, "select ?").is_some());
    assert!(rules.denial(1, "drop table x").is_some());
    assert!(rules.denial(1, "select ?").is_none());
    for (rules, key) in [
        (
            "[users.tables]\n\"t\" = [\"read\"]\n",
            "users[0].tables.\"t\"",
        ),
        (
            "[users.tables]\n\"nope.t\" = [\"read\"]\n",
            "users[0].tables.\"nope.t\"",
        ),
        (
            "[users.tables]\n\"s.t\" = [\"admin\"]\n",
            "users[0].tables.\"s.t\"",
        ),
        ("deny_digests = [\"12\"]\n", "users[0].deny_digests[0]"),
        (
            "deny_patterns = [\"a\", \"(\"]\n",
            "users[0].deny_patterns[1]",
        ),
        (
            "deny_patterns = [\"a\", \"a\"]\n",
            "users[0].deny_patterns[1]",
        ),
        (
            "deny_digests = [\"00000000000000aa\", \"00000000000000AA\"]\n",
            "users[0].deny_digests[1]",
        ),
        (
            "[users.tables]\n\"s.t\" = []\n\"S.T\" = []\n",
            "given twice",
        ),
        (
            "schemas = [\"s\"]\n[users.tables]\n\"s2.t\" = []\n",
            "may not use schema `s2`",
        ),
    ] {
        let err = Config::from_toml(&user(rules), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{rules}: {err}");
    }
}
