//! SQL text and prepared parameters planned against a sharded layout (the router
//! tests' cluster), and shards' rows merged under the plans of sorting, limiting and
//! grouping reads.

use std::collections::VecDeque;
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use router::plan::MergeSpec;
use router::reading::Reading;
use router::Merge;
use rules::{ClusterConfig, Runtime, Value};

use super::steer;
use crate::merge::{ColumnInfo, Merger, Row};
use crate::wire::lenenc;

fn runtime() -> Option<&'static Runtime> {
    static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let text = include_str!("../../../router/tests/common/cluster.toml");
            let cluster: ClusterConfig = toml::from_str(text).ok()?;
            Runtime::build(&cluster).ok()
        })
        .as_ref()
}

const READINGS: [Reading; 3] = [
    Reading::DEFAULT,
    Reading {
        backslash_escapes: false,
        ansi_quotes: true,
        pipes_as_concat: true,
    },
    Reading {
        backslash_escapes: true,
        ansi_quotes: false,
        pipes_as_concat: true,
    },
];

pub fn route_sql(data: &[u8]) {
    let Some(rt) = runtime() else { return };
    let Some(shop) = rt.schemas.get("shop") else {
        return;
    };
    for reading in READINGS {
        let _ = router::classify::classify_in(data, reading);
        // What the access checks and the firewall read of every statement.
        let needs = router::privilege::needs_in(data, reading);
        let _ = router::plan::table_access(data, reading, &needs);
        let mut digest = Vec::new();
        crate::stats::digest::digest_as(data, &mut digest, reading, usize::MAX);
        crate::stats::digest::digest_as(
            data,
            &mut digest,
            reading,
            crate::stats::digest::MAX_DIGEST,
        );
        assert!(digest.len() <= crate::stats::digest::MAX_DIGEST);
        let _ = router::plan(data, shop, rt, reading);
        let _ = router::plan::plan_foreign(data, shop, rt, reading);
        if let Ok(Some(prepared)) = router::plan::prepare(data, shop, rt, reading) {
            // Parameters made from the statement's own bytes, of every kind.
            let params: Vec<Value> = (0..prepared.params.min(64))
                .map(|i| {
                    let b = data.get(i).copied().unwrap_or(0);
                    match b % 4 {
                        0 => Value::Null,
                        1 => Value::Int(i128::from(b) - 128 + (i as i128) * 1_000_003),
                        2 => Value::Decimal(format!("{}.{}", b, i)),
                        _ => Value::Text(
                            String::from_utf8_lossy(&data[i.min(data.len())..])
                                .chars()
                                .take(12)
                                .collect(),
                        ),
                    }
                })
                .collect();
            let _ = prepared.targets(&params);
        }
    }
}

/// Reads whose plans merge: sorting, limits, grouping, every aggregate.
const MERGE_SQL: [&str; 6] = [
    "SELECT id, user_id FROM orders ORDER BY user_id DESC, id LIMIT 3, 4",
    "SELECT user_id, COUNT(*), SUM(total), MIN(note), MAX(total), AVG(total) FROM orders GROUP BY user_id",
    "SELECT COUNT(*), SUM(total), AVG(total), MIN(created_at), MAX(note) FROM orders",
    "SELECT user_id, SUM(total) AS s FROM orders GROUP BY user_id ORDER BY s DESC LIMIT 2",
    "SELECT DISTINCT note FROM orders ORDER BY note",
    "SELECT user_id, GROUP_CONCAT(note), COUNT(DISTINCT note) FROM orders GROUP BY user_id ORDER BY user_id",
];

fn specs() -> &'static [MergeSpec] {
    static SPECS: OnceLock<Vec<MergeSpec>> = OnceLock::new();
    SPECS.get_or_init(|| {
        let Some(rt) = runtime() else {
            return Vec::new();
        };
        let Some(shop) = rt.schemas.get("shop") else {
            return Vec::new();
        };
        MERGE_SQL
            .iter()
            .filter_map(
                |sql| match router::plan(sql.as_bytes(), shop, rt, Reading::DEFAULT) {
                    Ok(Some(p)) => match p.merge {
                        Merge::Combine(spec) => Some(*spec),
                        _ => None,
                    },
                    _ => None,
                },
            )
            .collect()
    })
}

#[cfg(test)]
pub(super) fn specs_len() -> usize {
    specs().len()
}

/// A column definition of type `column_type` (the fields the merge reads).
fn definition(column_type: u8, decimals: u8) -> BytesMut {
    let mut d = BytesMut::new();
    for s in ["def", "shop", "t", "t", "c", "c"] {
        lenenc::put_str(&mut d, s.as_bytes());
    }
    d.extend_from_slice(&[0x0c]);
    d.extend_from_slice(&45u16.to_le_bytes());
    d.extend_from_slice(&64u32.to_le_bytes());
    d.extend_from_slice(&[column_type]);
    d.extend_from_slice(&0u16.to_le_bytes());
    d.extend_from_slice(&[decimals]);
    d.extend_from_slice(&[0, 0]);
    d
}

const TYPES: [u8; 8] = [8, 246, 253, 5, 12, 11, 247, 252];

pub fn merge_rows(data: &[u8]) {
    let specs = specs();
    if specs.is_empty() {
        return;
    }
    let (ctl, data) = steer(data);
    let spec = &specs[usize::from(ctl) % specs.len()];
    let mut bytes = data.iter().copied();
    let mut next = || bytes.next().unwrap_or(0);
    let kinds: Vec<u8> = (0..12).map(|_| next()).collect();
    // The first width the plan accepts.
    let Some((merger, width)) = (1..=12).find_map(|w| {
        let infos: Vec<ColumnInfo> = kinds[..w]
            .iter()
            .filter_map(|&k| {
                ColumnInfo::parse(&definition(TYPES[usize::from(k) % TYPES.len()], k % 6))
            })
            .collect();
        Merger::new(spec, infos).ok().map(|m| (m, w))
    }) else {
        return;
    };
    let mut merger = merger;
    let sources = 1 + usize::from(ctl >> 6);
    let mut queues: Vec<VecDeque<Row>> = vec![VecDeque::new(); sources];
    for _ in 0..512 {
        let b = next();
        if b == 0 && data.is_empty() {
            break;
        }
        let mut payload = BytesMut::new();
        for _ in 0..width {
            let v = next();
            if v < 24 {
                payload.extend_from_slice(&[0xFB]);
            } else if v & 0x40 != 0 {
                let n = format!(
                    "{}{}.{:02}",
                    if v & 1 == 1 { "-" } else { "" },
                    next(),
                    next() % 100
                );
                lenenc::put_str(&mut payload, n.as_bytes());
            } else {
                let len = usize::from(v % 9);
                let s: Vec<u8> = (0..len).map(|_| next()).collect();
                lenenc::put_str(&mut payload, &s);
            }
        }
        if let Some(row) = Row::parse(Bytes::from(payload), width) {
            queues[usize::from(b) % sources].push_back(row);
        }
        if bytes_left(data, width) {
            continue;
        }
        break;
    }
    let mut heads: Vec<Option<Row>> = queues.iter_mut().map(|q| q.pop_front()).collect();
    let mut out = Vec::new();
    while !merger.done() {
        let Some(i) = merger.pick(&heads) else { break };
        let Some(row) = heads[i].take() else { break };
        heads[i] = queues[i].pop_front();
        if merger.push(row, &mut out).is_err() {
            return;
        }
        out.clear();
    }
    let _ = merger.finish(&mut out);
}

/// Rows are made while the input lasts (each takes at least a byte per column).
fn bytes_left(data: &[u8], width: usize) -> bool {
    data.len() > width
}

pub fn merge_seeds() -> Vec<Vec<u8>> {
    (0..6u8)
        .map(|i| {
            let mut v = vec![i | 0x80, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2];
            for r in 0..20u8 {
                v.extend_from_slice(&[r, 0x41, r, 7, 30, 200, 0x42, 9, 1, 66, 67, 68]);
            }
            v
        })
        .collect()
}

/// Statements for the router: every kind of statement and table in the cluster.
pub const SQL: [&str; 17] = [
    "SELECT * FROM events WHERE created_at = '2024-\u{fffd}\u{fffd}1'",
    "SELECT * FROM orders WHERE user_id = 7",
    "SELECT o.id, i.sku FROM orders o JOIN order_items i ON o.user_id = i.user_id WHERE o.user_id IN (1, 2, 3)",
    "INSERT INTO orders (user_id, total) VALUES (1, 2.5), (2, 3.5)",
    "UPDATE orders SET note = 'x' WHERE user_id = ? AND id = ?",
    "DELETE FROM orders WHERE user_id BETWEEN 1 AND 10 ORDER BY id LIMIT 2",
    "SELECT user_id, COUNT(*) FROM orders GROUP BY user_id HAVING COUNT(*) > 1 ORDER BY 2 DESC LIMIT 5",
    "SELECT * FROM events WHERE created_at >= '2024-02-01' AND created_at < '2024-04-01'",
    "SELECT * FROM accounts WHERE id IN (SELECT user_id FROM orders WHERE total > 10)",
    "SELECT name FROM countries UNION SELECT note FROM orders",
    "INSERT INTO audit (what) SELECT note FROM orders WHERE user_id = 3",
    "REPLACE INTO countries VALUES ('fr', 'France')",
    "SELECT * FROM orders WHERE user_id = ? /* shardgate:primary */",
    "WITH t AS (SELECT user_id, SUM(total) s FROM orders GROUP BY user_id) SELECT * FROM t ORDER BY s",
    "UPDATE orders o, order_items i SET o.note = i.sku WHERE o.user_id = i.user_id AND o.user_id = 4",
    "LOAD DATA LOCAL INFILE 'x.csv' INTO TABLE orders FIELDS TERMINATED BY ',' (id, user_id)",
    "SELECT ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY id) FROM orders",
];
