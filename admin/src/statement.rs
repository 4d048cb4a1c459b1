//! The admin port's own statements, told apart from SQL for the admin tables by their
//! first words. Words are matched case-insensitively, whatever the spacing.

/// An admin statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// `VALIDATE CONFIG`
    Validate,
    /// `LOAD CONFIG TO RUNTIME [FORCE]`
    LoadToRuntime { force: bool },
    /// `SAVE CONFIG TO DISK`
    SaveToDisk,
    /// `LOAD CONFIG FROM DISK`
    LoadFromDisk,
    /// `SHOW CONFIG HISTORY`
    ShowHistory,
    /// `ROLLBACK CONFIG TO <version> [FORCE]`
    Rollback { version: i64, force: bool },
    /// `EXPORT CONFIG`
    Export,
    /// `SHOW CONFIG DIFF`
    Diff,
    /// `CREATE MISSING TABLES`
    CreateMissingTables,
    /// Anything else: SQL on the admin tables.
    Sql,
}

/// `sql` after its leading comments and whitespace (`/* … */`, `-- …`, `# …`), which
/// clients and scripts put before statements.
pub fn without_leading_comments(sql: &str) -> &str {
    let mut rest = sql.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("/*") {
            rest = r
                .split_once("*/")
                .map_or("", |(_, after)| after)
                .trim_start();
        } else if rest.starts_with("--") || rest.starts_with('#') {
            rest = rest
                .split_once('\n')
                .map_or("", |(_, after)| after)
                .trim_start();
        } else {
            return rest;
        }
    }
}

/// Reads the admin statement `sql` is, or why it is malformed.
pub fn parse(sql: &str) -> Result<Statement, String> {
    let text = without_leading_comments(sql)
        .trim()
        .trim_end_matches(';')
        .trim();
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| w.to_ascii_uppercase())
        .collect();
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    Ok(match w.as_slice() {
        ["VALIDATE", "CONFIG"] => Statement::Validate,
        ["LOAD", "CONFIG", "TO", "RUNTIME"] => Statement::LoadToRuntime { force: false },
        ["LOAD", "CONFIG", "TO", "RUNTIME", "FORCE"] => Statement::LoadToRuntime { force: true },
        ["SAVE", "CONFIG", "TO", "DISK"] => Statement::SaveToDisk,
        ["LOAD", "CONFIG", "FROM", "DISK"] => Statement::LoadFromDisk,
        ["SHOW", "CONFIG", "HISTORY"] => Statement::ShowHistory,
        ["SHOW", "CONFIG", "DIFF"] => Statement::Diff,
        ["EXPORT", "CONFIG"] => Statement::Export,
        ["CREATE", "MISSING", "TABLES"] => Statement::CreateMissingTables,
        ["ROLLBACK", "CONFIG", "TO", rest @ ..] => {
            let rest = match rest {
                ["VERSION", more @ ..] => more,
                more => more,
            };
            let (v, force) = match rest {
                [v] => (*v, false),
                [v, "FORCE"] => (*v, true),
                _ => return Err("ROLLBACK CONFIG TO <version> [FORCE]".to_string()),
            };
            let version = v.parse().map_err(|_| {
                format!("ROLLBACK CONFIG TO takes a version number (SHOW CONFIG HISTORY lists them), not `{v}`")
            })?;
            Statement::Rollback { version, force }
        }
        [first, second, ..]
            if matches!(*first, "VALIDATE" | "LOAD" | "SAVE" | "EXPORT")
                || (matches!(*first, "SHOW" | "ROLLBACK") && *second == "CONFIG") =>
        {
            return Err(format!(
                "unknown admin statement `{text}`; the config verbs are VALIDATE CONFIG, \
                 LOAD CONFIG TO RUNTIME [FORCE], SAVE CONFIG TO DISK, LOAD CONFIG FROM DISK, \
                 SHOW CONFIG HISTORY, SHOW CONFIG DIFF, ROLLBACK CONFIG TO <version>, EXPORT CONFIG"
            ))
        }
        _ => Statement::Sql,
    })
}

/// Whether a DBA's SQL that failed meant to change something (and so is audited):
/// anything but a plain read. Leading comments and parentheses are looked past.
pub fn changes_rows(sql: &str) -> bool {
    let mut rest = without_leading_comments(sql);
    while let Some(r) = rest.strip_prefix('(') {
        rest = without_leading_comments(r);
    }
    let first = rest
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    !matches!(first.as_str(), "SELECT" | "VALUES" | "EXPLAIN" | "PRAGMA")
}

/// Words the audit keeps in a masked statement besides the admin tables' names
/// ([`crate::tables::TABLES`]): SQL's own and the admin columns' names. Any other bare word may be a password written without quotes.
const KEPT_WORDS: &[&str] = &[
    "insert",
    "into",
    "values",
    "update",
    "set",
    "where",
    "and",
    "or",
    "not",
    "null",
    "delete",
    "from",
    "replace",
    "select",
    "with",
    "as",
    "in",
    "is",
    "like",
    "default",
    "on",
    "conflict",
    "do",
    "nothing",
    "returning",
    "limit",
    "offset",
    "order",
    "by",
    "union",
    "all",
    "exists",
    "between",
    "true",
    "false",
    "or",
    "ignore",
    "abort",
    "fail",
    "case",
    "when",
    "then",
    "else",
    "end",
    "name",
    "primary_address",
    "user",
    "password",
    "database_name",
    "auto_detect_primary",
    "tls_ca",
    "tls_server_name",
    "node",
    "address",
    "weight",
    "algorithm",
    "rule",
    "property",
    "value",
    "causal_reads",
    "transactions",
    "schema_name",
    "kind",
    "shard_column",
    "tables_per_node",
    "naming",
    "placement",
    "global_id_column",
    "global_id_generator",
    "global_id_worker_id",
    "group_no",
    "table_name",
    "privileges",
    "require_tls",
    "require_where",
    "user_name",
];

/// `sql` as the audit keeps it. A statement that may carry a password (one that names
/// a password, or adds rows to the users or nodes by position) has every literal
/// masked, read as SQLite reads it: quoted strings (`''` inside), numbers, and every
/// bare word that is not SQL's or an admin table's; comments are dropped.
pub fn masked(sql: &str) -> String {
    let lower = without_leading_comments(sql).to_ascii_lowercase();
    let adds = ["insert", "replace", "with"]
        .iter()
        .any(|w| lower.starts_with(w));
    let positional = adds && (lower.contains("users") || lower.contains("nodes"));
    if !lower.contains("password") && !positional {
        return sql.to_string();
    }
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\'' || c == '"' {
            // To the closing quote; a doubled one is a quote inside.
            i += 1;
            while i < chars.len() {
                if chars[i] == c && chars.get(i + 1) == Some(&c) {
                    i += 2;
                } else if chars[i] == c {
                    break;
                } else {
                    i += 1;
                }
            }
            i += 1;
            out.push(c);
            out.push_str("***");
            out.push(c);
        } else if c == '/' && next == Some('*') {
            let rest: String = chars[i + 2..].iter().collect();
            i = rest
                .find("*/")
                .map_or(chars.len(), |p| i + 2 + rest[..p].chars().count() + 2);
            out.push(' ');
        } else if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            out.push(' ');
        } else if c == '`' || c == '[' {
            // A quoted identifier: as it is.
            let close = if c == '[' { ']' } else { '`' };
            out.push(c);
            i += 1;
            while i < chars.len() && chars[i] != close {
                out.push(chars[i]);
                i += 1;
            }
            if i < chars.len() {
                out.push(close);
                i += 1;
            }
        } else if word(c) {
            let start = i;
            while i < chars.len() && word(chars[i]) {
                i += 1;
            }
            let w: String = chars[start..i].iter().collect();
            let lower = w.to_ascii_lowercase();
            let table = lower.strip_prefix("runtime_").unwrap_or(&lower);
            let kept = KEPT_WORDS.contains(&lower.as_str())
                || crate::tables::TABLES.contains(&table)
                || lower.starts_with("config_");
            if !c.is_ascii_digit() && kept {
                out.push_str(&w);
            } else {
                out.push_str("***");
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_read_in_any_case_and_spacing() {
        assert_eq!(
            parse(" load  config to\truntime ;"),
            Ok(Statement::LoadToRuntime { force: false })
        );
        assert_eq!(
            parse("LOAD CONFIG TO RUNTIME FORCE"),
            Ok(Statement::LoadToRuntime { force: true })
        );
        assert_eq!(
            parse("rollback config to 3"),
            Ok(Statement::Rollback {
                version: 3,
                force: false
            })
        );
        assert_eq!(
            parse("ROLLBACK CONFIG TO VERSION 4 force"),
            Ok(Statement::Rollback {
                version: 4,
                force: true
            })
        );
        assert!(parse("ROLLBACK CONFIG TO x").is_err());
        assert!(parse("LOAD CONFIG TO DISK").is_err());
        assert_eq!(parse("SELECT * FROM nodes"), Ok(Statement::Sql));
        assert_eq!(parse("SHOW TABLES"), Ok(Statement::Sql));
    }

    #[test]
    fn failed_statements_are_reads_or_changes() {
        assert_eq!(
            without_leading_comments("/* a */ -- b\n  VALIDATE CONFIG"),
            "VALIDATE CONFIG"
        );
        assert!(!changes_rows("SELECT 1"));
        assert!(!changes_rows(" /* c */ (SELECT 1)"));
        for sql in [
            "/* x */ UPDATE nodes SET a = 1",
            "-- c\nDELETE FROM users",
            "VACUUM",
            "nonsense",
        ] {
            assert!(changes_rows(sql), "{sql}");
        }
    }

    #[test]
    fn passwords_never_reach_the_audit() {
        let m = masked("UPDATE users SET password = 's3cret' WHERE name = 'app'");
        assert!(!m.contains("s3cret"), "{m}");
        let m = masked("INSERT INTO nodes VALUES ('dn3', '127.0.0.1:1', 'root', \"pw\\\"x\")");
        assert!(!m.contains("pw"), "{m}");
        for sql in [
            "INSERT INTO users (name, password) VALUES ('dom\\', 's3cret')",
            "UPDATE users /* bob's */ SET password='s3cret'",
            "INSERT INTO users VALUES ('app', s3cret)",
            "UPDATE users SET password = 'it''s s3cret'",
        ] {
            let m = masked(sql);
            assert!(!m.contains("s3cret"), "{sql}: {m}");
        }
        for sql in [
            "UPDATE users SET password = 123456",
            "UPDATE users SET password = s3cret",
            "INSERT INTO nodes VALUES ('dn3', 'h:1', 'u', 123456)",
            "UPDATE users SET password=\"s3cret",
        ] {
            let m = masked(sql);
            assert!(!m.contains("123456") && !m.contains("s3cret"), "{m}");
        }
        // What names no password stays readable.
        let plain = "UPDATE nodes SET primary_address = '10.0.0.1:3306' WHERE name = 'dn1'";
        assert_eq!(masked(plain), plain);
        assert_eq!(
            masked("INSERT INTO nodes (name, password) SELECT 'dn9', 'pw'"),
            "INSERT INTO nodes (name, password) SELECT '***', '***'"
        );
        assert_eq!(
            masked("UPDATE rules SET algorithm = 'mod'"),
            "UPDATE rules SET algorithm = 'mod'"
        );
    }
}
