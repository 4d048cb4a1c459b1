//! Finding the MariaDB programs, and telling the user how to get them when missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{io_err, Result, SandboxError};

#[derive(Debug, Clone)]
pub struct Binaries {
    pub server: PathBuf,
    pub install_db: PathBuf,
    pub client: PathBuf,
}

const HOW: &str =
    "install MariaDB (Debian/Ubuntu: `sudo apt-get install -y mariadb-server mariadb-client`), \
                   or run scripts/playground, which installs it";

fn find(names: &[&str], env: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/libexec", "/usr/local/sbin", "/usr/bin"].map(PathBuf::from));
    let dirs: Vec<PathBuf> = dirs.collect();
    for name in names {
        for d in &dirs {
            let p = d.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

pub(crate) fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

impl Binaries {
    pub fn find() -> Result<Binaries> {
        let server = find(&["mariadbd", "mysqld"], "SHARDGATE_MARIADBD")
            .ok_or_else(|| SandboxError::Missing(format!("mariadbd not found: {HOW}")))?;
        let install_db = find(
            &["mariadb-install-db", "mysql_install_db"],
            "SHARDGATE_MARIADB_INSTALL_DB",
        )
        .ok_or_else(|| SandboxError::Missing(format!("mariadb-install-db not found: {HOW}")))?;
        let client = find(&["mariadb", "mysql"], "SHARDGATE_MARIADB_CLIENT")
            .ok_or_else(|| SandboxError::Missing(format!("the mariadb client not found: {HOW}")))?;
        Ok(Binaries {
            server,
            install_db,
            client,
        })
    }

    /// Creates a fresh data directory once; servers start from copies of it.
    pub fn install_db(&self, datadir: &Path) -> Result<()> {
        let mut cmd = Command::new(&self.install_db);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", datadir.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db");
        if running_as_root() {
            cmd.arg("--user=root");
        }
        let out = cmd
            .output()
            .map_err(io_err(format!("running {}", self.install_db.display())))?;
        if !out.status.success() {
            return Err(SandboxError::Failed(format!(
                "{} failed:\n{}{}",
                self.install_db.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }
}
