//! The admin database: staged and runtime tables, the history of layouts put in
//! effect, and the audit of every change. One SQLite file (or memory, when there is
//! nowhere to keep it), used by one admin statement at a time.

use std::path::Path;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{params, Connection, OptionalExtension};
use toml::Table;

use crate::tables;
use crate::AdminError;

/// What a DBA's SQL returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Option<String>>>,
    },
    Changed(u64),
}

/// A DBA's SQL as run: its answer, and whether it was a change (audited).
#[derive(Debug, Clone, PartialEq)]
pub struct Ran {
    pub outcome: Outcome,
    pub changed: bool,
}

/// The most a DBA's query may return: admin answers are held whole to be sent.
const MAX_RESULT_BYTES: usize = 64 * 1024 * 1024;

/// A layout put in effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub version: i64,
    /// Unix seconds.
    pub applied_at: i64,
    pub applied_by: String,
    /// What put it in effect: `start`, `load`, `rollback`, `disk`, `promotion`.
    pub source: String,
    pub document: Table,
}

/// One line of the audit.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry<'a> {
    pub user: &'a str,
    pub client: &'a str,
    pub statement: &'a str,
    pub version_before: i64,
    pub version_after: i64,
    pub outcome: &'a str,
}

pub struct Store {
    db: Connection,
}

/// How long a DBA's statement may run on the admin database.
const SQL_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Tables DBAs change with their own SQL.
fn writable(table: &str) -> bool {
    tables::TABLES.contains(&table)
}

impl Store {
    /// Opens `dir/admin.sqlite`, or a store in memory when `dir` is `None`.
    pub fn open(dir: Option<&Path>) -> Result<Store, AdminError> {
        let db = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    AdminError::Store(format!("cannot create {}: {e}", dir.display()))
                })?;
                // It holds every backend's password: its owner's only. SQLite gives
                // its WAL and shared-memory files the database file's mode.
                let path = dir.join("admin.sqlite");
                {
                    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
                    let cannot = |e: std::io::Error| {
                        AdminError::Store(format!("cannot open {}: {e}", path.display()))
                    };
                    let f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .mode(0o600)
                        .open(&path)
                        .map_err(cannot)?;
                    // One an older shardgate made too.
                    f.set_permissions(std::fs::Permissions::from_mode(0o600))
                        .map_err(cannot)?;
                }
                Connection::open(&path)?
            }
            None => Connection::open_in_memory()?,
        };
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS config_history (
                version INTEGER PRIMARY KEY,
                applied_at INTEGER NOT NULL,
                applied_by TEXT NOT NULL,
                source TEXT NOT NULL,
                document TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS config_audit (
                id INTEGER PRIMARY KEY,
                at INTEGER NOT NULL,
                user TEXT NOT NULL,
                client TEXT NOT NULL,
                statement TEXT NOT NULL,
                version_before INTEGER NOT NULL,
                version_after INTEGER NOT NULL,
                outcome TEXT NOT NULL);",
        )?;
        // The staged and runtime tables are written from the config at every start:
        // made anew, so a file from an older shardgate never keeps an older shape.
        for prefix in ["", "runtime_"] {
            for t in tables::TABLES {
                db.execute_batch(&format!("DROP TABLE IF EXISTS {prefix}{t}"))?;
            }
            db.execute_batch(&tables::ddl(prefix))?;
        }
        Ok(Store { db })
    }

    /// Replaces the staged tables with `doc`.
    pub fn stage(&mut self, doc: &Table) -> Result<(), AdminError> {
        let tx = self.db.transaction()?;
        tables::write(&tx, "", doc)?;
        tx.commit()?;
        Ok(())
    }

    /// The layout the staged tables hold.
    pub fn staged(&self) -> Result<Table, AdminError> {
        Ok(tables::read(&self.db, "")?)
    }

    /// The layout the runtime tables show.
    pub fn runtime(&self) -> Result<Table, AdminError> {
        Ok(tables::read(&self.db, "runtime_")?)
    }

    /// Shows `doc` as the layout in effect.
    pub fn set_runtime(&mut self, doc: &Table) -> Result<(), AdminError> {
        let tx = self.db.transaction()?;
        tables::write(&tx, "runtime_", doc)?;
        tx.commit()?;
        Ok(())
    }

    /// Records `doc` as put in effect, and returns its version number. A layout equal
    /// to the latest version's is that version, unless `always`.
    pub fn record(
        &mut self,
        doc: &Table,
        by: &str,
        source: &str,
        always: bool,
    ) -> Result<i64, AdminError> {
        if let Some(last) = self.latest()? {
            if !always && last.document == *doc {
                return Ok(last.version);
            }
        }
        let text = toml::to_string(doc).map_err(|e| AdminError::Store(e.to_string()))?;
        self.db.execute(
            "INSERT INTO config_history (applied_at, applied_by, source, document)
             VALUES (?1, ?2, ?3, ?4)",
            params![now(), by, source, text],
        )?;
        Ok(self.db.last_insert_rowid())
    }

    pub fn latest(&self) -> Result<Option<Version>, AdminError> {
        let v: Option<i64> = self
            .db
            .query_row("SELECT MAX(version) FROM config_history", [], |r| r.get(0))
            .optional()?
            .flatten();
        match v {
            Some(v) => self.version(v),
            None => Ok(None),
        }
    }

    /// Version `v` of the history.
    pub fn version(&self, v: i64) -> Result<Option<Version>, AdminError> {
        let row = self
            .db
            .query_row(
                "SELECT version, applied_at, applied_by, source, document
                 FROM config_history WHERE version = ?1",
                [v],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((version, applied_at, applied_by, source, text)) = row else {
            return Ok(None);
        };
        let document = toml::from_str(&text)
            .map_err(|e| AdminError::Store(format!("config_history version {v}: {e}")))?;
        Ok(Some(Version {
            version,
            applied_at,
            applied_by,
            source,
            document,
        }))
    }

    /// Appends to the audit.
    pub fn audit(&mut self, e: &AuditEntry<'_>) -> Result<(), AdminError> {
        self.db.execute(
            "INSERT INTO config_audit
             (at, user, client, statement, version_before, version_after, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                now(),
                e.user,
                e.client,
                e.statement,
                e.version_before,
                e.version_after,
                e.outcome
            ],
        )?;
        Ok(())
    }

    /// Runs a DBA's SQL: reads of any table, changes to the staged tables only.
    pub fn run(&mut self, sql: &str) -> Result<Ran, AdminError> {
        let denied = Arc::new(std::sync::Mutex::new(None::<String>));
        let wrote = Arc::new(AtomicBool::new(false));
        let (seen, writes) = (denied.clone(), wrote.clone());
        self.db.authorizer(Some(move |ctx: AuthContext<'_>| {
            let verdict = judge(&ctx.action);
            match &verdict {
                Err(why) => {
                    if let Ok(mut s) = seen.lock() {
                        s.get_or_insert_with(|| why.clone());
                    }
                }
                Ok(())
                    if matches!(
                        ctx.action,
                        AuthAction::Insert { .. }
                            | AuthAction::Update { .. }
                            | AuthAction::Delete { .. }
                    ) =>
                {
                    writes.store(true, Ordering::Relaxed);
                }
                Ok(()) => {}
            }
            match verdict {
                Ok(()) => Authorization::Allow,
                Err(_) => Authorization::Deny,
            }
        }));
        // A runaway query (a recursive CTE without end) would hold the admin
        // database from every other DBA: it stops after a while.
        let started = std::time::Instant::now();
        self.db
            .progress_handler(10_000, Some(move || started.elapsed() > SQL_TIME_LIMIT));
        let result = self.run_allowed(sql, &wrote);
        self.db.progress_handler(0, None::<fn() -> bool>);
        self.db
            .authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
        let why = denied.lock().ok().and_then(|mut d| d.take());
        match (result, why) {
            (Err(_), Some(why)) => Err(AdminError::Denied(why)),
            (Err(_), None) if started.elapsed() > SQL_TIME_LIMIT => {
                Err(AdminError::Store(format!(
                    "the statement was stopped after {} s",
                    SQL_TIME_LIMIT.as_secs()
                )))
            }
            (r, _) => r,
        }
    }

    fn run_allowed(&mut self, sql: &str, wrote: &AtomicBool) -> Result<Ran, AdminError> {
        let mut stmt = self.db.prepare(sql)?;
        // Statements the authorizer is never asked about (VACUUM, VACUUM INTO a file
        // of the DBA's choosing) change the database without a write it saw: only a
        // statement that reads, or writes what the authorizer allowed, runs.
        let changed = !stmt.readonly();
        if changed && !wrote.load(Ordering::Relaxed) {
            return Err(AdminError::Denied(
                "not allowed on the admin port: admin SQL reads any table and changes rows of the staged tables"
                    .into(),
            ));
        }
        let n = stmt.column_count();
        if n == 0 {
            let affected = stmt.execute([])?;
            return Ok(Ran {
                outcome: Outcome::Changed(affected as u64),
                changed,
            });
        }
        let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
        let mut rows = Vec::new();
        let mut bytes = 0usize;
        let mut query = stmt.query([])?;
        while let Some(r) = query.next()? {
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                let v = tables::text_of(r.get_ref(i)?);
                bytes += v.as_ref().map_or(1, String::len);
                row.push(v);
            }
            if bytes > MAX_RESULT_BYTES {
                return Err(AdminError::Store(format!(
                    "the result is over {} MiB; select less (LIMIT, fewer columns)",
                    MAX_RESULT_BYTES >> 20
                )));
            }
            rows.push(row);
        }
        Ok(Ran {
            outcome: Outcome::Rows { columns, rows },
            changed,
        })
    }
}

/// What a DBA's SQL may do: read anything, change rows of the staged tables, run
/// functions; no transactions (the store is shared by every admin session, and each
/// statement commits on its own), nothing that changes the database's shape, its
/// history or audit, or reaches another file.
fn judge(action: &AuthAction<'_>) -> Result<(), String> {
    use AuthAction::*;
    match action {
        Select | Read { .. } | Function { .. } | Recursive => Ok(()),
        // Reading a table's shape.
        Pragma { pragma_name, .. }
            if matches!(*pragma_name, "table_info" | "table_xinfo" | "table_list" | "index_list") =>
        {
            Ok(())
        }
        Insert { table_name } | Delete { table_name } | Update { table_name, .. }
            if writable(table_name) =>
        {
            Ok(())
        }
        Insert { table_name } | Delete { table_name } | Update { table_name, .. } => Err(
            format!(
                "`{table_name}` is read-only; change the staged tables ({}) and LOAD CONFIG TO RUNTIME",
                tables::TABLES.join(", ")
            ),
        ),
        other => Err(format!(
            "not allowed on the admin port: {}; admin SQL reads any table and changes rows of the staged tables",
            describe(other)
        )),
    }
}

fn describe(action: &AuthAction<'_>) -> String {
    let text = format!("{action:?}");
    text.split([' ', '{', '('])
        .next()
        .unwrap_or("this")
        .to_string()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dba_sql_changes_only_staged_rows() {
        let mut s = Store::open(None).expect("store");
        let doc: Table =
            toml::from_str("[nodes.dn1]\nprimary = \"a:1\"\nuser = \"u\"\n").expect("toml");
        s.stage(&doc).expect("staged");
        s.set_runtime(&doc).expect("runtime");
        let ran = s
            .run("UPDATE nodes SET primary_address = 'b:2' WHERE name = 'dn1'")
            .expect("staged change");
        assert_eq!((ran.outcome, ran.changed), (Outcome::Changed(1), true));
        for sql in [
            "UPDATE runtime_nodes SET primary_address = 'b:2'",
            "DELETE FROM config_audit",
            "DROP TABLE nodes",
            "ATTACH DATABASE '/tmp/x.sqlite' AS x",
            "PRAGMA journal_mode = DELETE",
            "CREATE TABLE t (a)",
            "VACUUM",
            "VACUUM INTO '/tmp/admin-copy.sqlite'",
            "CREATE TRIGGER x AFTER INSERT ON nodes BEGIN DELETE FROM users; END",
        ] {
            let e = s.run(sql).expect_err(sql);
            assert!(matches!(e, AdminError::Denied(_)), "{sql}: {e}");
        }
        let ran = s
            .run("SELECT name, primary_address FROM nodes UNION ALL SELECT name, primary_address FROM runtime_nodes")
            .expect("read");
        assert!(!ran.changed);
        let Outcome::Rows { columns, rows } = ran.outcome else {
            panic!("rows expected");
        };
        assert_eq!(columns, ["name", "primary_address"]);
        assert_eq!(
            rows,
            vec![
                vec![Some("dn1".into()), Some("b:2".into())],
                vec![Some("dn1".into()), Some("a:1".into())]
            ]
        );
        // Authorised again after a refusal: the hook is per statement.
        assert_eq!(
            s.run("/* hidden */ DELETE FROM replicas")
                .expect("staged change"),
            Ran {
                outcome: Outcome::Changed(0),
                changed: true
            }
        );
        assert!(!std::path::Path::new("/tmp/admin-copy.sqlite").exists());
        // Text that is not UTF-8, in a result and in a staged table.
        let ran = s.run("SELECT CAST(X'C328' AS TEXT)").expect("read");
        assert!(matches!(ran.outcome, Outcome::Rows { .. }));
        s.run("UPDATE nodes SET user = CAST(X'C328' AS TEXT)")
            .expect("staged change");
        assert!(s.staged().is_ok());
    }

    #[test]
    fn history_numbers_each_new_layout() {
        let mut s = Store::open(None).expect("store");
        let a: Table = toml::from_str("x = 1").expect("toml");
        let b: Table = toml::from_str("x = 2").expect("toml");
        assert_eq!(s.record(&a, "me", "start", false).expect("v1"), 1);
        assert_eq!(s.record(&a, "me", "start", false).expect("same"), 1);
        assert_eq!(s.record(&b, "me", "load", false).expect("v2"), 2);
        assert_eq!(s.record(&b, "me", "load", true).expect("v3"), 3);
        let v1 = s.version(1).expect("read").expect("kept");
        assert_eq!((v1.document, v1.source.as_str()), (a, "start"));
    }
}
