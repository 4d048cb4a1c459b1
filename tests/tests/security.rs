//! Who may log in, how often, and what the logs give away: hashed front-end
//! passwords, backend passwords from the environment or a file, per-user connection
//! limits, delays and blocking after failed logins, and passwords never written to
//! the log or the statement views.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::Conn;
use tests::{
    as_user, error_code, login, refused_config, shardgate_bin, works, Proxy, Sandbox, PASSWORD,
    USER,
};

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[0]).expect("start the MariaDB sandbox"))
}

/// The node section for the sandbox's primary; `login` replaces `password = …`.
fn node(login: &str) -> String {
    format!(
        "[nodes.dn1]\nprimary = \"{}\"\nuser = \"{USER}\"\n{login}\n",
        sandbox().groups[0].primary.address()
    )
}

fn backend_password() -> String {
    format!("password = \"{PASSWORD}\"")
}

/// What `shardgate hash-password` prints for `password`: the config lines.
fn hash_lines(password: &str) -> (String, String) {
    let mut child = Command::new(shardgate_bin())
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run shardgate hash-password");
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines().map(str::to_string);
    (lines.next().unwrap(), lines.next().unwrap())
}

/// Logs in, retrying while a place just given back is still being released.
async fn retry_login(p: &Proxy, user: &str) -> Conn {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match login(p, user, "pw").await {
            Ok(c) => return c,
            Err(e) if Instant::now() < until => {
                assert_eq!(error_code(&e), Some(1226), "{e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{user}: {e}"),
        }
    }
}

#[tokio::test]
async fn hashed_passwords_log_in_with_either_plugin_and_nothing_else() {
    let (native, sha2) = hash_lines("Hashed-Pw-1");
    let p = Proxy::with_config(&format!(
        "passthrough_node = \"dn1\"\n[[users]]\nname = \"both\"\n{native}\n{sha2}\nschemas = [\"*\"]\n\
         [[users]]\nname = \"native_only\"\n{native}\nschemas = [\"*\"]\n\
         [[users]]\nname = \"sha2_only\"\n{sha2}\nschemas = [\"*\"]\n{}",
        node(&backend_password())
    ));
    for user in ["both", "native_only", "sha2_only"] {
        let mut c = login(&p, user, "Hashed-Pw-1")
            .await
            .unwrap_or_else(|e| panic!("{user}: {e}"));
        works(&mut c).await;
        let e = login(&p, user, "hashed-pw-1").await.unwrap_err();
        assert_eq!(error_code(&e), Some(1045), "{user}: {e}");
        // COM_CHANGE_USER checks the same hash.
        c.change_user(as_user("sha2_only", "Hashed-Pw-1"))
            .await
            .unwrap_or_else(|e| panic!("change from {user}: {e}"));
        works(&mut c).await;
    }
    // The mysql command-line client (mysql_native_password).
    let out = Command::new("mysql")
        .args([
            "-h127.0.0.1",
            &format!("-P{}", p.port),
            "-unative_only",
            "-pHashed-Pw-1",
        ])
        .args(["-N", "-e", "SELECT 'cli ok'"])
        .output()
        .expect("run the mysql client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "cli ok");
}

#[tokio::test]
async fn a_malformed_hash_or_a_password_given_twice_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (user, said) in [
        ("password_native_hash = \"*12AB\"", "`*` and 40 hex digits"),
        ("password_sha2_hash = \"xyz\"", "64 hex digits"),
        (
            "password = \"x\"\npassword_native_hash = \"*14E65567ABDB5135D0CFD9A70B3032C179A49EE7\"",
            "not both",
        ),
    ] {
        let body = format!(
            "passthrough_node = \"dn1\"\n[[users]]\nname = \"app\"\n{user}\n{}",
            node(&backend_password())
        );
        let err = refused_config(dir.path(), &body);
        assert!(err.contains("users[0]") && err.contains(said), "{err}");
    }
}

#[tokio::test]
async fn backend_passwords_come_from_the_environment_or_a_file() {
    let user = "passthrough_node = \"dn1\"\n[[users]]\nname = \"app\"\npassword = \"pw\"\nschemas = [\"*\"]\n";
    let p = Proxy::with_config_env(
        &format!("{user}{}", node("password_env = \"SG_TEST_BACKEND_PW\"")),
        &[("SG_TEST_BACKEND_PW", PASSWORD)],
    );
    works(&mut login(&p, "app", "pw").await.unwrap()).await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backend.secret");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let p = Proxy::with_config(&format!(
        "{user}{}",
        node(&format!("password_file = \"{}\"", file.display()))
    ));
    works(&mut login(&p, "app", "pw").await.unwrap()).await;

    // Unset, unreadable or doubly given: refused with the key named.
    for (login_line, said) in [
        ("password_env = \"SG_TEST_UNSET_VARIABLE\"", "is not set"),
        ("password_file = \"/nonexistent/secret\"", "cannot read"),
        (
            &*format!("{}\npassword_env = \"HOME\"", backend_password()),
            "only one",
        ),
    ] {
        let err = refused_config(dir.path(), &format!("{user}{}", node(login_line)));
        assert!(
            err.contains("nodes.dn1.password") && err.contains(said),
            "{err}"
        );
        assert!(!err.contains(PASSWORD), "{err}");
    }
}

#[tokio::test]
async fn each_user_keeps_to_its_connection_limit() {
    let p = Proxy::with_config(&format!(
        "passthrough_node = \"dn1\"\n[[users]]\nname = \"capped\"\npassword = \"pw\"\nschemas = [\"*\"]\nmax_user_connections = 2\n\
         [[users]]\nname = \"default\"\npassword = \"pw\"\nschemas = [\"*\"]\n\
         [[users]]\nname = \"free\"\npassword = \"pw\"\nschemas = [\"*\"]\nmax_user_connections = 0\n\
         {}[server]\nmax_user_connections = 3\n",
        node(&backend_password())
    ));
    let a = login(&p, "capped", "pw").await.unwrap();
    let mut b = login(&p, "capped", "pw").await.unwrap();
    let e = login(&p, "capped", "pw").await.unwrap_err();
    assert_eq!(error_code(&e), Some(1226), "{e}");
    assert!(e.to_string().contains("max_user_connections"), "{e}");
    // Another user is not held by this one's limit; the server-wide one applies.
    let mut defaults = Vec::new();
    for _ in 0..3 {
        defaults.push(login(&p, "default", "pw").await.unwrap());
    }
    let e = login(&p, "default", "pw").await.unwrap_err();
    assert_eq!(error_code(&e), Some(1226), "{e}");
    let mut free = Vec::new();
    for _ in 0..5 {
        free.push(login(&p, "free", "pw").await.unwrap());
    }
    // A place given back is usable again (once shardgate has seen the client go).
    a.disconnect().await.unwrap();
    let mut c = retry_login(&p, "capped").await;
    works(&mut c).await;
    // Changing to a user at its limit fails (and closes, as MySQL does); changing to
    // the same user keeps the one place.
    b.change_user(as_user("capped", "pw")).await.unwrap();
    works(&mut b).await;
    let mut d = free.pop().unwrap();
    let e = d.change_user(as_user("capped", "pw")).await.unwrap_err();
    assert_eq!(error_code(&e), Some(1226), "{e}");
    works(&mut defaults[0]).await;
}

/// `SHOW HOSTS` on the data port: (address, user or "", failures, blocked).
async fn hosts(admin: &mut Conn) -> Vec<(String, String, String, String)> {
    let rows: Vec<mysql_async::Row> = admin.query("SHOW HOSTS").await.unwrap();
    rows.into_iter()
        .filter(|r| r.get::<String, _>(0).as_deref() == Some("data"))
        .map(|r| {
            let get = |i| r.get::<Option<String>, _>(i).flatten().unwrap_or_default();
            (get(1), get(2), get(3), get(4))
        })
        .collect()
}

#[tokio::test]
async fn failed_logins_delay_then_block_the_address_until_flush_hosts() {
    let p = Proxy::with_config(&format!(
        "passthrough_node = \"dn1\"\n[[users]]\nname = \"app\"\npassword = \"pw\"\nschemas = [\"*\"]\n{}\
         [admin]\nlisten = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\n\
         [[admin.users]]\nname = \"dba\"\npassword = \"dba-pw\"\n\
         [server]\nmax_connect_errors = 4\nlogin_delay_after = 2\nlogin_delay_ms = 300\nlogin_delay_max_ms = 1000\n",
        node(&backend_password())
    ));
    let mut admin = Conn::new(p.admin_opts("dba", "dba-pw")).await.unwrap();
    // Two failures, then a good login: it waits, and clears the counts.
    for _ in 0..2 {
        login(&p, "app", "wrong").await.unwrap_err();
    }
    let started = Instant::now();
    works(&mut login(&p, "app", "pw").await.unwrap()).await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the third attempt waits"
    );
    assert_eq!(hosts(&mut admin).await, []);

    let mut waits = Vec::new();
    for _ in 0..4 {
        let started = Instant::now();
        let e = login(&p, "app", "wrong").await.unwrap_err();
        assert_eq!(error_code(&e), Some(1045), "{e}");
        waits.push(started.elapsed());
    }
    assert!(waits[2] >= Duration::from_millis(300), "{waits:?}");
    assert!(waits[3] >= Duration::from_millis(600), "{waits:?}");
    // Four in a row: blocked, even with the right password.
    let e = login(&p, "app", "pw").await.unwrap_err();
    assert_eq!(error_code(&e), Some(1129), "{e}");
    assert!(e.to_string().contains("FLUSH HOSTS"), "{e}");
    let ip = "127.0.0.1".to_string();
    assert_eq!(
        hosts(&mut admin).await,
        [
            (ip.clone(), String::new(), "4".into(), "yes".into()),
            (ip.clone(), "app".into(), "4".into(), "no".into()),
        ]
    );
    admin.query_drop("FLUSH HOSTS").await.unwrap();
    works(&mut login(&p, "app", "pw").await.unwrap()).await;

    // The admin port delays but never blocks: FLUSH HOSTS is run there.
    for _ in 0..5 {
        let e = Conn::new(p.admin_opts("dba", "nope")).await.unwrap_err();
        assert_eq!(error_code(&e), Some(1045), "{e}");
    }
    let mut again = Conn::new(p.admin_opts("dba", "dba-pw")).await.unwrap();
    again.query_drop("FLUSH HOSTS").await.unwrap();
    // Nor do its failures count against the data port.
    works(&mut login(&p, "app", "pw").await.unwrap()).await;
}

#[tokio::test]
async fn passwords_never_reach_the_log_or_the_statement_views() {
    let secrets = [
        "Front-Secret-4821",
        "Wrong-Secret-9375",
        "Admin-Secret-1166",
        "Stmt-Secret-7702",
        PASSWORD,
    ];
    let p = Proxy::with_config_logging(
        &format!(
            "passthrough_node = \"dn1\"\n[[users]]\nname = \"app\"\npassword = \"{}\"\nschemas = [\"*\"]\nprivileges = [\"read\", \"write\", \"ddl\", \"account\"]\n{}\
             [admin]\nlisten = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\nslow_query_ms = 0\n\
             [[admin.users]]\nname = \"dba\"\npassword = \"{}\"\n",
            secrets[0],
            node(&backend_password()),
            secrets[2]
        ),
        Some("trace"),
    );
    let mut c = login(&p, "app", secrets[0]).await.unwrap();
    login(&p, "app", secrets[1]).await.unwrap_err();
    c.query_drop("DROP USER IF EXISTS 'sg_sec_probe'@'%'")
        .await
        .unwrap();
    c.query_drop(format!(
        "CREATE USER 'sg_sec_probe'@'%' IDENTIFIED BY '{}'",
        secrets[3]
    ))
    .await
    .unwrap();
    c.query_drop(format!(
        "SET PASSWORD FOR 'sg_sec_probe'@'%' = PASSWORD('{}')",
        secrets[3]
    ))
    .await
    .unwrap();
    c.query_drop("DROP USER 'sg_sec_probe'@'%'").await.unwrap();
    c.change_user(as_user("app", secrets[0])).await.unwrap();
    works(&mut c).await;

    let mut admin = Conn::new(p.admin_opts("dba", secrets[2])).await.unwrap();
    admin
        .query_drop(format!(
            "UPDATE users SET password = '{}' WHERE name = 'app'",
            secrets[3]
        ))
        .await
        .unwrap();
    let mut seen = String::new();
    for view in [
        "SHOW SLOW QUERIES",
        "SHOW STATS",
        "SHOW SESSIONS",
        "SELECT * FROM config_audit",
    ] {
        let rows: Vec<mysql_async::Row> = admin.query(view).await.unwrap();
        for r in rows {
            for i in 0..r.len() {
                if let Some(Ok(v)) = r.get_opt::<Option<String>, _>(i) {
                    seen.push_str(&v.unwrap_or_default());
                    seen.push('\n');
                }
            }
        }
    }
    assert!(
        seen.contains("sg_sec_probe"),
        "the views show the statements: {seen}"
    );
    let log = p.log();
    assert!(
        log.contains("access denied"),
        "the log is at trace level: {log}"
    );
    for s in secrets {
        assert!(!log.contains(s), "the log holds `{s}`");
        assert!(!seen.contains(s), "the admin views hold `{s}`: {seen}");
    }
}
