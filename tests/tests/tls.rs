//! TLS: clients to shardgate (minimum version, ciphers, `require_tls` kept through
//! COM_CHANGE_USER) and shardgate to its backends (the server's certificate checked
//! against the node's CA and name). The sandbox's MariaDB serves a certificate from a
//! CA the test makes.

use std::process::{Command, Stdio};
use std::sync::OnceLock;

use mysql_async::prelude::*;
use mysql_async::Conn;
use tests::certs::{self_signed, BackendCerts};
use tests::{as_user, error_code, login, refused_config, works, Proxy, Sandbox, PASSWORD, USER};

fn backend_certs() -> &'static BackendCerts {
    static CERTS: OnceLock<BackendCerts> = OnceLock::new();
    CERTS.get_or_init(BackendCerts::make)
}

/// The sandbox's server offers TLS with a certificate of [`BackendCerts`]' CA.
fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        Sandbox::start_with(&[0], &backend_certs().server_options())
            .expect("start the MariaDB sandbox")
    })
}

/// The node section for the sandbox's primary, with `extra` keys.
fn node(extra: &str) -> String {
    format!(
        "[nodes.dn1]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n{extra}\n",
        sandbox().groups[0].primary.address()
    )
}

/// Whether `openssl s_client` completes a TLS handshake with shardgate (the MySQL
/// STARTTLS exchange) with these options.
fn tls_handshake(port: u16, options: &[&str]) -> bool {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-starttls",
            "mysql",
        ])
        .args(options)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success() && text.contains("Cipher is") && !text.contains("Cipher is (NONE)")
}

/// A user who must use TLS was reachable through COM_CHANGE_USER on a plain
/// connection (found while adding hashed passwords).
#[tokio::test]
async fn change_user_keeps_require_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let p = Proxy::with_config(&format!(
        "passthrough_node = \"dn1\"\n[[users]]\nname = \"plain\"\npassword = \"pw\"\nschemas = [\"*\"]\n\
         [[users]]\nname = \"tls_only\"\npassword = \"pw\"\nschemas = [\"*\"]\nrequire_tls = true\n{}\
         [tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        node(""),
        cert.display(),
        key.display()
    ));
    let e = login(&p, "tls_only", "pw").await.unwrap_err();
    assert_eq!(error_code(&e), Some(1045), "{e}");
    let mut c = login(&p, "plain", "pw").await.unwrap();
    let e = c.change_user(as_user("tls_only", "pw")).await.unwrap_err();
    assert_eq!(error_code(&e), Some(1045), "{e}");
    // Over TLS the same change is allowed (mysql-connector-python, which does TLS
    // and COM_CHANGE_USER).
    let script = format!(
        "import mysql.connector\n\
         c = mysql.connector.connect(host='127.0.0.1', port={}, user='plain', password='pw', \
         use_pure=True, ssl_disabled=False, ssl_verify_cert=False)\n\
         c.cmd_change_user(username='tls_only', password='pw')\n\
         cur = c.cursor()\n\
         cur.execute('SELECT CURRENT_USER()')\n\
         print(cur.fetchone()[0])\n",
        p.port
    );
    let out = Command::new(tests::python_env())
        .args(["-c", &script])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("tls_only"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn tls_keeps_to_its_minimum_version_and_ciphers() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let users = "passthrough_node = \"dn1\"\n[[users]]\nname = \"app\"\npassword = \"pw\"\nschemas = [\"*\"]\n";
    let tls = |extra: &str| {
        format!(
            "{users}{}[tls]\ncert = \"{}\"\nkey = \"{}\"\n{extra}",
            node(""),
            cert.display(),
            key.display()
        )
    };
    // The default: TLS 1.2 and 1.3.
    let p = Proxy::with_config(&tls(""));
    assert!(tls_handshake(p.port, &["-tls1_2"]));
    assert!(tls_handshake(p.port, &["-tls1_3"]));
    let p = Proxy::with_config(&tls("min_version = \"1.3\"\n"));
    assert!(!tls_handshake(p.port, &["-tls1_2"]), "TLS 1.2 refused");
    assert!(tls_handshake(p.port, &["-tls1_3"]));
    let p = Proxy::with_config(&tls(
        "ciphers = [\"TLS13_AES_256_GCM_SHA384\", \"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\"]\n",
    ));
    assert!(tls_handshake(
        p.port,
        &["-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384"]
    ));
    assert!(!tls_handshake(
        p.port,
        &["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"]
    ));
    assert!(tls_handshake(
        p.port,
        &["-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"]
    ));
    assert!(!tls_handshake(
        p.port,
        &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"]
    ));
    // A name rustls does not know, or a version that is none, stops the config.
    let err = refused_config(dir.path(), &tls("ciphers = [\"RC4_MD5\"]\n"));
    assert!(
        err.contains("unknown cipher suite `RC4_MD5`") && err.contains("TLS13_AES_256_GCM_SHA384"),
        "{err}"
    );
    let err = refused_config(dir.path(), &tls("min_version = \"1.1\"\n"));
    assert!(err.contains("tls.min_version"), "{err}");
}

/// What the backend says of its side of shardgate's connection: the TLS cipher
/// (empty for a plain connection).
async fn backend_cipher(c: &mut Conn) -> String {
    let row: Option<(String, String)> = c
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await
        .unwrap();
    row.map(|r| r.1).unwrap_or_default()
}

#[tokio::test]
async fn backends_are_reached_over_tls_with_their_certificate_checked() {
    let certs = backend_certs();
    let users = "passthrough_node = \"dn1\"\n[[users]]\nname = \"app\"\npassword = \"pw\"\nschemas = [\"*\"]\n";
    let config = |tls: &str| format!("{users}{}", node(tls));
    tests::direct(&sandbox().groups[0].primary, None)
        .await
        .query_drop("CREATE DATABASE IF NOT EXISTS sec_tls")
        .await
        .unwrap();
    // Plain by default; over TLS with the node's CA, by address or by a name of its own.
    let p = Proxy::with_config(&config(""));
    assert_eq!(
        backend_cipher(&mut login(&p, "app", "pw").await.unwrap()).await,
        ""
    );
    for tls in [
        format!("tls_ca = \"{}\"", certs.ca.display()),
        format!(
            "tls_ca = \"{}\"\ntls_server_name = \"db.sandbox\"",
            certs.ca.display()
        ),
    ] {
        let p = Proxy::with_config(&config(&tls));
        let mut c = login(&p, "app", "pw").await.unwrap();
        let cipher = backend_cipher(&mut c).await;
        assert!(
            !cipher.is_empty(),
            "{tls}: the backend connection is not TLS"
        );
        works(&mut c).await;
        // Statements and rows larger than a socket's buffers cross whole.
        let big = "x".repeat(4 << 20);
        c.query_drop("CREATE OR REPLACE TABLE sec_tls.t (b LONGTEXT)")
            .await
            .unwrap();
        c.query_drop(format!("INSERT INTO sec_tls.t VALUES ('{big}')"))
            .await
            .unwrap();
        let back: Option<String> = c.query_first("SELECT b FROM sec_tls.t").await.unwrap();
        assert_eq!(back.map(|b| b.len()), Some(big.len()));
    }
    // Another CA, or a name the certificate does not carry: no connection, and an
    // error that says why; never a plain connection instead.
    for (tls, said) in [
        (
            format!("tls_ca = \"{}\"", certs.other_ca.display()),
            "UnknownIssuer",
        ),
        (
            format!(
                "tls_ca = \"{}\"\ntls_server_name = \"db.elsewhere\"",
                certs.ca.display()
            ),
            "certificate not valid for name",
        ),
    ] {
        let p = Proxy::with_config(&config(&tls));
        // The login or the first statement needs the backend.
        let text = match login(&p, "app", "pw").await {
            Err(e) => e.to_string(),
            Ok(mut c) => c
                .query_drop("SELECT 1")
                .await
                .expect_err("refused")
                .to_string(),
        };
        assert!(
            text.contains("TLS: to dn1/primary") && text.contains(said),
            "{tls}: {text}"
        );
        // The log says why the node is down (the health check's next try).
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !p
            .log()
            .lines()
            .any(|l| l.contains("backend marked down") && l.contains(said))
        {
            assert!(std::time::Instant::now() < until, "{tls}: {}", p.log());
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    // A name no certificate can carry is refused under its own key.
    let err = refused_config(
        tempfile::tempdir().unwrap().path(),
        &config(&format!(
            "tls_ca = \"{}\"\ntls_server_name = \"not a name!\"",
            certs.ca.display()
        )),
    );
    assert!(err.contains("nodes.dn1.tls_server_name"), "{err}");
    // A CA file that is none stops the config with its key.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let err = refused_config(
        dir.path(),
        &config(&format!("tls_ca = \"{}\"", junk.display())),
    );
    assert!(
        err.contains("nodes.dn1.tls_ca") && err.contains("no PEM certificate"),
        "{err}"
    );
    let err = refused_config(dir.path(), &config("tls_ca = \"/nonexistent/ca.pem\""));
    assert!(
        err.contains("nodes.dn1.tls_ca") && err.contains("cannot read"),
        "{err}"
    );
}
