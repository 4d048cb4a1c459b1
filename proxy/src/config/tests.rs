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
