//! INSERT … SELECT within a binding group.

use super::*;

/// INSERT ... SELECT between tables of one binding group works shard by shard when
/// the shard column is copied from the source's shard column, so every row lands on
/// the shard it was read from.
pub(super) fn insert_select_shards(
    ins: &sqlparser::ast::Insert,
    source: &sqlparser::ast::Select,
    key: &keys::KeyColumn<'_>,
    lead: &str,
    text: &str,
) -> Result<(), RouteError> {
    use sqlparser::ast::SelectItem;
    let refuse = |why: &str| {
        RouteError::Unsupported(format!(
            "INSERT ... SELECT into sharded table `{lead}` {why}"
        ))
    };
    if ins.columns.is_empty() {
        return Err(super::values::needs_columns(
            ins,
            lead,
            &super::spans::Offsets::new(text),
        ));
    }
    let idx = ins
        .columns
        .iter()
        .position(|c| {
            c.0.last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case(key.column))
        })
        .ok_or_else(|| {
            refuse(&format!(
                "must list its columns, the shard column `{}` among them",
                key.column
            ))
        })?;
    let copied = match source.projection.get(idx) {
        Some(SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }) => {
            key.is_key(e)
        }
        _ => false,
    };
    if !copied {
        return Err(refuse(&format!(
            "unless the shard column `{}` is copied from the source's shard column (rows would change shards)",
            key.column
        )));
    }
    let grouped =
        !matches!(&source.group_by, sqlparser::ast::GroupByExpr::Expressions(e, _) if e.is_empty());
    if grouped || source.having.is_some() {
        return Err(refuse("with GROUP BY or HAVING"));
    }
    Ok(())
}
