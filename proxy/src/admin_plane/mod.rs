//! The admin plane: what the admin port's statements act on. DBAs stage a layout in
//! SQL tables, validate it, put it in effect (a topology swap: no client dropped),
//! save it to the config file, and roll back to any layout that was in effect; every
//! change is audited. The admin port's sessions call [`AdminPlane::execute`]; nothing
//! here knows the wire protocol.
//!
//! Admin statements run one at a time (a DBA's LOAD must validate against the layout
//! it replaces), and their SQLite work runs off the runtime's threads, so a slow
//! fsync never holds up a client statement.

mod config_verbs;
mod create_tables;
mod moves;
mod operate;
pub mod periods;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use admin::statement::{self, Statement};
use admin::store::{AuditEntry, Outcome, Store};
use admin::AdminError;

use crate::topology::Current;
use crate::wire::resultset::LocalColumn;
use crate::wire::SqlError;

/// How long an admin statement waits for the one running before it gives up.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Who runs an admin statement, for the audit.
#[derive(Debug, Clone)]
pub struct Who {
    pub user: String,
    pub client: String,
}

/// An admin statement's answer.
#[derive(Debug)]
pub enum Reply {
    Rows {
        columns: Vec<LocalColumn>,
        rows: Vec<Vec<Option<String>>>,
    },
    Done {
        affected: u64,
    },
}

impl Reply {
    fn text(columns: &[&str], rows: Vec<Vec<Option<String>>>) -> Reply {
        Reply::Rows {
            columns: columns.iter().map(|c| LocalColumn::text(c)).collect(),
            rows,
        }
    }
}

/// Where the staged layout and its history are, and what it changes.
pub struct AdminPlane {
    store: Mutex<Store>,
    /// The layout generation the runtime tables show, and its history version.
    seen: Mutex<(u64, i64)>,
    /// One admin statement at a time.
    busy: tokio::sync::Mutex<()>,
    topology: Arc<Current>,
    /// What SAVE CONFIG TO DISK writes: the config file, or in zero-config mode
    /// `shardgate.toml` in the data directory; `None` without either.
    config_file: Option<PathBuf>,
    /// What a config file written for the first time holds besides the layout (the
    /// settings of a zero-config start).
    fresh: toml::Table,
    connect_timeout: std::time::Duration,
}

impl AdminPlane {
    /// Opens the admin database in `data_dir` (in memory without one), stages the
    /// layout in effect and records it in the history.
    pub fn open(
        data_dir: Option<&std::path::Path>,
        topology: Arc<Current>,
        config_file: Option<PathBuf>,
        fresh: toml::Table,
        connect_timeout: std::time::Duration,
    ) -> Result<AdminPlane, AdminError> {
        let mut store = Store::open(data_dir)?;
        let topo = topology.load();
        let doc = topo.document.clone();
        store.stage(&doc)?;
        store.set_runtime(&doc)?;
        let version = store.record(&doc, "shardgate", "start", false)?;
        Ok(AdminPlane {
            store: Mutex::new(store),
            seen: Mutex::new((topo.generation, version)),
            busy: tokio::sync::Mutex::new(()),
            topology,
            config_file,
            fresh,
            connect_timeout,
        })
    }

    /// The config version in effect (its number in SHOW CONFIG HISTORY).
    pub fn version(&self) -> i64 {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).1
    }

    /// The right to run an admin statement: one at a time, and a DBA whose statement
    /// would wait long is told instead.
    async fn one_at_a_time(&self) -> Result<tokio::sync::MutexGuard<'_, ()>, SqlError> {
        tokio::time::timeout(BUSY_WAIT, self.busy.lock())
            .await
            .map_err(|_| {
                SqlError::new(
                    1205,
                    "HY000",
                    "another admin statement is running (a LOAD or VALIDATE reading many rows, \
                     CREATE MISSING TABLES); try again when it is done",
                )
            })
    }

    /// Runs one admin statement.
    pub async fn execute(self: &Arc<Self>, who: &Who, sql: &str) -> Result<Reply, SqlError> {
        let _one_at_a_time = self.one_at_a_time().await?;
        self.blocking(|p, store| p.catch_up(store)).await?;
        let stmt = statement::parse(sql).map_err(SqlError::syntax)?;
        match stmt {
            Statement::Sql => self.run_sql(who, sql).await,
            Statement::Validate => self.validate().await,
            Statement::LoadToRuntime { force } => self.load(who, sql, force).await,
            Statement::SaveToDisk => self.save(who, sql).await,
            Statement::LoadFromDisk => self.load_from_disk(who, sql).await,
            Statement::ShowHistory => self.history().await,
            Statement::Rollback { version, force } => self.rollback(who, sql, version, force).await,
            Statement::Export => self.export().await,
            Statement::Diff => self.diff().await,
            Statement::CreateMissingTables => self.create_missing_tables(who, sql).await,
        }
    }

    /// A DBA's SQL on the admin tables; changes are audited.
    async fn run_sql(self: &Arc<Self>, who: &Who, sql: &str) -> Result<Reply, SqlError> {
        let (sql, who) = (sql.to_string(), who.clone());
        self.blocking(move |p, store| {
            let result = store.run(&sql).map_err(sql_error);
            let changed = match &result {
                Ok(ran) => ran.changed,
                // Refused or failed: audited when it meant to change something. The
                // error's text may quote the statement (a password): only its code.
                Err(_) => statement::changes_rows(&sql),
            };
            if changed {
                let outcome = match &result {
                    Ok(ran) => match &ran.outcome {
                        Outcome::Changed(n) => format!("ok: {n} rows"),
                        Outcome::Rows { rows, .. } => format!("ok: {} rows", rows.len()),
                    },
                    Err(e) => format!("error {}", e.code),
                };
                p.audit(store, &who, &sql, None, &outcome)?;
            }
            Ok(match result?.outcome {
                Outcome::Changed(affected) => Reply::Done { affected },
                Outcome::Rows { columns, rows } => Reply::Rows {
                    columns: columns.iter().map(|c| LocalColumn::text(c)).collect(),
                    rows,
                },
            })
        })
        .await
    }

    /// The version in effect, after noting changes made elsewhere (a SIGHUP reload, a
    /// followed promotion) in the runtime tables and the history.
    fn catch_up(&self, store: &mut Store) -> Result<i64, SqlError> {
        let topo = self.topology.load();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.0 != topo.generation {
            // The staged entries the DBA did not touch follow the change, so a LOAD
            // never undoes it unseen; entries both changed stay as staged (SHOW CONFIG
            // DIFF shows them) and are logged.
            let before = store.runtime().map_err(store_error)?;
            let staged = store.staged().map_err(store_error)?;
            let (rebased, conflicts) = admin::diff::rebase(&staged, &before, &topo.document);
            if rebased != staged {
                store.stage(&rebased).map_err(store_error)?;
            }
            if !conflicts.is_empty() {
                tracing::warn!(entries = ?conflicts, "the layout changed outside the admin port where staged edits differ; LOAD would put the staged ones in effect");
            }
            store.set_runtime(&topo.document).map_err(store_error)?;
            let version = store
                .record(
                    &topo.document,
                    "shardgate",
                    "outside admin (reload or promotion)",
                    false,
                )
                .map_err(store_error)?;
            *seen = (topo.generation, version);
        }
        Ok(seen.1)
    }

    /// Notes `generation` (just put in effect) as `version`.
    fn now_in_effect(&self, generation: u64, version: i64) {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = (generation, version);
    }

    fn audit(
        &self,
        store: &mut Store,
        who: &Who,
        sql: &str,
        after: Option<i64>,
        outcome: &str,
    ) -> Result<(), SqlError> {
        let before = self.seen.lock().unwrap_or_else(|p| p.into_inner()).1;
        let masked = statement::masked(sql);
        let after = after.unwrap_or(before);
        tracing::info!(
            target: "shardgate::audit",
            user = %who.user,
            client = %who.client,
            statement = %masked,
            version_before = before,
            version_after = after,
            outcome,
            "admin change"
        );
        store
            .audit(&AuditEntry {
                user: &who.user,
                client: &who.client,
                statement: &masked,
                version_before: before,
                version_after: after,
                outcome,
            })
            .map_err(store_error)
    }

    /// Runs `f` with the store on a blocking thread.
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&AdminPlane, &mut Store) -> Result<T, SqlError> + Send + 'static,
    ) -> Result<T, SqlError> {
        let plane = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = plane.store.lock().unwrap_or_else(|p| p.into_inner());
            f(&plane, &mut store)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "an admin statement's task failed");
            SqlError::internal("the admin statement failed inside shardgate (see its log); nothing was changed by it after the failure")
        })?
    }
}

/// A connection of shardgate's own to `node`'s primary (not from the pools: admin
/// work never takes a client's place there).
async fn primary_conn(
    rt: &rules::Runtime,
    node: rules::NodeId,
    timeout: std::time::Duration,
) -> Result<crate::backend::BackendConn, crate::wire::WireError> {
    let n = &rt.nodes[node];
    let target = crate::backend::BackendServer {
        label: format!("{}/primary", n.name),
        address: n.primary.to_string(),
        user: n.user.clone(),
        password: n.password.clone(),
        track_gtid: false,
        // Copies, checksums and DDL over whole tables are silent for long: the
        // statement-sized read timeout is not theirs.
        read_timeout: None,
        tls: crate::backend::link::BackendTls::of(n),
    };
    crate::backend::BackendConn::connect(&target, crate::backend::Flavor::default(), None, timeout)
        .await
}

/// An identifier in backticks, for SQL shardgate writes itself.
fn quote_ident(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

/// A string literal (safe with and without NO_BACKSLASH_ESCAPES).
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// The tables of database `db` (lowercase), asked on `conn`.
async fn tables_in(
    conn: &mut crate::backend::BackendConn,
    db: &str,
) -> Result<std::collections::HashSet<String>, crate::wire::WireError> {
    let sql = format!(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {}",
        quote_literal(db)
    );
    let mut names = std::collections::HashSet::new();
    conn.query_each(sql.as_bytes(), |_, f| {
        if let Some(Some(n)) = f.first() {
            names.insert(String::from_utf8_lossy(n).to_lowercase());
        }
    })
    .await?;
    Ok(names)
}

/// An admin database error as the client sees it.
fn sql_error(e: AdminError) -> SqlError {
    match e {
        AdminError::Denied(why) => SqlError::specific_access_denied(why),
        AdminError::Sql(e) => {
            let message = e.to_string();
            let code = match &e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    if message.contains("UNIQUE") {
                        (1062, "23000")
                    } else if message.contains("NOT NULL") {
                        (1048, "23000")
                    } else {
                        (1105, "HY000")
                    }
                }
                _ if message.contains("no such table") => (1146, "42S02"),
                _ if message.contains("no such column") => (1054, "42S22"),
                _ if message.contains("syntax error") || message.contains("incomplete input") => {
                    (1064, "42000")
                }
                _ => (1105, "HY000"),
            };
            SqlError::new(code.0, code.1, format!("admin SQL (SQLite): {message}"))
        }
        AdminError::Store(m) => SqlError::internal(m),
    }
}

fn store_error(e: AdminError) -> SqlError {
    SqlError::internal(format!("the admin database: {e}"))
}
