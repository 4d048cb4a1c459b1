//! Temporary tables that hold rows gathered from shards, so that one server can run a
//! statement over all of them (see `router::plan::Gather`).
//!
//! Copies must be exact: every value reaches the temporary table as the very bytes
//! or number the shard holds, whatever the session's character set, time zone or
//! SQL mode. Strings travel as hex (no character set conversion on the way),
//! FLOAT as the double it widens to exactly, TIMESTAMP as seconds since the epoch
//! (no time zone in between); everything else as its text form, which the server
//! reads back to the same value.

mod columns;
mod twin;

pub use columns::{Column, Kind, RowsInsert};
pub use twin::temporary_twin;

/// `name` as a backtick-quoted identifier.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `text` as a quoted string literal, for a session with backslash escapes on.
pub fn quote_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}
