//! Global ids generated for an INSERT that omits them: where they go in its text.

use super::{rewrite, RouteError};

/// Where generated global ids go into an INSERT's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FillIds {
    pub column: String,
    pub worker_id: u16,
    /// Just after the last listed column.
    pub(super) column_at: usize,
    /// Each row's closing parenthesis.
    pub(super) row_ends: Vec<usize>,
}

impl FillIds {
    pub fn rows(&self) -> usize {
        self.row_ends.len()
    }

    /// The INSERT with the id column and one id per row added.
    pub fn apply(&self, sql: &str, ids: &[i64]) -> Result<String, RouteError> {
        if ids.len() != self.row_ends.len() {
            return Err(RouteError::Invalid("wrong number of generated ids".into()));
        }
        let mut edits = vec![rewrite::Edit {
            start: self.column_at,
            end: self.column_at,
            text: format!(", `{}`", self.column.replace('`', "``")),
        }];
        for (at, id) in self.row_ends.iter().zip(ids) {
            edits.push(rewrite::Edit {
                start: *at,
                end: *at,
                text: format!(", {id}"),
            });
        }
        rewrite::apply(sql, edits)
    }
}
