//! One `mariadbd` process under its guard.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::binaries::running_as_root;
use super::{guarded, io_err, release, Binaries, Guard, Result, SandboxError, START_TIMEOUT};

pub struct Instance {
    pub name: String,
    pub port: u16,
    pub server_id: u32,
    pub dir: PathBuf,
    socket: PathBuf,
    guard: Option<Guard>,
    /// How the server was started, for [`Instance::restart`].
    command: (PathBuf, Vec<String>),
    /// The server started again after [`Instance::crash`]: its own guard kills it
    /// when we end, and the first guard still removes the directory.
    restarted: Option<Guard>,
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io_err("finding a free port"))?;
    Ok(l.local_addr()
        .map_err(io_err("finding a free port"))?
        .port())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(io_err(format!("creating {}", to.display())))?;
    for entry in std::fs::read_dir(from).map_err(io_err(format!("reading {}", from.display())))? {
        let entry = entry.map_err(io_err("reading the template"))?;
        let target = to.join(entry.file_name());
        if entry
            .file_type()
            .map_err(io_err("reading the template"))?
            .is_dir()
        {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .map_err(io_err(format!("copying {}", entry.path().display())))?;
        }
    }
    Ok(())
}

/// Runs the server (`"$@"`) under a guard that kills it when our end of the
/// guard's stdin closes.
const SERVER_GUARD: &str =
    "trap '' INT TERM HUP; \"$@\" & pid=$!; read _; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null";

/// `server args…` under `script`; `dir` is `$SG_DIR` there.
fn guarded_server(
    script: &str,
    server: &Path,
    args: &[String],
    dir: Option<&Path>,
    what: &str,
) -> Result<Guard> {
    let all = std::iter::once(server.as_os_str().to_owned())
        .chain(args.iter().map(std::ffi::OsString::from));
    let env: Vec<(&str, &Path)> = dir.map(|d| ("SG_DIR", d)).into_iter().collect();
    guarded(script, all, &env, what)
}

impl Instance {
    pub(crate) fn start(
        bins: &Binaries,
        template: &Path,
        dir: &Path,
        (name, server_id): (&str, u32),
        primary: bool,
        options: &[String],
    ) -> Result<Instance> {
        let data = dir.join("data");
        copy_dir(template, &data)?;
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port()?;
            let socket = dir.join("mysqld.sock");
            let log = dir.join("error.log");
            let mut args: Vec<String> = vec![
                "--no-defaults".into(),
                format!("--datadir={}", data.display()),
                format!("--port={port}"),
                "--bind-address=127.0.0.1".into(),
                format!("--socket={}", socket.display()),
                format!("--pid-file={}", dir.join("mysqld.pid").display()),
                format!("--log-error={}", log.display()),
                format!("--server-id={server_id}"),
                "--skip-name-resolve".into(),
                "--innodb-buffer-pool-size=32M".into(),
                "--innodb-log-file-size=16M".into(),
                "--innodb-flush-log-at-trx-commit=2".into(),
                "--performance-schema=OFF".into(),
                "--max-connections=500".into(),
                "--max-allowed-packet=256M".into(),
                "--character-set-server=utf8mb4".into(),
                "--collation-server=utf8mb4_general_ci".into(),
                "--binlog-format=ROW".into(),
            ];
            if primary {
                args.push(format!("--log-bin={}", dir.join("binlog").display()));
                args.push("--sync-binlog=0".into());
            } else {
                args.push("--read-only=ON".into());
                args.push(format!("--relay-log={}", dir.join("relay").display()));
            }
            if running_as_root() {
                args.push("--user=root".into());
            }
            args.extend(options.iter().cloned());
            // The first guard also removes the directory: the last thing of all.
            let script = format!("{SERVER_GUARD}; rm -rf \"$SG_DIR\"");
            let guard =
                guarded_server(&script, &bins.server, &args, Some(dir), "starting mariadbd")?;
            let mut inst = Instance {
                name: name.to_string(),
                port,
                server_id,
                dir: dir.to_path_buf(),
                socket,
                guard: Some(guard),
                command: (bins.server.clone(), args),
                restarted: None,
            };
            match inst.wait_ready() {
                Ok(()) => return Ok(inst),
                Err(e) => {
                    last_error = e;
                    // The guard removes the directory; a retry starts from a new copy.
                    inst.kill();
                    if !last_error.contains("Address already in use") {
                        break;
                    }
                    copy_dir(template, &data)?;
                }
            }
        }
        Err(SandboxError::Failed(format!(
            "{name} did not start:\n{last_error}"
        )))
    }

    fn wait_ready(&mut self) -> std::result::Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some((child, _)) = &mut self.guard {
                if let Ok(Some(_)) = child.try_wait() {
                    return Err(self.log_tail());
                }
            }
            // Our own server's socket too: a greeting on the port alone may come from
            // another server that took the port first.
            let own = self.dir.join("mysqld.sock").exists();
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port))
                .map_err(drop)
                .and_then(|s| if own { Ok(s) } else { Err(()) })
            {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = [0u8; 5];
                if s.read_exact(&mut head).is_ok() && head[4] == 10 {
                    return Ok(());
                }
            }
            let log = self.log_tail();
            if log.contains("Address already in use") || log.contains("[ERROR] Aborting") {
                return Err(log);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "not ready after {} s\n{}",
            START_TIMEOUT.as_secs(),
            self.log_tail()
        ))
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn is_running(&self) -> bool {
        self.guard.is_some()
    }

    /// Runs SQL as root over the server's socket; returns tab-separated rows.
    pub fn exec(&self, bins: &Binaries, sql: &str) -> Result<String> {
        let out = Command::new(&bins.client)
            .arg("--no-defaults")
            .arg("--protocol=socket")
            .arg(format!("--socket={}", self.socket.display()))
            .arg("-uroot")
            .arg("--batch")
            .arg("--skip-column-names")
            .arg("-e")
            .arg(sql)
            .stdin(Stdio::null())
            .output()
            .map_err(io_err(format!("running {}", bins.client.display())))?;
        if !out.status.success() {
            return Err(SandboxError::Failed(format!(
                "{} on {}: {}",
                sql.chars().take(200).collect::<String>(),
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Kills the server at once (SIGKILL), as a crash would, keeping its files:
    /// [`Instance::restart`] starts it again on them.
    pub fn crash(&mut self) -> Result<()> {
        let pid_file = self.dir.join("mysqld.pid");
        let pid = std::fs::read_to_string(&pid_file)
            .map_err(io_err(format!("reading {}", pid_file.display())))?;
        let pid = pid.trim().to_string();
        let _ = Command::new("kill").arg("-9").arg(&pid).status();
        release(&mut self.restarted);
        // Dead once a zombie (its guard reaps it only at the end) or gone.
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|st| {
                    !st.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(false)
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Starts the server again on its files and port, after [`Instance::crash`].
    pub fn restart(&mut self) -> Result<()> {
        let (server, args) = &self.command;
        let guard = guarded_server(SERVER_GUARD, server, args, None, "starting mariadbd again")?;
        self.restarted = Some(guard);
        self.wait_ready()
            .map_err(|e| SandboxError::Failed(format!("{} did not start again:\n{e}", self.name)))
    }

    /// Kills the server at once (SIGKILL), as a crash would, and deletes its files.
    pub fn kill(&mut self) {
        release(&mut self.restarted);
        release(&mut self.guard);
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}
