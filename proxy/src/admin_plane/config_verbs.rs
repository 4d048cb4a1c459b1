//! The config verbs: VALIDATE, LOAD TO RUNTIME, SAVE TO DISK, LOAD FROM DISK,
//! SHOW CONFIG HISTORY, ROLLBACK CONFIG TO, EXPORT CONFIG, SHOW CONFIG DIFF.

use std::path::Path;
use std::sync::Arc;

use admin::store::Outcome;
use toml::Table;

use super::moves::{self, Depth, Left};
use super::{sql_error, store_error, AdminPlane, Reply, Who};
use crate::config::document::{with_layout, LAYOUT_KEYS};
use crate::wire::SqlError;

/// Keys sampled per physical table by VALIDATE CONFIG.
const SAMPLE_ROWS: u64 = 1000;
/// Previous config files SAVE CONFIG TO DISK keeps (`shardgate.toml.1`, `.2`, …).
const KEEP_PREVIOUS: usize = 20;

impl AdminPlane {
    pub(super) async fn staged(self: &Arc<Self>) -> Result<Table, SqlError> {
        self.blocking(|_, store| store.staged().map_err(sql_error))
            .await
    }

    /// Every problem of the staged layout under its key and staged row; for tables
    /// whose placement changes, the share of sampled rows that would be left behind.
    pub(super) async fn validate(self: &Arc<Self>) -> Result<Reply, SqlError> {
        let staged = self.staged().await?;
        let columns = ["status", "key", "staged_row", "message"];
        let layout = match self.topology.validate(&staged) {
            Ok(l) => l,
            Err(errors) => {
                let rows = errors
                    .iter()
                    .map(|e| {
                        vec![
                            Some("error".into()),
                            Some(e.key.clone()),
                            Some(admin::diff::staged_place(&e.key, &staged)),
                            Some(e.message.clone()),
                        ]
                    })
                    .collect();
                return Ok(Reply::text(&columns, rows));
            }
        };
        let old = self.topology.load();
        let changes = admin::diff::diff(&old.document, &staged).len();
        let mut rows = Vec::new();
        match moves::check(
            &old,
            &layout.runtime,
            &layout.cluster,
            Depth::Sample(SAMPLE_ROWS),
            self.connect_timeout,
        )
        .await
        {
            Ok(left) => {
                for l in left {
                    let share = 100.0 * l.left as f64 / l.read.max(1) as f64;
                    rows.push(vec![
                        Some(if l.left > 0 { "moves" } else { "ok" }.into()),
                        Some(l.table.clone()),
                        None,
                        Some(format!(
                            "{share:.1}% of {} sampled rows would be where the new layout does not look ({}){}",
                            l.read,
                            l.detail,
                            if l.left > 0 {
                                "; move them before LOAD CONFIG TO RUNTIME, which counts every row"
                            } else {
                                ""
                            }
                        )),
                    ]);
                }
            }
            Err(e) => rows.push(vec![
                Some("warning".into()),
                None,
                None,
                Some(format!("rows not checked: {e}")),
            ]),
        }
        rows.push(vec![
            Some("ok".into()),
            None,
            None,
            Some(format!(
                "the staged config is valid; {changes} key{} differ{} from the runtime (SHOW CONFIG DIFF)",
                if changes == 1 { "" } else { "s" },
                if changes == 1 { "s" } else { "" }
            )),
        ]);
        Ok(Reply::text(&columns, rows))
    }

    /// Validates the staged layout, checks that no row would be left behind (unless
    /// `force`), and puts it in effect.
    pub(super) async fn load(
        self: &Arc<Self>,
        who: &Who,
        sql: &str,
        force: bool,
    ) -> Result<Reply, SqlError> {
        let staged = self.staged().await?;
        self.apply(who, sql, staged, force, "load").await
    }

    /// Puts `doc` in effect as `source`; refusals are audited too.
    pub(super) async fn apply(
        self: &Arc<Self>,
        who: &Who,
        sql: &str,
        doc: Table,
        force: bool,
        source: &str,
    ) -> Result<Reply, SqlError> {
        let refused = |p: &Arc<Self>, e: SqlError| {
            let (who, sql, p) = (who.clone(), sql.to_string(), p.clone());
            let outcome = format!("refused: {}", e.message);
            async move {
                p.blocking(move |p, store| p.audit(store, &who, &sql, None, &outcome))
                    .await?;
                Err::<Reply, SqlError>(e)
            }
        };
        let layout = match self.topology.validate(&doc) {
            Ok(l) => l,
            Err(errors) => {
                let list: Vec<String> = errors
                    .iter()
                    .map(|e| {
                        format!(
                            "{} [{}]: {}",
                            e.key,
                            admin::diff::staged_place(&e.key, &doc),
                            e.message
                        )
                    })
                    .collect();
                let e = SqlError::internal(format!(
                    "the staged config is invalid; the runtime is unchanged. {}",
                    list.join("; ")
                ));
                return refused(self, e).await;
            }
        };
        let old = self.topology.load();
        let left = match moves::check(
            &old,
            &layout.runtime,
            &layout.cluster,
            Depth::Full,
            self.connect_timeout,
        )
        .await
        {
            Ok(l) => l,
            Err(e) if !force => {
                let e = SqlError::internal(format!(
                    "cannot check that every row stays where the new layout looks ({e}); the runtime \
                     is unchanged. Fix the node, or LOAD CONFIG TO RUNTIME FORCE to skip the check"
                ));
                return refused(self, e).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "LOAD CONFIG TO RUNTIME FORCE: rows not checked");
                Vec::new()
            }
        };
        let stranded: Vec<&Left> = left.iter().filter(|l| l.left > 0).collect();
        let total: u64 = stranded.iter().map(|l| l.left).sum();
        if total > 0 && !force {
            let list: Vec<String> = stranded
                .iter()
                .map(|l| format!("{}: {} of {} rows ({})", l.table, l.left, l.read, l.detail))
                .collect();
            let again = if source.starts_with("rollback") {
                sql.trim().trim_end_matches(';').to_string() + " FORCE"
            } else {
                "LOAD CONFIG TO RUNTIME FORCE".to_string()
            };
            let e = SqlError::internal(format!(
                "{total} existing rows are not where the new layout looks for them: {}. \
                 shardgate does not move rows; the runtime is unchanged. Move them first, then \
                 {again}",
                list.join("; ")
            ));
            return refused(self, e).await;
        }
        // Open-ended date tables get their periods' tables before the layout that
        // routes to them (a raised `ahead`, a new rule).
        let made = super::periods::create_ahead(&layout.runtime, self.connect_timeout).await;
        if made.failed > 0 {
            tracing::warn!(
                failed = made.failed,
                "open-ended date tables not all created at LOAD; the periodic check retries"
            );
        }
        let doc = layout.document();
        // Over the layout the rows were checked against: a promotion or reload that
        // came meanwhile is not undone.
        let Some(next) = self.topology.install_over(layout, old.generation) else {
            let e = SqlError::internal(
                "the layout in effect changed while the rows were checked (a followed \
                 promotion, a reload or new date periods); nothing was changed: SHOW CONFIG \
                 DIFF, then run it again",
            );
            return refused(self, e).await;
        };
        let (who2, sql2, source2) = (who.clone(), sql.to_string(), source.to_string());
        let generation = next.generation;
        let recorded = self
            .blocking(move |p, store| {
                store.set_runtime(&doc).map_err(store_error)?;
                // Staged as written out, so that SHOW CONFIG DIFF is empty again.
                store.stage(&doc).map_err(store_error)?;
                let version = store
                    .record(&doc, &who2.user, &source2, true)
                    .map_err(store_error)?;
                let outcome = if total > 0 {
                    format!("ok, forced: {total} rows where the new layout does not look")
                } else {
                    "ok".to_string()
                };
                p.audit(store, &who2, &sql2, Some(version), &outcome)?;
                p.now_in_effect(generation, version);
                Ok(version)
            })
            .await;
        let version = recorded.map_err(|e| {
            SqlError::internal(format!(
                "the new layout IS in effect, but recording it failed ({}); SHOW CONFIG HISTORY \
                 notes it at the next admin statement",
                e.message
            ))
        })?;
        let message = if total > 0 {
            format!(
                "in effect; {total} rows are where the new layout does not look (forced): {}",
                stranded
                    .iter()
                    .map(|l| format!("{} {}", l.table, l.left))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            "in effect; statements from now on use it".to_string()
        };
        Ok(Reply::text(
            &["version", "rows_left", "message"],
            vec![vec![
                Some(version.to_string()),
                Some(total.to_string()),
                Some(message),
            ]],
        ))
    }

    /// Writes the layout in effect into the config file (atomically), keeping the
    /// previous file as `<file>.<n>`.
    pub(super) async fn save(self: &Arc<Self>, who: &Who, sql: &str) -> Result<Reply, SqlError> {
        let path = self.config_file()?.to_path_buf();
        let runtime = self.topology.load().document.clone();
        let (who, sql) = (who.clone(), sql.to_string());
        self.blocking(move |p, store| {
            let result = p
                .file_table()
                .and_then(|base| write_config(&path, base, &runtime));
            let outcome = match &result {
                Ok(kept) => format!("ok: {} written, previous kept as {kept}", path.display()),
                Err(e) => format!("error: {}", e.message),
            };
            p.audit(store, &who, &sql, None, &outcome)?;
            let kept = result?;
            Ok(Reply::text(
                &["file", "previous", "message"],
                vec![vec![
                    Some(path.display().to_string()),
                    Some(kept),
                    Some("the layout in effect is saved; the next start reads it".into()),
                ]],
            ))
        })
        .await
    }

    /// Stages the layout of the config file as it is on disk now.
    pub(super) async fn load_from_disk(
        self: &Arc<Self>,
        who: &Who,
        sql: &str,
    ) -> Result<Reply, SqlError> {
        let path = self.config_file()?.to_path_buf();
        let (who, sql) = (who.clone(), sql.to_string());
        self.blocking(move |p, store| {
            if !path.exists() {
                return Err(SqlError::internal(format!(
                    "{} does not exist yet: SAVE CONFIG TO DISK writes it",
                    path.display()
                )));
            }
            let file = read_table(&path)?;
            let layout: Table = file
                .into_iter()
                .filter(|(k, _)| LAYOUT_KEYS.contains(&k.as_str()))
                .collect();
            // In the form the tables hold (defaults written out), not validated yet.
            let layout = crate::config::document::normalized(&layout).map_err(|e| {
                SqlError::internal(format!(
                    "{} does not read as a config: {}; fix it first",
                    path.display(),
                    e.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ))
            })?;
            store.stage(&layout).map_err(store_error)?;
            p.audit(store, &who, &sql, None, "ok: staged from disk")?;
            Ok(Reply::text(
                &["file", "message"],
                vec![vec![
                    Some(path.display().to_string()),
                    Some("staged; SHOW CONFIG DIFF shows what differs from the runtime, LOAD CONFIG TO RUNTIME puts it in effect".into()),
                ]],
            ))
        })
        .await
    }

    pub(super) async fn history(self: &Arc<Self>) -> Result<Reply, SqlError> {
        self.blocking(|p, store| {
            let current = p.seen.lock().unwrap_or_else(|e| e.into_inner()).1;
            let sql = format!(
                "SELECT version, datetime(applied_at, 'unixepoch') AS applied_at_utc, applied_by, \
                 source, CASE version WHEN {current} THEN 'yes' ELSE '' END AS in_effect \
                 FROM config_history ORDER BY version"
            );
            match store.run(&sql).map_err(sql_error)?.outcome {
                Outcome::Rows { columns, rows } => Ok(Reply::Rows {
                    columns: columns
                        .iter()
                        .map(|c| crate::wire::resultset::LocalColumn::text(c))
                        .collect(),
                    rows,
                }),
                Outcome::Changed(_) => Ok(Reply::Done { affected: 0 }),
            }
        })
        .await
    }

    /// Stages version `v` of the history and puts it in effect.
    pub(super) async fn rollback(
        self: &Arc<Self>,
        who: &Who,
        sql: &str,
        v: i64,
        force: bool,
    ) -> Result<Reply, SqlError> {
        // Staged only once in effect: a refused rollback keeps the DBA's staged edits.
        let doc = self
            .blocking(move |_, store| {
                let version = store.version(v).map_err(store_error)?.ok_or_else(|| {
                    SqlError::internal(format!(
                        "there is no config version {v}; SHOW CONFIG HISTORY lists them"
                    ))
                })?;
                Ok(version.document)
            })
            .await?;
        self.apply(who, sql, doc, force, &format!("rollback to {v}"))
            .await
    }

    /// The config file as SAVE CONFIG TO DISK would write it, one line per row.
    pub(super) async fn export(self: &Arc<Self>) -> Result<Reply, SqlError> {
        let runtime = self.topology.load().document.clone();
        let text = toml::to_string(&with_layout(self.file_table()?, &runtime))
            .map_err(|e| SqlError::internal(format!("cannot render the config: {e}")))?;
        Ok(Reply::text(
            &["config"],
            text.lines().map(|l| vec![Some(l.to_string())]).collect(),
        ))
    }

    /// What differs between the staged layout and the one in effect.
    pub(super) async fn diff(self: &Arc<Self>) -> Result<Reply, SqlError> {
        let staged = self.staged().await?;
        let runtime = self.topology.load().document.clone();
        let rows = admin::diff::diff(&runtime, &staged)
            .into_iter()
            .map(|c| vec![Some(c.key), c.runtime, c.staged])
            .collect();
        Ok(Reply::text(&["key", "runtime", "staged"], rows))
    }

    fn config_file(&self) -> Result<&Path, SqlError> {
        self.config_file.as_deref().ok_or_else(|| {
            SqlError::internal(
                "shardgate runs without a config file and without --data-dir: EXPORT CONFIG \
                 shows the config as TOML; write it to a file and start with --config",
            )
        })
    }

    /// The config file's table as it is on disk; before the first save in
    /// zero-config mode, the settings shardgate was started with.
    fn file_table(&self) -> Result<Table, SqlError> {
        match &self.config_file {
            Some(path) if path.exists() => read_table(path),
            _ => Ok(self.fresh.clone()),
        }
    }
}

fn read_table(path: &Path) -> Result<Table, SqlError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SqlError::internal(format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| {
        SqlError::internal(format!(
            "{} does not parse as TOML ({}); fix it by hand first",
            path.display(),
            e.message()
        ))
    })
}

/// The directory a config file is in; `--config shardgate.toml` has the empty path
/// as its parent, which is the current directory.
fn directory_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
}

/// Writes the config file with `layout`, keeping its other sections; returns the
/// name the previous file was kept under.
fn write_config(path: &Path, file: Table, layout: &Table) -> Result<String, SqlError> {
    let io = |what: &str, e: std::io::Error| SqlError::internal(format!("cannot {what}: {e}"));
    let text = toml::to_string(&with_layout(file, layout))
        .map_err(|e| SqlError::internal(format!("cannot render the config: {e}")))?;
    // What the next start would read must start.
    crate::config::Config::from_toml(&text, &path.display().to_string())
        .map_err(|e| SqlError::internal(format!("not saved, the result would not start: {e}")))?;
    let dir = directory_of(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "shardgate.toml".into());
    let mut numbers: Vec<u64> = std::fs::read_dir(dir)
        .map_err(|e| io("list the config directory", e))?
        .filter_map(|e| {
            let n = e.ok()?.file_name().to_string_lossy().into_owned();
            n.strip_prefix(&format!("{name}."))?.parse().ok()
        })
        .collect();
    numbers.sort_unstable();
    let next = numbers.last().map_or(1, |n| n + 1);
    let kept = if path.exists() {
        let kept = dir.join(format!("{name}.{next}"));
        std::fs::copy(path, &kept).map_err(|e| io("keep the previous config", e))?;
        kept.display().to_string()
    } else {
        "(none: a new file)".to_string()
    };
    let tmp = dir.join(format!(".{name}.saving"));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        // It holds passwords: readable by its owner only, unless the old one said more.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io("write the config", e))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| io("write the config", e))?;
    }
    // The file holds passwords: the new one is as private as the old.
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path).map_err(|e| io("replace the config", e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    for old in numbers.iter().rev().skip(KEEP_PREVIOUS.saturating_sub(1)) {
        let _ = std::fs::remove_file(dir.join(format!("{name}.{old}")));
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_named_alone_is_in_the_current_directory() {
        assert_eq!(directory_of(Path::new("shardgate.toml")), Path::new("."));
        assert_eq!(
            directory_of(Path::new("/etc/sg/shardgate.toml")),
            Path::new("/etc/sg")
        );
        assert!(std::fs::read_dir(directory_of(Path::new("x.toml"))).is_ok());
    }
}
