//! INSERT on a sharded table: each row goes to its shard, so a multi-row INSERT becomes
//! one INSERT per shard holding only that shard's rows (cut from the client's text).

use std::collections::BTreeMap;

use rules::ShardedTable;
use sqlparser::ast::{AssignmentTarget, Insert, ObjectName, OnInsert, SetExpr};

use super::keys::{Context, Operand};
use super::rewrite::{Piece, Splice};
use super::spans::Offsets;
use super::RouteError;

pub struct InsertSplit {
    /// Shard → byte ranges of its rows, in the client's order.
    pub rows: BTreeMap<u32, Vec<(usize, usize)>>,
    /// Byte range covering every row; `None` for `INSERT ... SET` (one row, kept whole).
    span: Option<(usize, usize)>,
    pub missing_key: bool,
    /// Every row's shard value when some are `?` parameters (routed at each
    /// execution); empty otherwise.
    pub param_keys: Vec<Operand>,
    text_len: usize,
}

impl InsertSplit {
    /// The edit that keeps only `shard`'s rows.
    pub fn rows_edit(&self, shard: u32) -> Option<Splice> {
        let (start, end) = self.span?;
        let rows = self.rows.get(&shard)?;
        debug_assert!(end <= self.text_len);
        let mut pieces = Vec::with_capacity(rows.len() * 2);
        for (i, r) in rows.iter().enumerate() {
            if i > 0 {
                pieces.push(Piece::Lit(", ".into()));
            }
            pieces.push(Piece::Src(*r));
        }
        Some(Splice { start, end, pieces })
    }
}

fn last_name(n: &ObjectName) -> String {
    n.0.last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.clone())
        .unwrap_or_default()
}

/// Where a global id column missing from an INSERT goes; `None` when it is listed.
pub fn fill_spec(
    ins: &Insert,
    g: &rules::table::GlobalId,
    offsets: &Offsets<'_>,
    text: &str,
) -> Result<Option<super::FillIds>, RouteError> {
    let listed = ins
        .columns
        .iter()
        .map(last_name)
        .chain(ins.assignments.iter().filter_map(|a| match &a.target {
            AssignmentTarget::ColumnName(n) => Some(last_name(n)),
            _ => None,
        }))
        .any(|c| c.eq_ignore_ascii_case(&g.column));
    // Without a column list nothing says what is missing: the INSERT is refused
    // for that reason instead.
    if listed || (ins.columns.is_empty() && ins.assignments.is_empty()) {
        return Ok(None);
    }
    let unsupported = |what: &str| {
        RouteError::Unsupported(format!(
            "generating global id column `{}` for {what}; list the column with its values",
            g.column
        ))
    };
    let values = match ins.source.as_ref().map(|s| s.body.as_ref()) {
        Some(SetExpr::Values(v)) if !ins.columns.is_empty() && !v.explicit_row => v,
        _ => return Err(unsupported("an INSERT without a column list and VALUES")),
    };
    let Some(last) = ins
        .columns
        .last()
        .and_then(|c| c.0.last())
        .and_then(|p| p.as_ident())
    else {
        return Err(unsupported("this INSERT"));
    };
    let column_at = offsets
        .byte(last.span.end)
        .ok_or_else(|| unsupported("an INSERT whose columns could not be located"))?;
    let mut row_ends = Vec::with_capacity(values.rows.len());
    for row in &values.rows {
        let at = offsets
            .byte(row.closing_token.0.span.start)
            .filter(|a| text.as_bytes().get(*a) == Some(&b')'))
            .ok_or_else(|| unsupported("an INSERT whose rows could not be located"))?;
        row_ends.push(at);
    }
    Ok(Some(super::FillIds {
        column: g.column.clone(),
        worker_id: g.worker_id,
        column_at,
        row_ends,
    }))
}

/// The INSERT names no columns: where the list goes (right after the table's name),
/// for the executor to fill in.
pub(super) fn needs_columns(ins: &Insert, table_name: &str, offsets: &Offsets<'_>) -> RouteError {
    let end = match &ins.table {
        sqlparser::ast::TableObject::TableName(n) => {
            n.0.last()
                .and_then(|p| p.as_ident())
                .and_then(|i| offsets.byte(i.span.end))
        }
        _ => None,
    };
    match end {
        Some(at) => RouteError::NeedsColumns {
            table: table_name.to_string(),
            at,
        },
        None => RouteError::Invalid(format!(
            "INSERT into sharded table `{table_name}` must list its columns"
        )),
    }
}

fn only_params(keys: Vec<Operand>) -> Vec<Operand> {
    if keys.iter().any(|k| matches!(k, Operand::Param(_))) {
        keys
    } else {
        Vec::new()
    }
}

pub fn split_insert(
    text: &str,
    ins: &Insert,
    table_name: &str,
    table: &ShardedTable,
    cx: &Context<'_>,
) -> Result<InsertSplit, RouteError> {
    let offsets = Offsets::new(text);
    let mut param_keys = Vec::new();
    let key = &table.column;
    if let Some(OnInsert::DuplicateKeyUpdate(assignments)) = &ins.on {
        for a in assignments {
            if let AssignmentTarget::ColumnName(n) = &a.target {
                if last_name(n).eq_ignore_ascii_case(key) {
                    return Err(RouteError::Invalid(format!(
                        "ON DUPLICATE KEY UPDATE may not change the shard column `{key}` of `{table_name}`"
                    )));
                }
            }
        }
    }
    // The row's shard, or `None` when a parameter decides it at execution.
    let mut place = |v: &sqlparser::ast::Expr| -> Result<Option<u32>, RouteError> {
        match cx.operand(v) {
            Some(Operand::Lit(value)) => {
                let shard = table.algorithm.shard_of(&value)?;
                param_keys.push(Operand::Lit(value));
                Ok(Some(shard))
            }
            Some(p @ Operand::Param(_)) => {
                param_keys.push(p);
                Ok(None)
            }
            None => Err(RouteError::Unsupported(format!(
                "an INSERT whose shard column `{key}` is neither a literal nor a parameter"
            ))),
        }
    };

    // INSERT ... SET a = 1, b = 2
    if !ins.assignments.is_empty() {
        let mut columns = Vec::new();
        let mut shard = None;
        let mut has_key = false;
        for a in &ins.assignments {
            if let AssignmentTarget::ColumnName(n) = &a.target {
                let c = last_name(n);
                if c.eq_ignore_ascii_case(key) {
                    shard = place(&a.value)?;
                    has_key = true;
                }
                columns.push(c);
            }
        }
        let mut rows = BTreeMap::new();
        if let Some(s) = shard {
            rows.insert(s, vec![(0, text.len())]);
        }
        return Ok(InsertSplit {
            rows,
            span: None,
            missing_key: !has_key,
            param_keys: only_params(param_keys),
            text_len: text.len(),
        });
    }

    let Some(source) = &ins.source else {
        return Err(RouteError::Unsupported(
            "this INSERT form on a sharded table".into(),
        ));
    };
    let SetExpr::Values(values) = source.body.as_ref() else {
        return Err(RouteError::Unsupported(format!(
            "INSERT ... SELECT into sharded table `{table_name}`"
        )));
    };
    if values.explicit_row {
        return Err(RouteError::Unsupported(
            "INSERT ... VALUES ROW(...) on a sharded table".into(),
        ));
    }
    let columns: Vec<String> = ins.columns.iter().map(last_name).collect();
    if columns.is_empty() {
        return Err(needs_columns(ins, table_name, &offsets));
    }
    let Some(idx) = columns.iter().position(|c| c.eq_ignore_ascii_case(key)) else {
        return Ok(InsertSplit {
            rows: BTreeMap::new(),
            span: None,
            missing_key: true,
            param_keys,
            text_len: text.len(),
        });
    };
    let mut rows: BTreeMap<u32, Vec<(usize, usize)>> = BTreeMap::new();
    let mut first = None;
    let mut last = None;
    for row in &values.rows {
        let v = row.content.get(idx).ok_or_else(|| {
            RouteError::Invalid("a VALUES row has fewer values than columns".into())
        })?;
        let shard = place(v)?;
        let start = offsets.byte(row.opening_token.0.span.start);
        let end = offsets.byte(row.closing_token.0.span.end);
        let (Some(start), Some(end)) = (start, end) else {
            return Err(RouteError::Unsupported(
                "a VALUES row whose position could not be found".into(),
            ));
        };
        first.get_or_insert(start);
        last = Some(end);
        if let Some(shard) = shard {
            rows.entry(shard).or_default().push((start, end));
        }
    }
    let span = match (first, last) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => None,
    };
    Ok(InsertSplit {
        rows,
        span,
        missing_key: false,
        param_keys: only_params(param_keys),
        text_len: text.len(),
    })
}
