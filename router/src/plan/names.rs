//! The names a statement uses, for the access checks and cross-schema routing.

use sqlparser::parser::Parser;

use super::{mask_lock_in_share_mode, refs, spans, RouteError};
use crate::reading::Reading;

/// The names a statement uses: every table it names, as (schema qualifier, name), and
/// the names that stand for a table inside it (table names, aliases, common table
/// expressions), which a `name.` qualifier may also be.
#[derive(Debug, Default)]
pub struct Names {
    pub tables: Vec<(Option<String>, String)>,
    pub local: Vec<String>,
}

pub fn table_refs(sql: &[u8], reading: Reading) -> Result<Names, RouteError> {
    let text = std::str::from_utf8(sql).map_err(|_| RouteError::NotUtf8(String::new()))?;
    let masked = mask_lock_in_share_mode(text, reading);
    let statements = Parser::parse_sql(&reading.dialect(), masked.as_deref().unwrap_or(text))
        .map_err(|e| RouteError::Parse(e.to_string()))?;
    let offsets = spans::Offsets::new(text);
    let mut names = Names::default();
    for statement in &statements {
        let ctes = refs::cte_names(statement);
        let refs = refs::collect(statement, &offsets);
        names
            .local
            .extend(refs.aliases.iter().map(|(_, a)| a.clone()));
        names
            .local
            .extend(refs.tables.iter().map(|t| t.name.clone()));
        names.tables.extend(
            refs.tables
                .into_iter()
                .filter(|t| t.schema.is_some() || !ctes.contains(&t.name))
                .map(|t| (t.schema, t.name)),
        );
        names.local.extend(ctes);
    }
    Ok(names)
}
