//! Python drivers (PyMySQL, mysql-connector-python) through the real binary.
//! The virtualenv is made under target/ on first use (PyPI packages).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use mysql_async::prelude::*;
use tests::{python_env, run_checks, Proxy, Sandbox, PASSWORD, USER};

/// One sandbox for this binary's tests.
fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[1]).expect("start the MariaDB sandbox"))
}

#[tokio::test]
async fn pymysql_and_mysql_connector_work_through_shardgate() {
    let python = python_env();
    let sandbox = sandbox();
    let g = &sandbox.groups[0];
    let proxy = Proxy::passthrough(&g.primary.address(), &[g.replicas[0].address()]);
    let mut c = proxy.conn(None).await;
    c.query_drop("CREATE DATABASE py_clients").await.unwrap();
    sandbox.sync().unwrap();
    let port = proxy.port.to_string();
    run_checks(
        &python,
        "clients.py",
        &["127.0.0.1", &port, USER, PASSWORD, "py_clients"],
    );
}

/// PyMySQL turns autocommit off as it connects. That is session state shardgate
/// keeps, not a reason to hold a backend connection: a thousand such idle clients hold
/// (almost) none.
#[tokio::test]
async fn a_thousand_idle_pymysql_clients_hold_a_handful_of_backend_connections() {
    use std::io::{BufRead, BufReader};
    const CLIENTS: usize = 1000;
    let python = python_env();
    let g = &sandbox().groups[0];
    let proxy = Proxy::with_config(&format!(
        "passthrough_node = \"dn1\"\n\
         [[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\nschemas = [\"*\"]\n\
         privileges = [\"read\", \"write\", \"ddl\", \"admin\"]\n\
         [nodes.dn1]\nprimary = \"{}\"\nreplicas = [\"{}\"]\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [server]\nmax_connections = {}\n",
        g.primary.address(),
        g.replicas[0].address(),
        CLIENTS + 10,
    ));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join("idle.py");
    let mut child = Command::new(&python)
        .arg(script)
        .args(["127.0.0.1", &proxy.port.to_string(), USER, PASSWORD])
        .arg(CLIENTS.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run idle.py");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read idle.py");
    assert_eq!(line.trim(), format!("open {CLIENTS}"));
    let mut c = proxy.conn(None).await;
    // Every pool of shardgate: connections open (lent or idle).
    let open: Vec<(String, u64, u64)> = c
        .query_map("SHOW SHARDGATE NODES", |row: mysql_async::Row| {
            let role: String = row.get("Role").unwrap();
            let used: u64 = row.get("Pool_in_use").unwrap();
            let idle: u64 = row.get("Pool_idle").unwrap();
            (role, used, idle)
        })
        .await
        .unwrap();
    let total: u64 = open.iter().map(|(_, u, i)| u + i).sum();
    let status = std::fs::read_to_string(format!("/proc/{}/status", proxy.pid())).unwrap();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or("VmRSS: ?")
        .to_string();
    eprintln!(
        "{CLIENTS} idle PyMySQL clients: {total} backend connections {open:?}; shardgate {rss}"
    );
    assert!(
        total <= 4,
        "{CLIENTS} idle clients hold {total} backend connections: {open:?}"
    );
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}

/// A self-signed certificate for 127.0.0.1, made with the openssl CLI.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        .output()
        .expect("run openssl (Debian: apt-get install openssl)")
        .status;
    assert!(status.success(), "openssl req failed");
    (cert, key)
}

#[tokio::test]
async fn tls_and_caching_sha2_with_three_clients() {
    let python = python_env();
    let sandbox = sandbox();
    let g = &sandbox.groups[0];
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let proxy = Proxy::with_config(&format!(
        "passthrough_node = \"dn1\"\n\
         [server]\nstatement_timeout_ms = 1000\n\
         [tls]\ncert = \"{}\"\nkey = \"{}\"\n\
         [[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\nschemas = [\"*\"]\n\
         privileges = [\"read\", \"write\", \"ddl\", \"admin\"]\n\
         [[users]]\nname = \"secure\"\npassword = \"s3cret\"\nschemas = [\"*\"]\nrequire_tls = true\n\
         [[users]]\nname = \"sha2\"\npassword = \"sha2-pw\"\nschemas = [\"*\"]\n\
         [nodes.dn1]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n",
        cert.display(),
        key.display(),
        g.primary.address()
    ));
    let mut c = proxy.conn(None).await;
    c.query_drop("CREATE DATABASE py_tls").await.unwrap();

    // The mariadb CLI: TLS verified against our certificate; the TLS-only user is
    // refused without it.
    let cli = |args: &[&str]| {
        let out = Command::new(&sandbox.binaries().client)
            .arg("--no-defaults")
            .arg("-h127.0.0.1")
            .arg(format!("-P{}", proxy.port))
            .args(args)
            .output()
            .expect("run the mariadb client");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let ca = format!("--ssl-ca={}", cert.display());
    let (ok, text) = cli(&[
        "-usecure",
        "-ps3cret",
        "--ssl",
        "--ssl-verify-server-cert",
        &ca,
        "-N",
        "-e",
        "SELECT 6 * 7",
    ]);
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "42");
    let (ok, text) = cli(&["-usecure", "-ps3cret", "--skip-ssl", "-e", "SELECT 1"]);
    assert!(!ok);
    assert!(text.contains("1045"), "{text}");
    // caching_sha2_password from the CLI: the first login of a user since start is a
    // full authentication (the password over TLS), the next ones the fast path; a
    // wrong password fails either way.
    for _ in 0..2 {
        let (ok, text) = cli(&[
            "-usha2",
            "-psha2-pw",
            "--default-auth=caching_sha2_password",
            "--ssl",
            &ca,
            "-N",
            "-e",
            "SELECT 'in'",
        ]);
        assert!(ok, "{text}");
        assert_eq!(text.trim(), "in");
    }
    let (ok, text) = cli(&[
        "-usha2",
        "-pnope",
        "--default-auth=caching_sha2_password",
        "--ssl",
        &ca,
        "-e",
        "SELECT 1",
    ]);
    assert!(!ok && text.contains("1045"), "{text}");
    // Without TLS: the fast path (libmariadb is switched to caching_sha2 first).
    let (ok, text) = cli(&[
        "-usha2",
        "-psha2-pw",
        "--default-auth=caching_sha2_password",
        "--skip-ssl",
        "-N",
        "-e",
        "SELECT 'plain'",
    ]);
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "plain");
    // Without TLS configured in the client, an ordinary user still logs in.
    let (ok, text) = cli(&[
        &format!("-u{USER}"),
        &format!("-p{PASSWORD}"),
        "--skip-ssl",
        "-N",
        "-e",
        "SELECT 1",
    ]);
    assert!(ok, "{text}");

    // PyMySQL and mysql-connector-python over TLS, and caching_sha2_password.
    let (port, ca) = (proxy.port.to_string(), cert.display().to_string());
    run_checks(
        &python,
        "tls.py",
        &["127.0.0.1", &port, "secure", "s3cret", "py_tls", &ca],
    );
}
