//! Helpers for the end-to-end tests: a shared MariaDB sandbox per test binary, the real
//! `shardgate` binary started per test, and clients to talk to both.

pub mod certs;
pub mod compare;
pub mod fault_relay;
pub mod raw;
pub mod rng;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

pub use proxy::sandbox::{Sandbox, PASSWORD, USER};

/// The `shardgate` binary next to the test executable (target/<profile>/shardgate),
/// or `SHARDGATE_BIN`.
pub fn shardgate_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SHARDGATE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let bin = profile_dir.join("shardgate");
    assert!(
        bin.is_file(),
        "{} is missing: build it first with `cargo build --workspace --bins` (scripts/test does)",
        bin.display()
    );
    bin
}

/// A running shardgate process, killed when dropped.
pub struct Proxy {
    child: Child,
    pub port: u16,
    _config: Option<tempfile::NamedTempFile>,
    /// What shardgate logged so far (stderr).
    log: std::sync::Arc<std::sync::Mutex<String>>,
    /// Its stdout lines after the first (the HTTP and admin ports).
    announced: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Proxy {
    /// Pass-through mode in front of `primary` and `replicas`, with the sandbox account.
    pub fn passthrough(primary: &str, replicas: &[String]) -> Proxy {
        Self::passthrough_with(primary, replicas, &[])
    }

    /// [`Proxy::passthrough`] with more arguments (`--data-dir DIR`).
    pub fn passthrough_with(primary: &str, replicas: &[String], more: &[&str]) -> Proxy {
        let mut cmd = Command::new(shardgate_bin());
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--primary")
            .arg(primary)
            .arg("--user")
            .arg(USER)
            .arg("--password")
            .arg(PASSWORD)
            .arg("--http-listen")
            .arg("127.0.0.1:0")
            .arg("--admin-listen")
            .arg("127.0.0.1:0");
        for r in replicas {
            cmd.arg("--replica").arg(r);
        }
        cmd.args(more);
        Self::spawn(cmd, None)
    }

    /// Config-file mode. `server.listen` is set to port 0 (in the body's `[server]`
    /// table if it has one).
    pub fn with_config(body: &str) -> Proxy {
        Self::with_config_logging(body, None)
    }

    /// Config-file mode with `SHARDGATE_LOG` set to `log` (else the test's own, or
    /// `warn`).
    pub fn with_config_logging(body: &str, log: Option<&str>) -> Proxy {
        let env: Vec<(&str, &str)> = log.map(|l| ("SHARDGATE_LOG", l)).into_iter().collect();
        Self::with_config_env(body, &env)
    }

    /// Config-file mode with more environment (a test failpoint, a log level).
    pub fn with_config_env(body: &str, env: &[(&str, &str)]) -> Proxy {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        let text = config_text(body, file.path());
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
        let mut cmd = Command::new(shardgate_bin());
        cmd.arg("--config").arg(file.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::spawn(cmd, Some(file))
    }

    /// Config-file mode with a file the test keeps: it outlives the process, so a
    /// restart reads what the last one saved. Write it with [`write_config`].
    pub fn with_config_file(path: &Path) -> Proxy {
        let mut cmd = Command::new(shardgate_bin());
        cmd.arg("--config").arg(path);
        Self::spawn(cmd, None)
    }

    /// Starts shardgate on port 0 and reads the port it got from its first stdout line.
    fn spawn(mut cmd: Command, config: Option<tempfile::NamedTempFile>) -> Proxy {
        let asked = cmd.get_envs().any(|(k, _)| k == "SHARDGATE_LOG");
        if !asked {
            cmd.env(
                "SHARDGATE_LOG",
                std::env::var("SHARDGATE_LOG").unwrap_or_else(|_| "warn".into()),
            );
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start shardgate");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        let mut stdout = BufReader::new(stdout);
        let _ = stdout.read_line(&mut line);
        let announced = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        {
            let announced = announced.clone();
            std::thread::spawn(move || {
                for line in stdout.lines().map_while(Result::ok) {
                    announced
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(line);
                }
            });
        }
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("shardgate did not start: {line}\n{err}");
            });
        // Keep draining stderr so a chatty log never blocks the proxy; tests read it.
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        if let Some(e) = child.stderr.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(e).lines().map_while(Result::ok) {
                    eprintln!("{line}");
                    let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        Proxy {
            child,
            port,
            _config: config,
            log,
            announced,
        }
    }

    /// The port of the listener shardgate announced as `shardgate <what> on …`
    /// (`http`, `admin`), waiting a little for the line.
    pub fn announced_port(&self, what: &str) -> u16 {
        let prefix = format!("shardgate {what} on ");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let lines = self
                .announced
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(port) = lines
                .iter()
                .filter_map(|l| l.strip_prefix(&prefix))
                .find_map(|a| a.rsplit(':').next()?.trim().parse().ok())
            {
                return port;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "shardgate announced no {what} port; stdout: {lines:?}\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The admin port's connection options for `user`.
    pub fn admin_opts(&self, user: &str, password: &str) -> mysql_async::Opts {
        opts(self.announced_port("admin"), user, password, None)
    }

    /// Rewrites the config file with `body` (as [`Proxy::with_config`] would) and
    /// sends SIGHUP, which makes shardgate read it again.
    pub fn reload(&self, body: &str) {
        let file = self
            ._config
            .as_ref()
            .expect("a proxy started with a config file");
        std::fs::write(file.path(), config_text(body, file.path())).expect("rewrite the config");
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Sends SIGTERM, as an init system stopping the service would.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits up to `timeout` for the process to exit; its status if it did.
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    /// What shardgate has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The shardgate process id (for its RSS, its open files).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn opts(&self, user: &str, password: &str, db: Option<&str>) -> mysql_async::Opts {
        opts(self.port, user, password, db)
    }

    pub async fn conn(&self, db: Option<&str>) -> mysql_async::Conn {
        mysql_async::Conn::new(self.opts(USER, PASSWORD, db))
            .await
            .expect("connect through shardgate")
    }
}

/// `body` with `server.listen` set to port 0 unless it sets one (in its `[server]`
/// table if it has one),
/// and, unless the body sets them, an XA data directory and instance id of this
/// config file's own: proxies that run at once must not share them.
fn config_text(body: &str, path: &Path) -> String {
    let mut listen = String::new();
    // `listen` of the [server] table: [admin] has one too.
    let server = body.find("[server]\n").map(|at| {
        let rest = &body[at + 9..];
        &rest[..rest.find("\n[").unwrap_or(rest.len())]
    });
    if !server.is_some_and(|s| s.lines().any(|l| l.trim_start().starts_with("listen "))) {
        listen.push_str("listen = \"127.0.0.1:0\"\n");
    }
    let own = data_dir_of(path);
    if !body
        .lines()
        .any(|l| l.trim_start().starts_with("data_dir "))
    {
        listen.push_str(&format!("data_dir = \"{}\"\n", own.display()));
    }
    if !body
        .lines()
        .any(|l| l.trim_start().starts_with("instance_id "))
    {
        let id: String = own
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        listen.push_str(&format!("instance_id = \"t{id}\"\n"));
    }
    // Tests run at once: each serves HTTP and the admin port on ports of its own.
    let admin = if body.contains("[admin]") {
        ""
    } else {
        "\n[admin]\nhttp_listen = \"127.0.0.1:0\"\nlisten = \"127.0.0.1:0\"\n"
    };
    match body.find("[server]\n") {
        Some(i) => format!("{}{listen}{}{admin}", &body[..i + 9], &body[i + 9..]),
        None => format!("{body}\n[server]\n{listen}{admin}"),
    }
}

/// Logs in to `p` as `user` with no database.
pub async fn login(
    p: &Proxy,
    user: &str,
    password: &str,
) -> Result<mysql_async::Conn, mysql_async::Error> {
    mysql_async::Conn::new(p.opts(user, password, None)).await
}

/// COM_CHANGE_USER to `user`.
pub fn as_user(user: &str, password: &str) -> mysql_async::ChangeUserOpts {
    mysql_async::ChangeUserOpts::default()
        .with_user(Some(user.into()))
        .with_pass(Some(password.into()))
}

/// The session answers a query.
pub async fn works(c: &mut mysql_async::Conn) {
    use mysql_async::prelude::Queryable;
    let v: Option<i64> = c.query_first("SELECT 6 * 7").await.expect("SELECT 6 * 7");
    assert_eq!(v, Some(42));
}

/// `shardgate check-config` on `body`, written to `dir`: it must fail; returns what
/// it said.
pub fn refused_config(dir: &Path, body: &str) -> String {
    let path = dir.join("bad.toml");
    std::fs::write(&path, body).expect("write the config");
    let out = Command::new(shardgate_bin())
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .expect("run shardgate check-config");
    assert!(!out.status.success(), "{body}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Writes `body` to `path` as [`Proxy::with_config`] would run it.
pub fn write_config(body: &str, path: &Path) {
    std::fs::write(path, config_text(body, path)).expect("write the config");
}

/// A port nothing listens on now, for a shardgate that must come back on the same
/// port after a restart.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The XA data directory a test config file gets when its body names none.
fn data_dir_of(config: &Path) -> PathBuf {
    config.with_extension("data")
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(f) = &self._config {
            let _ = std::fs::remove_dir_all(data_dir_of(f.path()));
        }
    }
}

pub fn opts(port: u16, user: &str, password: &str, db: Option<&str>) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .db_name(db)
        .prefer_socket(false)
        .into()
}

/// A direct connection to a sandbox server, bypassing shardgate.
pub async fn direct(instance: &proxy::sandbox::Instance, db: Option<&str>) -> mysql_async::Conn {
    mysql_async::Conn::new(opts(instance.port, USER, PASSWORD, db))
        .await
        .expect("direct connect")
}

/// Code of a server error, for assertions.
pub fn error_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

/// `db` dropped and created afresh on every group's primary (replicas follow).
pub async fn recreate_db(sandbox: &Sandbox, db: &str) {
    recreate_db_with(sandbox, db, "").await
}

/// `db` afresh on every group's primary, in utf8mb4 with its case- and
/// accent-insensitive collation (what the differential tests compare under).
pub async fn recreate_db_ci(sandbox: &Sandbox, db: &str) {
    recreate_db_with(
        sandbox,
        db,
        " DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_general_ci",
    )
    .await
}

async fn recreate_db_with(sandbox: &Sandbox, db: &str, options: &str) {
    use mysql_async::prelude::Queryable;
    for g in &sandbox.groups {
        let mut c = direct(&g.primary, None).await;
        c.query_drop(format!("DROP DATABASE IF EXISTS {db}"))
            .await
            .expect("drop database");
        c.query_drop(format!("CREATE DATABASE {db}{options}"))
            .await
            .expect("create database");
    }
}

/// The virtualenv's python, made once per run (the tests of this binary share it).
pub fn python_env() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(make_python_env).clone()
}

fn make_python_env() -> PathBuf {
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

/// Runs one of tests/python's check scripts; every check must pass.
pub fn run_checks(python: &Path, script: &str, args: &[&str]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let mut cmd = Command::new(python);
    cmd.arg(path).args(args);
    expect_all_passed(cmd, script);
}

/// Runs a check script (Python or Node.js, which print `N passed, M failed`) and
/// fails the test unless it exits cleanly with none failed.
fn expect_all_passed(mut cmd: Command, script: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {script}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains(" passed, 0 failed"), "{text}");
}

/// The node_modules with mysql2 (Node.js's own MySQL protocol driver), installed once
/// under target/ (npm registry).
pub fn node_modules() -> PathBuf {
    static MODULES: OnceLock<PathBuf> = OnceLock::new();
    MODULES
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("nodeenv");
            let modules = root.join("node_modules");
            if !modules.join("mysql2").join("package.json").is_file() {
                std::fs::create_dir_all(&root).expect("create target/nodeenv");
                let status = Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
                    .arg(&root)
                    .arg("mysql2@3")
                    .status()
                    .expect("npm (Debian: apt-get install nodejs npm)");
                assert!(status.success(), "npm install mysql2 failed");
            }
            modules
        })
        .clone()
}

/// Runs one of tests/node's check scripts; every check must pass.
pub fn run_node_checks(script: &str, args: &[&str]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("node")
        .join(script);
    let mut cmd = Command::new("node");
    cmd.arg(path).args(args).env("NODE_PATH", node_modules());
    expect_all_passed(cmd, script);
}
