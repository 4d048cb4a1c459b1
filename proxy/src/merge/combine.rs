//! The merge itself: rows in from the shards (each shard's already in the plan's
//! order), client rows out. Socket-free so it can be tested on its own.
//!
//! Memory: one row per shard plus the group being built. Only a sort after grouping
//! holds rows, and that is bounded by [`SORT_LIMIT`].

use std::cmp::Ordering;

use bytes::{Bytes, BytesMut};
use router::plan::{Agg, CmpOp, Col, Cond, Key, MergeSpec, Operand};

use super::row::Row;
use super::value::{compare, format_f64, parse_f64, ArithError, ColumnInfo, Decimal, Kind};

/// Most groups a sort after grouping may hold.
pub const SORT_LIMIT: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{0}")]
    Arith(#[from] ArithError),
    #[error("not supported by shardgate yet: ORDER BY an ENUM or SET column over several shards (they sort by their internal numbers)")]
    EnumKey,
    #[error("not supported by shardgate yet: sorting more than {SORT_LIMIT} groups after merging shards; ORDER BY the GROUP BY columns, or add a condition or LIMIT")]
    TooManyGroups,
    #[error("shardgate: the shards answer with different columns ({0} and {1}, or names and types that differ): a DDL was applied to only some physical tables; SHOW CREATE TABLE on each node shows which differ")]
    ColumnMismatch(usize, usize),
    #[error("shardgate: the shards describe the same columns differently (their types or origins differ)")]
    ColumnDescriptions,
    #[error("not supported by shardgate yet: HAVING that compares a {0} value over several shards (MariaDB compares it by its own type rules); compare numbers, or filter in WHERE")]
    HavingType(&'static str),
}

pub struct Merger<'a> {
    spec: &'a MergeSpec,
    visible: usize,
    columns: Vec<ColumnInfo>,
    /// The group being built (grouping merges only).
    current: Option<Row>,
    sorted: Vec<Row>,
    skipped: u64,
    sent: u64,
    /// Some row came from a shard.
    seen: bool,
}

impl<'a> Merger<'a> {
    /// `columns`: the shards' column definitions, hidden ones included.
    pub fn new(spec: &'a MergeSpec, columns: Vec<ColumnInfo>) -> Result<Merger<'a>, MergeError> {
        let visible = columns
            .len()
            .checked_sub(spec.hidden)
            .ok_or(MergeError::ColumnMismatch(columns.len(), spec.hidden))?;
        let m = Merger {
            spec,
            visible,
            columns,
            current: None,
            sorted: Vec::new(),
            skipped: 0,
            sent: 0,
            seen: false,
        };
        let keys = spec
            .order
            .iter()
            .chain(&spec.sort_after)
            .chain(spec.group.iter().flat_map(|g| &g.keys));
        for k in keys {
            if m.info(k.value).kind == Kind::Enum {
                return Err(MergeError::EnumKey);
            }
        }
        Ok(m)
    }

    pub fn visible(&self) -> usize {
        self.visible
    }

    pub fn width(&self) -> usize {
        self.columns.len()
    }

    fn idx(&self, c: Col) -> usize {
        c.index(self.visible)
    }

    fn info(&self, c: Col) -> ColumnInfo {
        self.columns
            .get(self.idx(c))
            .copied()
            .unwrap_or(ColumnInfo {
                kind: Kind::Bytes,
                decimals: 0,
            })
    }

    fn cmp_key(&self, k: &Key, a: &Row, b: &Row) -> Ordering {
        let kind = self.info(k.value).kind;
        let col = match (kind, k.weight) {
            (Kind::Collated, Some(w)) => w,
            _ => k.value,
        };
        let i = self.idx(col);
        let o = compare(kind, a.get(i), b.get(i));
        if k.desc {
            o.reverse()
        } else {
            o
        }
    }

    fn cmp_keys(&self, keys: &[Key], a: &Row, b: &Row) -> Ordering {
        keys.iter()
            .map(|k| self.cmp_key(k, a, b))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }

    /// The shard whose next row comes first; ties go to the lower shard, so with no
    /// keys the shards' rows come one shard after another.
    pub fn pick(&self, heads: &[Option<Row>]) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, h) in heads.iter().enumerate() {
            let Some(row) = h else { continue };
            best = match best {
                Some(b) => {
                    let Some(cur) = heads[b].as_ref() else {
                        continue;
                    };
                    if self.cmp_keys(&self.spec.order, row, cur) == Ordering::Less {
                        Some(i)
                    } else {
                        Some(b)
                    }
                }
                None => Some(i),
            };
        }
        best
    }

    /// True once LIMIT is reached: the rest of the shards' rows are not needed.
    pub fn done(&self) -> bool {
        self.spec.limit.is_some_and(|l| self.sent >= l) && self.spec.sort_after.is_empty()
    }

    /// Feeds the next row in merge order; client rows (payloads) go to `out`.
    pub fn push(&mut self, row: Row, out: &mut Vec<BytesMut>) -> Result<(), MergeError> {
        if row.len() != self.columns.len() {
            return Err(MergeError::ColumnMismatch(row.len(), self.columns.len()));
        }
        self.seen = true;
        let Some(group) = &self.spec.group else {
            self.send(row, out);
            return Ok(());
        };
        match self.current.take() {
            None => self.current = Some(row),
            Some(mut cur) => {
                if self.cmp_keys(&group.keys, &cur, &row) == Ordering::Equal {
                    self.combine(&mut cur, &row)?;
                    self.current = Some(cur);
                } else {
                    self.close_group(cur, out)?;
                    self.current = Some(row);
                }
            }
        }
        Ok(())
    }

    /// No more rows: the last group, and a sort after grouping, come out now.
    pub fn finish(&mut self, out: &mut Vec<BytesMut>) -> Result<(), MergeError> {
        if let Some(cur) = self.current.take() {
            self.close_group(cur, out)?;
        }
        if let Some(group) = &self.spec.group {
            if group.keys.is_empty() && !self.seen {
                // An aggregate without GROUP BY answers one row even over no rows (the
                // shards, grouped by a COUNT(DISTINCT) argument, sent none): counts
                // are 0, every other aggregate NULL. The planner allows only
                // aggregates in such a select list.
                let mut row = Row::nulls(self.columns.len());
                for agg in &group.aggregates {
                    match *agg {
                        Agg::Count(c) | Agg::CountDistinct { count: c, .. } => {
                            row.set(self.idx(c), Some(Bytes::from_static(b"0")));
                        }
                        Agg::Avg { count, .. } => {
                            row.set(self.idx(count), Some(Bytes::from_static(b"0")));
                        }
                        Agg::Sum(_) | Agg::Min(_) | Agg::Max(_) => {}
                    }
                }
                self.close_group(row, out)?;
            }
        }
        if !self.spec.sort_after.is_empty() {
            let mut rows = std::mem::take(&mut self.sorted);
            rows.sort_by(|a, b| self.cmp_keys(&self.spec.sort_after, a, b));
            for r in rows {
                self.send(r, out);
            }
        }
        Ok(())
    }

    fn combine(&self, cur: &mut Row, next: &Row) -> Result<(), MergeError> {
        let Some(group) = &self.spec.group else {
            return Ok(());
        };
        // COUNT(DISTINCT x): rows come ordered by x within the group, so a value
        // that differs from the last is new; the same value from another shard is not.
        // Decided once for all COUNT(DISTINCT x) of the row, then x is moved on.
        let mut distinct_value = None;
        for agg in &group.aggregates {
            if let Agg::CountDistinct { value, .. } = *agg {
                distinct_value = Some(value);
            }
        }
        let new_value =
            distinct_value.is_some_and(|v| self.cmp_key(&v, cur, next) != Ordering::Equal);
        for agg in &group.aggregates {
            match *agg {
                Agg::Count(c) => self.add(cur, next, c, Kind::Exact)?,
                Agg::Sum(c) => self.add(cur, next, c, self.info(c).kind)?,
                Agg::Min(k) | Agg::Max(k) => {
                    let o = self.cmp_key(&Key { desc: false, ..k }, next, cur);
                    let better = match agg {
                        Agg::Min(_) => o == Ordering::Less,
                        _ => o == Ordering::Greater,
                    };
                    // NULL never wins: MIN/MAX ignore NULLs.
                    let i = self.idx(k.value);
                    if cur.get(i).is_none() || (better && next.get(i).is_some()) {
                        cur.set(i, next.get(i).map(Bytes::copy_from_slice));
                        if let Some(w) = k.weight {
                            let wi = self.idx(w);
                            cur.set(wi, next.get(wi).map(Bytes::copy_from_slice));
                        }
                    }
                }
                Agg::CountDistinct { count, .. } => {
                    if new_value {
                        self.add(cur, next, count, Kind::Exact)?;
                    }
                }
                Agg::Avg { sum, count, .. } => {
                    self.add(cur, next, sum, self.info(sum).kind)?;
                    self.add(cur, next, count, Kind::Exact)?;
                }
            }
        }
        if let (true, Some(value)) = (new_value, distinct_value) {
            for c in std::iter::once(value.value).chain(value.weight) {
                let i = self.idx(c);
                cur.set(i, next.get(i).map(Bytes::copy_from_slice));
            }
        }
        Ok(())
    }

    /// `cur[c] += next[c]`, NULL counting as nothing (SUM of no values is NULL).
    fn add(&self, cur: &mut Row, next: &Row, c: Col, kind: Kind) -> Result<(), MergeError> {
        let i = self.idx(c);
        let sum = match (cur.get(i), next.get(i)) {
            (_, None) => return Ok(()),
            (None, Some(b)) => b.to_vec(),
            (Some(a), Some(b)) => match kind {
                Kind::Float => format_f64(parse_f64(a) + parse_f64(b)).into_bytes(),
                _ => Decimal::parse(a)?
                    .checked_add(Decimal::parse(b)?)?
                    .to_text()
                    .into_bytes(),
            },
        };
        cur.set(i, Some(Bytes::from(sum)));
        Ok(())
    }

    fn close_group(&mut self, mut row: Row, out: &mut Vec<BytesMut>) -> Result<(), MergeError> {
        let Some(group) = &self.spec.group else {
            return Ok(());
        };
        for agg in &group.aggregates {
            if let Agg::Avg { avg, sum, count } = *agg {
                let (si, ci) = (self.idx(sum), self.idx(count));
                let value = match (row.get(si), row.get(ci)) {
                    (Some(s), Some(n)) => {
                        let n = Decimal::parse(n)?;
                        if n.mantissa == 0 {
                            None
                        } else if self.info(avg).kind == Kind::Float {
                            Some(format_f64(parse_f64(s) / n.mantissa as f64))
                        } else {
                            let scale = u32::from(self.info(avg).decimals);
                            Some(Decimal::parse(s)?.div(n.mantissa, scale)?.to_text())
                        }
                    }
                    _ => None,
                };
                row.set(self.idx(avg), value.map(Bytes::from));
            }
        }
        if let Some(h) = &group.having {
            if eval(self, h, &row)? != Some(true) {
                return Ok(());
            }
        }
        if self.spec.sort_after.is_empty() {
            self.send(row, out);
        } else {
            if self.sorted.len() >= SORT_LIMIT {
                return Err(MergeError::TooManyGroups);
            }
            self.sorted.push(row);
        }
        Ok(())
    }

    /// A row in final order: OFFSET and LIMIT apply here.
    fn send(&mut self, row: Row, out: &mut Vec<BytesMut>) {
        if self.skipped < self.spec.offset {
            self.skipped += 1;
            return;
        }
        if self.spec.limit.is_some_and(|l| self.sent >= l) {
            return;
        }
        self.sent += 1;
        out.push(row.encode(self.visible));
    }
}

/// SQL three-valued logic: `None` is NULL. Comparisons are evaluated only between
/// numbers, where shardgate's arithmetic is MariaDB's; anything else is refused rather
/// than guessed (MariaDB compares a string with a number as a double, strings by
/// collation, dates by their own rules).
fn eval(m: &Merger<'_>, c: &Cond, row: &Row) -> Result<Option<bool>, MergeError> {
    Ok(match c {
        Cond::And(a, b) => match (eval(m, a, row)?, eval(m, b, row)?) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        Cond::Or(a, b) => match (eval(m, a, row)?, eval(m, b, row)?) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
        Cond::Not(a) => eval(m, a, row)?.map(|v| !v),
        Cond::IsNull(o, negated) => Some(operand(m, o, row).0.is_none() != *negated),
        Cond::Cmp(op, a, b) => {
            let (a, ka) = operand(m, a, row);
            let (b, kb) = operand(m, b, row);
            for k in [ka, kb] {
                let name = match k {
                    Kind::Exact | Kind::Float => continue,
                    Kind::Time => "TIME",
                    Kind::Bytes => "binary, date or JSON",
                    Kind::Collated => "string",
                    Kind::Enum => "ENUM or SET",
                };
                return Err(MergeError::HavingType(name));
            }
            let kind = if ka == Kind::Float || kb == Kind::Float {
                Kind::Float
            } else {
                Kind::Exact
            };
            let (Some(a), Some(b)) = (a, b) else {
                return Ok(None);
            };
            let o = compare(kind, Some(&a), Some(&b));
            Some(match op {
                CmpOp::Eq => o == Ordering::Equal,
                CmpOp::Ne => o != Ordering::Equal,
                CmpOp::Lt => o == Ordering::Less,
                CmpOp::Le => o != Ordering::Greater,
                CmpOp::Gt => o == Ordering::Greater,
                CmpOp::Ge => o != Ordering::Less,
            })
        }
    })
}

fn operand(m: &Merger<'_>, o: &Operand, row: &Row) -> (Option<Vec<u8>>, Kind) {
    match o {
        Operand::Col(c) => (row.get(m.idx(*c)).map(<[u8]>::to_vec), m.info(*c).kind),
        Operand::Number(n) => {
            let kind = if n.contains(['e', 'E']) {
                Kind::Float
            } else {
                Kind::Exact
            };
            (Some(n.as_bytes().to_vec()), kind)
        }
    }
}
