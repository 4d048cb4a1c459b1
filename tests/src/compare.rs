//! Comparing answers of shardgate and of one plain MariaDB holding the same rows.
//!
//! Rules: rows are compared in order only under a total ORDER BY; floating-point
//! results to 12 significant digits (shards add in another order); strings as the
//! case-insensitive collations compare them (the server may pick any spelling of a
//! group), so both sides are folded the same way.

use mysql_async::prelude::*;
use mysql_async::{Conn, Value};

/// A value as the comparison rules see it.
pub fn normal(v: &Value) -> String {
    match v {
        Value::NULL => "NULL".into(),
        Value::Bytes(b) => {
            let s = String::from_utf8_lossy(b);
            if s.contains(['.', 'e', 'E']) {
                if let Ok(f) = s.parse::<f64>() {
                    return format!("{f:.11e}");
                }
            }
            s.trim_end()
                .to_lowercase()
                .replace(['é', 'è'], "e")
                .replace('ë', "e")
        }
        other => format!("{other:?}"),
    }
}

/// Rows of a text-protocol answer, normalized. A DOUBLE or FLOAT column's values are
/// compared as floating-point numbers even when one side prints an integer (`30`
/// where rows added in another order give `30.000000000000004`).
pub async fn answer(c: &mut Conn, sql: &str) -> Result<Vec<Vec<String>>, mysql_async::Error> {
    use mysql_async::consts::ColumnType;
    let rows: Vec<mysql_async::Row> = c.query(sql).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let floats: Vec<bool> = r
                .columns_ref()
                .iter()
                .map(|c| {
                    matches!(
                        c.column_type(),
                        ColumnType::MYSQL_TYPE_DOUBLE | ColumnType::MYSQL_TYPE_FLOAT
                    )
                })
                .collect();
            r.unwrap()
                .iter()
                .zip(floats)
                .map(|(v, float)| match (v, float) {
                    (Value::Bytes(b), true) => String::from_utf8_lossy(b)
                        .parse::<f64>()
                        .map_or_else(|_| normal(v), |f| format!("{f:.11e}")),
                    _ => normal(v),
                })
                .collect()
        })
        .collect())
}

/// Equal answers; without a total order, equal as multisets of rows.
pub fn same(mut got: Vec<Vec<String>>, mut want: Vec<Vec<String>>, ordered: bool) -> bool {
    if !ordered {
        got.sort();
        want.sort();
    }
    got == want
}

/// Seeded-run settings: `SHARDGATE_DIFF_QUERIES` (else `default`) and
/// `SHARDGATE_DIFF_SEED` (else `seed`).
pub fn run_size(default: usize, seed: u64) -> (usize, u64) {
    let queries = std::env::var("SHARDGATE_DIFF_QUERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let seed = std::env::var("SHARDGATE_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(seed);
    (queries, seed)
}

/// What running statements through shardgate and against the oracle found.
#[derive(Default)]
pub struct Differences {
    pub compared: usize,
    /// Statements MariaDB itself refuses (an overflow, say): nothing to compare.
    pub invalid: usize,
    pub failures: Vec<String>,
}

/// Runs each statement (with whether its order is total) through shardgate and
/// against the oracle. A refusal by shardgate is a failure: every SELECT is to be
/// answered.
pub async fn compare_all(
    sharded: &mut Conn,
    oracle: &mut Conn,
    statements: impl IntoIterator<Item = (String, bool)>,
) -> Differences {
    let mut d = Differences::default();
    for (sql, ordered) in statements {
        let Ok(want) = answer(oracle, &sql).await else {
            d.invalid += 1;
            continue;
        };
        d.compared += 1;
        match answer(sharded, &sql).await {
            Ok(got) if same(got.clone(), want.clone(), ordered) => {}
            Ok(got) => d.failures.push(format!(
                "{sql}\n  shardgate: {got:?}\n  mariadb:   {want:?}"
            )),
            Err(e) => d.failures.push(format!("{sql}\n  shardgate failed: {e}")),
        }
    }
    d
}

impl Differences {
    /// Fails the test on any difference, or when too little was compared to prove
    /// anything (under three quarters of `planned`).
    pub fn assert_none(&self, what: &str, planned: usize, seed: u64) {
        eprintln!(
            "{what} (seed {seed}): {} compared, {} invalid, {} wrong",
            self.compared,
            self.invalid,
            self.failures.len()
        );
        assert!(
            self.failures.is_empty(),
            "{} of {planned} queries differ (seed {seed}); first ones:\n{}",
            self.failures.len(),
            self.failures
                .iter()
                .take(8)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            self.compared > planned * 3 / 4,
            "only {} of {planned} compared",
            self.compared
        );
    }
}
