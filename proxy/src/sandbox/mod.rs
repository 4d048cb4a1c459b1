//! Real MariaDB servers on this machine, for `shardgate playground` and the tests:
//! temporary data directories, free ports, real primary→replica replication.
//!
//! Every server runs under a small `sh` guard that reads its stdin; when the owning
//! process ends for any reason (even SIGKILL) the pipe closes and the guard kills the
//! server and deletes its directory, so nothing is left behind.

mod binaries;
mod instance;

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

pub use binaries::Binaries;
pub use instance::Instance;

/// Account created on every sandbox server, with all privileges.
pub const USER: &str = "sandbox";
pub const PASSWORD: &str = "sandbox";

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{0}")]
    Missing(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
}

pub type Result<T> = std::result::Result<T, SandboxError>;

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Io { what, source }
}

/// A replication group: one primary and its replicas.
pub struct Group {
    pub primary: Instance,
    pub replicas: Vec<Instance>,
}

pub struct Sandbox {
    root: PathBuf,
    bins: Binaries,
    pub groups: Vec<Group>,
    /// Removes `root` when this process ends, whatever way it ends.
    root_guard: Option<(Child, ChildStdin)>,
}

impl Sandbox {
    /// Starts one group per entry of `replicas`, with that many replicas each, and
    /// waits until replication runs.
    pub fn start(replicas: &[usize]) -> Result<Sandbox> {
        Self::start_with(replicas, &[])
    }

    /// [`Sandbox::start`] with more server options for every instance (`--ssl-cert=…`).
    pub fn start_with(replicas: &[usize], options: &[String]) -> Result<Sandbox> {
        let bins = Binaries::find()?;
        let root = tempfile::Builder::new()
            .prefix("shardgate-sandbox-")
            .tempdir_in(std::env::temp_dir())
            .map_err(io_err("creating the sandbox directory"))?
            .keep();
        let root_guard = guard_dir(&root)?;
        let mut sandbox = Sandbox {
            root,
            bins,
            groups: Vec::new(),
            root_guard: Some(root_guard),
        };
        let template = sandbox.root.join("template");
        sandbox.bins.install_db(&template)?;

        // Start every server at once: they boot in parallel.
        let mut server_id = 0;
        let mut specs = Vec::new();
        for (g, &n) in replicas.iter().enumerate() {
            for r in 0..=n {
                server_id += 1;
                let name = if r == 0 {
                    format!("g{}-primary", g + 1)
                } else {
                    format!("g{}-replica{}", g + 1, r)
                };
                specs.push((g, r, name, server_id));
            }
        }
        let started: Vec<Result<Instance>> = std::thread::scope(|s| {
            let handles: Vec<_> = specs
                .iter()
                .map(|(_, r, name, id)| {
                    let bins = &sandbox.bins;
                    let dir = sandbox.root.join(name);
                    let template = &template;
                    s.spawn(move || {
                        Instance::start(bins, template, &dir, (name, *id), *r == 0, options)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(SandboxError::Failed("server start panicked".into()))
                    })
                })
                .collect()
        });
        let mut instances = Vec::new();
        for r in started {
            instances.push(r?);
        }
        let mut it = instances.into_iter();
        for &n in replicas {
            let primary = it
                .next()
                .ok_or_else(|| SandboxError::Failed("missing primary".into()))?;
            let group_replicas: Vec<Instance> = it.by_ref().take(n).collect();
            sandbox.groups.push(Group {
                primary,
                replicas: group_replicas,
            });
        }
        for g in &sandbox.groups {
            g.primary.exec(
                &sandbox.bins,
                &format!(
                    "CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; \
                     GRANT ALL ON *.* TO '{USER}'@'%' WITH GRANT OPTION;"
                ),
            )?;
            for r in &g.replicas {
                r.exec(
                    &sandbox.bins,
                    &format!(
                        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, \
                         MASTER_USER='{USER}', MASTER_PASSWORD='{PASSWORD}', \
                         MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; START SLAVE;",
                        g.primary.port
                    ),
                )?;
            }
        }
        sandbox.sync()?;
        Ok(sandbox)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn binaries(&self) -> &Binaries {
        &self.bins
    }

    /// Runs SQL as root on `instance` with the `mariadb` client; returns its
    /// tab-separated output.
    pub fn exec(&self, instance: &Instance, sql: &str) -> Result<String> {
        instance.exec(&self.bins, sql)
    }

    /// Waits until every live replica has applied everything its primary has logged.
    pub fn sync(&self) -> Result<()> {
        for g in &self.groups {
            let pos = g.primary.exec(&self.bins, "SELECT @@gtid_binlog_pos")?;
            let pos = pos.trim();
            for r in g.replicas.iter().filter(|r| r.is_running()) {
                let out = r.exec(&self.bins, &format!("SELECT MASTER_GTID_WAIT('{pos}', 60)"))?;
                if out.trim() != "0" {
                    let status = r
                        .exec(&self.bins, "SHOW SLAVE STATUS\\G")
                        .unwrap_or_default();
                    return Err(SandboxError::Failed(format!(
                        "{} did not catch up with {} (position {pos}):\n{status}",
                        r.name, g.primary.name
                    )));
                }
            }
        }
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for g in &mut self.groups {
            for r in &mut g.replicas {
                r.kill();
            }
            g.primary.kill();
        }
        release(&mut self.root_guard);
    }
}

/// A guard process that deletes `dir` once our end of its stdin closes.
fn guard_dir(dir: &Path) -> Result<Guard> {
    guarded(
        "trap '' INT TERM HUP; read _ ; rm -rf \"$1\"",
        [dir.as_os_str()],
        &[],
        "starting sh",
    )
}

/// A `sh -c script` (its arguments `args`, its extra environment `env`) that acts
/// when our end of its stdin closes, which happens however this process ends.
pub(crate) type Guard = (Child, ChildStdin);

pub(crate) fn guarded<I, A>(
    script: &str,
    args: I,
    env: &[(&str, &Path)],
    what: &str,
) -> Result<Guard>
where
    I: IntoIterator<Item = A>,
    A: AsRef<std::ffi::OsStr>,
{
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v.as_os_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io_err(what))?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| SandboxError::Failed("no stdin for the guard".into()))?;
    Ok((child, stdin))
}

/// Closes a guard's stdin (it acts) and waits for it.
pub(crate) fn release(guard: &mut Option<Guard>) {
    if let Some((mut child, stdin)) = guard.take() {
        drop(stdin);
        let _ = child.wait();
    }
}

/// How long a server may take to start.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(60);
