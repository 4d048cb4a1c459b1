//! information_schema shows a user only the databases it may use. Every statement
//! reaches the backend with shardgate's account, which sees every database; so each
//! information_schema table a query reads is replaced by a derived table that keeps
//! only the rows about the user's databases, whatever the query does with them
//! (expressions, joins, subqueries, `CONCAT(table_schema, …)`, no schema column at
//! all). Tables about the server's other clients or the backend account (processes,
//! InnoDB internals, privileges of the account) are refused unless the user holds the
//! `admin` grant; tables about nothing but the server's build (character sets,
//! collations, keywords) are read as they are. An information_schema table this list
//! does not know is refused too: a new server version cannot widen what a user sees.

use std::ops::ControlFlow;

use sqlparser::ast::{ObjectNamePart, Statement, TableFactor, Visit, Visitor};
use sqlparser::parser::Parser;

use super::spans::Offsets;
use crate::reading::Reading;

/// The databases whose rows a user may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visible {
    /// Every database: nothing to confine.
    All,
    /// Only these (physical names, compared exactly).
    Only(Vec<String>),
    /// Every database but these.
    AllBut(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfineError {
    /// The statement reads information_schema, but shardgate cannot parse it to
    /// confine what it reads.
    #[error("{0}")]
    Unreadable(String),
    /// An information_schema table this user may not read (its name as written).
    #[error("{0}")]
    Denied(String),
}

/// What a user may read of one information_schema table.
enum Policy {
    /// Rows about one database each: kept when every listed column names a visible
    /// database (`true`: the column may be NULL, which names none).
    Filter(&'static [(&'static str, bool)]),
    /// Nothing about any database or client.
    Open,
}

/// The policy of an information_schema table; `None`: refused without `admin`.
fn policy(table: &str) -> Option<Policy> {
    const TABLE_SCHEMA: &[(&str, bool)] = &[("TABLE_SCHEMA", false)];
    let t = table.to_ascii_uppercase();
    let filter = match t.as_str() {
        "SCHEMATA" => &[("SCHEMA_NAME", false)][..],
        "TABLES" | "COLUMNS" | "VIEWS" | "PARTITIONS" | "TABLE_STATISTICS" | "INDEX_STATISTICS" => {
            TABLE_SCHEMA
        }
        "STATISTICS" => &[("TABLE_SCHEMA", false), ("INDEX_SCHEMA", false)][..],
        "TABLE_CONSTRAINTS" => &[("TABLE_SCHEMA", false), ("CONSTRAINT_SCHEMA", false)][..],
        "KEY_COLUMN_USAGE" => &[
            ("TABLE_SCHEMA", false),
            ("CONSTRAINT_SCHEMA", false),
            ("REFERENCED_TABLE_SCHEMA", true),
        ][..],
        "REFERENTIAL_CONSTRAINTS" => &[
            ("CONSTRAINT_SCHEMA", false),
            ("UNIQUE_CONSTRAINT_SCHEMA", false),
        ][..],
        "CHECK_CONSTRAINTS" => &[("CONSTRAINT_SCHEMA", false)][..],
        "ROUTINES" => &[("ROUTINE_SCHEMA", false)][..],
        "PARAMETERS" => &[("SPECIFIC_SCHEMA", false)][..],
        "EVENTS" => &[("EVENT_SCHEMA", false)][..],
        "TRIGGERS" => &[("TRIGGER_SCHEMA", false), ("EVENT_OBJECT_SCHEMA", false)][..],
        "GEOMETRY_COLUMNS" => &[("G_TABLE_SCHEMA", false), ("F_TABLE_SCHEMA", false)][..],
        "CHARACTER_SETS"
        | "COLLATIONS"
        | "COLLATION_CHARACTER_SET_APPLICABILITY"
        | "ENGINES"
        | "KEYWORDS"
        | "SQL_FUNCTIONS"
        | "PLUGINS"
        | "ALL_PLUGINS"
        | "GLOBAL_VARIABLES"
        | "SESSION_VARIABLES"
        | "SYSTEM_VARIABLES"
        | "GLOBAL_STATUS"
        | "SESSION_STATUS"
        | "SPATIAL_REF_SYS"
        | "TABLESPACES"
        | "KEY_CACHES" => return Some(Policy::Open),
        _ => return None,
    };
    Some(Policy::Filter(filter))
}

/// One information_schema table in a FROM clause.
struct Found {
    /// Byte range of its name, qualifier included.
    range: (usize, usize),
    table: String,
    aliased: bool,
}

struct Finder<'a> {
    offsets: &'a Offsets<'a>,
    current_is_catalog: bool,
    ctes: Vec<String>,
    found: Vec<Found>,
    unlocated: bool,
}

impl Visitor for Finder<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &sqlparser::ast::Query) -> ControlFlow<()> {
        if let Some(with) = &q.with {
            self.ctes
                .extend(with.cte_tables.iter().map(|c| c.alias.name.value.clone()));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        let TableFactor::Table { name, alias, .. } = factor else {
            return ControlFlow::Continue(());
        };
        let parts: Vec<&sqlparser::ast::Ident> = name
            .0
            .iter()
            .filter_map(|p| match p {
                ObjectNamePart::Identifier(i) => Some(i),
                _ => None,
            })
            .collect();
        let (first, table) = match parts.as_slice() {
            [s, t] if s.value.eq_ignore_ascii_case("information_schema") => (*s, *t),
            [t] if self.current_is_catalog
                && !self.ctes.iter().any(|c| c.eq_ignore_ascii_case(&t.value)) =>
            {
                (*t, *t)
            }
            _ => return ControlFlow::Continue(()),
        };
        match (
            self.offsets.range(first.span),
            self.offsets.range(table.span),
        ) {
            (Some((start, _)), Some((_, end))) => self.found.push(Found {
                range: (start, end),
                table: table.value.clone(),
                aliased: alias.is_some(),
            }),
            _ => self.unlocated = true,
        }
        ControlFlow::Continue(())
    }
}

/// `sql` with every information_schema table it reads confined to `visible`;
/// `Ok(None)` when it reads none (or `visible` is everything). `admin` users may read
/// the tables about the server's clients and internals.
pub fn confine(
    sql: &str,
    reading: Reading,
    current_is_catalog: bool,
    visible: &Visible,
    admin: bool,
) -> Result<Option<String>, ConfineError> {
    if *visible == Visible::All {
        return Ok(None);
    }
    // Where the statement names information_schema: each must turn out to be a
    // table this module narrowed or let through, or the statement is refused.
    let base = sql.as_ptr() as usize;
    let mentions: Vec<usize> = reading
        .lexer(sql.as_bytes())
        .filter_map(|t| match t {
            crate::lexer::Token::Word(w) | crate::lexer::Token::Quoted(w)
                if w.eq_ignore_ascii_case(b"information_schema") =>
            {
                Some(w.as_ptr() as usize - base)
            }
            _ => None,
        })
        .collect();
    if mentions.is_empty() && !current_is_catalog {
        return Ok(None);
    }
    // SHOW and DESCRIBE tell the structure of information_schema's tables, not rows.
    // (A SHOW … WHERE with a subquery reads rows: it is read like a query.)
    let first = reading.first_word(sql.as_bytes()).unwrap_or(b"");
    let selects = reading
        .lexer(sql.as_bytes())
        .any(|t| matches!(t, crate::lexer::Token::Word(w) if w.eq_ignore_ascii_case(b"select")));
    if !selects
        && ["show", "describe", "desc"]
            .iter()
            .any(|w| first.eq_ignore_ascii_case(w.as_bytes()))
    {
        return Ok(None);
    }
    let masked = super::mask_lock_in_share_mode(sql, reading);
    let statements = match Parser::parse_sql(&reading.dialect(), masked.as_deref().unwrap_or(sql)) {
        Ok(s) => s,
        // A statement about information_schema's own structure (SHOW COLUMNS FROM
        // information_schema.tables) needs no parse; anything else must be read.
        Err(_) if mentions.is_empty() => return Ok(None),
        Err(e) => {
            return Err(ConfineError::Unreadable(format!(
                "shardgate could not read this statement on information_schema to keep it to your databases ({e})"
            )))
        }
    };
    let offsets = Offsets::new(sql);
    let mut finder = Finder {
        offsets: &offsets,
        current_is_catalog,
        ctes: Vec::new(),
        found: Vec::new(),
        unlocated: false,
    };
    for s in &statements {
        let _ = s.visit(&mut finder);
    }
    if finder.unlocated {
        return Err(ConfineError::Unreadable(
            "shardgate could not place a name of information_schema in this statement".into(),
        ));
    }
    // Fail closed: a mention no table factor accounts for (`TABLE information_schema.x`,
    // a form sqlparser reads differently from the server) is not let through.
    let covered = |at: usize| {
        finder
            .found
            .iter()
            .any(|f| f.range.0 <= at && at < f.range.1)
    };
    if !admin && !mentions.iter().all(|&at| covered(at)) {
        return Err(ConfineError::Unreadable(
            "shardgate could not find every information_schema table this statement reads".into(),
        ));
    }
    if finder.found.is_empty() {
        return Ok(None);
    }
    let queries = statements
        .iter()
        .all(|s| matches!(s, Statement::Query(_) | Statement::Explain { .. }));
    let mut found = finder.found;
    found.sort_by_key(|f| f.range.0);
    let mut out = String::with_capacity(sql.len() + 128 * found.len());
    let mut pos = 0;
    let mut changed = false;
    for f in &found {
        let filter = match policy(&f.table) {
            Some(Policy::Open) => continue,
            Some(Policy::Filter(columns)) if queries => columns,
            // Copied elsewhere (INSERT … SELECT, CREATE … AS SELECT) it would be whole.
            _ if admin => continue,
            _ => return Err(ConfineError::Denied(f.table.clone())),
        };
        out.push_str(&sql[pos..f.range.0]);
        out.push_str(&derived(&f.table, filter, visible));
        if !f.aliased {
            out.push_str(" AS ");
            out.push_str(&quoted(&f.table));
        }
        pos = f.range.1;
        changed = true;
    }
    out.push_str(&sql[pos..]);
    Ok(changed.then_some(out))
}

/// `(SELECT * FROM information_schema.t WHERE …)`: the rows of `t` about visible
/// databases. Names are hex literals, which read the same under every sql_mode and
/// compare exactly, as database names do.
fn derived(table: &str, columns: &[(&str, bool)], visible: &Visible) -> String {
    let (op, names) = match visible {
        Visible::All => ("IN", &[][..]),
        Visible::Only(n) => ("IN", n.as_slice()),
        Visible::AllBut(n) => ("NOT IN", n.as_slice()),
    };
    let list: Vec<String> = names.iter().map(|n| hex(n)).collect();
    let conditions: Vec<String> = columns
        .iter()
        .map(|(column, nullable)| {
            let test = if list.is_empty() {
                // Nothing in the list: no row (IN), every row (NOT IN).
                if op == "IN" { "FALSE" } else { "TRUE" }.to_string()
            } else {
                // The column's own comparison lets the server look up only those
                // databases; the binary one keeps a name that differs in case out.
                let list = list.join(", ");
                format!("({column} {op} ({list}) AND CAST({column} AS BINARY) {op} ({list}))")
            };
            if *nullable {
                format!("({column} IS NULL OR {test})")
            } else {
                test
            }
        })
        .collect();
    format!(
        "(SELECT * FROM information_schema.{} WHERE {})",
        quoted(table),
        conditions.join(" AND ")
    )
}

fn hex(s: &str) -> String {
    let mut out = String::with_capacity(3 + 2 * s.len());
    out.push_str("X'");
    for b in s.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out.push('\'');
    out
}

fn quoted(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(names: &[&str]) -> Visible {
        Visible::Only(names.iter().map(|s| s.to_string()).collect())
    }

    fn c(sql: &str) -> Result<Option<String>, ConfineError> {
        confine(sql, Reading::DEFAULT, false, &only(&["shop"]), false)
    }

    #[test]
    fn replaces_each_table_with_its_visible_rows() {
        assert_eq!(
            c("SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.TABLES t")
                .unwrap()
                .unwrap(),
            "SELECT CONCAT(table_schema, '.', table_name) FROM (SELECT * FROM \
             information_schema.`TABLES` WHERE (TABLE_SCHEMA IN (X'73686f70') AND \
             CAST(TABLE_SCHEMA AS BINARY) IN (X'73686f70'))) t"
        );
        assert_eq!(
            c("select count(*) from `information_schema`.`routines` where routine_definition like '%x%'")
                .unwrap()
                .unwrap(),
            "select count(*) from (SELECT * FROM information_schema.`routines` WHERE \
             (ROUTINE_SCHEMA IN (X'73686f70') AND CAST(ROUTINE_SCHEMA AS BINARY) IN \
             (X'73686f70'))) AS `routines` where routine_definition like '%x%'"
        );
        // In a subquery, a join, nullable columns.
        let out = c(
            "SELECT 1 FROM t WHERE EXISTS (SELECT 1 FROM information_schema.key_column_usage k \
                     JOIN information_schema.schemata s ON s.schema_name = k.table_schema)",
        )
        .unwrap()
        .unwrap();
        assert!(
            out.contains(
                "(REFERENCED_TABLE_SCHEMA IS NULL OR (REFERENCED_TABLE_SCHEMA IN (X'73686f70') AND"
            ),
            "{out}"
        );
        assert!(
            out.contains("CAST(SCHEMA_NAME AS BINARY) IN (X'73686f70'))) s ON"),
            "{out}"
        );
    }

    #[test]
    fn leaves_other_statements_alone() {
        assert_eq!(c("SELECT * FROM orders WHERE id = 1").unwrap(), None);
        assert_eq!(c("SELECT 'information_schema'").unwrap(), None);
        assert_eq!(
            c("SELECT * FROM information_schema.collations").unwrap(),
            None
        );
        assert_eq!(
            c("SHOW COLUMNS FROM information_schema.tables").unwrap(),
            None
        );
        // A SHOW whose WHERE reads rows with a subquery is narrowed like a query.
        assert!(c(
            "SHOW DATABASES WHERE (SELECT COUNT(*) FROM information_schema.tables \
                   WHERE table_schema = 'other') > 0"
        )
        .is_err());
        let all = confine(
            "SELECT * FROM information_schema.tables",
            Reading::DEFAULT,
            false,
            &Visible::All,
            false,
        );
        assert_eq!(all.unwrap(), None);
    }

    #[test]
    fn refuses_what_it_cannot_confine() {
        assert_eq!(
            c("SELECT * FROM information_schema.innodb_trx"),
            Err(ConfineError::Denied("innodb_trx".into()))
        );
        assert_eq!(
            c("SELECT * FROM information_schema.user_privileges"),
            Err(ConfineError::Denied("user_privileges".into()))
        );
        assert!(matches!(
            c("SELECT * FROM information_schema.tables WHERE ((("),
            Err(ConfineError::Unreadable(_))
        ));
        // Forms with no table factor behind the name are refused, not let through.
        for sql in [
            "TABLE information_schema.schemata",
            "SELECT 1 FROM t WHERE a IN (TABLE information_schema.schemata)",
        ] {
            assert!(matches!(c(sql), Err(ConfineError::Unreadable(_))), "{sql}");
        }
        assert_eq!(
            c("SELECT * FROM information_schema.files"),
            Err(ConfineError::Denied("files".into()))
        );
        // Copied into a table, a filtered view would not be checked again.
        assert_eq!(
            c("INSERT INTO x SELECT * FROM information_schema.tables"),
            Err(ConfineError::Denied("tables".into()))
        );
        let admin = confine(
            "SELECT * FROM information_schema.innodb_trx",
            Reading::DEFAULT,
            false,
            &only(&["shop"]),
            true,
        );
        assert_eq!(admin.unwrap(), None);
    }

    #[test]
    fn reads_unqualified_names_in_information_schema_and_ansi_quotes() {
        let ansi = Reading {
            backslash_escapes: true,
            ansi_quotes: true,
            pipes_as_concat: false,
        };
        let out = confine(
            "SELECT * FROM \"information_schema\".\"SCHEMATA\"",
            ansi,
            false,
            &Visible::AllBut(vec!["mysql".into()]),
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            out,
            "SELECT * FROM (SELECT * FROM information_schema.`SCHEMATA` WHERE (SCHEMA_NAME \
             NOT IN (X'6d7973716c') AND CAST(SCHEMA_NAME AS BINARY) NOT IN (X'6d7973716c'))) \
             AS `SCHEMATA`"
        );
        let out = confine(
            "SELECT * FROM tables",
            Reading::DEFAULT,
            true,
            &only(&[]),
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            out,
            "SELECT * FROM (SELECT * FROM information_schema.`tables` WHERE FALSE) AS `tables`"
        );
    }
}
