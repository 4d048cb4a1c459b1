//! Python drivers (PyMySQL, mysql-connector-python) through the real binary.
//! The virtualenv is made under target/ on first use (PyPI packages).

use std::path::{Path, PathBuf};
use std::process::Command;

use mysql_async::prelude::*;
use tests::{Proxy, Sandbox, PASSWORD, USER};

fn python_env() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("pyenv");
    let python = root.join("bin").join("python");
    let ready = python.is_file()
        && Command::new(&python)
            .args(["-c", "import pymysql, mysql.connector"])
            .status()
            .is_ok_and(|s| s.success());
    if !ready {
        let status = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&root)
            .status()
            .expect("python3 -m venv");
        assert!(
            status.success(),
            "creating a virtualenv failed (Debian: apt-get install python3-venv)"
        );
        let status = Command::new(root.join("bin").join("pip"))
            .args(["install", "-q", "pymysql", "mysql-connector-python"])
            .status()
            .expect("pip");
        assert!(
            status.success(),
            "pip install pymysql mysql-connector-python failed"
        );
    }
    python
}

#[tokio::test]
async fn pymysql_and_mysql_connector_work_through_shardgate() {
    let python = python_env();
    let sandbox = Sandbox::start(&[1]).expect("start the MariaDB sandbox");
    let g = &sandbox.groups[0];
    let proxy = Proxy::passthrough(&g.primary.address(), &[g.replicas[0].address()]);
    let mut c = proxy.conn(None).await;
    c.query_drop("CREATE DATABASE py_clients").await.unwrap();
    sandbox.sync().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join("clients.py");
    let out = Command::new(python)
        .arg(script)
        .args([
            "127.0.0.1",
            &proxy.port.to_string(),
            USER,
            PASSWORD,
            "py_clients",
        ])
        .output()
        .expect("run clients.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains(" passed, 0 failed"), "{text}");
}
