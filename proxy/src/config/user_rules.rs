//! A user's rules beyond its schema-wide rights, compiled once when the layout is
//! validated (every statement of the user's sessions asks them): rights per table and
//! the SQL firewall's denials.

use router::privilege::Need;

use super::accounts::UserConfig;

/// Rights on one table, replacing the user's `privileges` there.
#[derive(Debug, Clone)]
struct TableRights {
    schema: String,
    table: String,
    needs: Vec<Need>,
}

/// What [`UserConfig`]'s `tables`, `deny_digests` and `deny_patterns` say, ready to ask.
#[derive(Debug, Clone, Default)]
pub struct UserRules {
    tables: Vec<TableRights>,
    deny_digests: Vec<u64>,
    /// Each with its index in `deny_patterns`, named in the error.
    deny_patterns: Vec<(usize, regex::Regex)>,
}

/// The longest a compiled deny pattern may be: a pattern is matched against every
/// statement of the user, and a huge automaton would cost every statement.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

impl UserRules {
    /// `key` names the user in errors (`users[2]`).
    pub(super) fn compile(
        u: &UserConfig,
        key: &str,
        schemas: &dyn Fn(&str) -> bool,
        errors: &mut Vec<rules::ConfigError>,
    ) -> UserRules {
        let mut out = UserRules::default();
        for (name, rights) in &u.tables {
            let at = format!("{key}.tables.\"{name}\"");
            let Some((schema, table)) = name
                .split_once('.')
                .filter(|(s, t)| !s.is_empty() && !t.is_empty() && !t.contains('.'))
            else {
                // `deny_patterns = […]` after `[users.tables]` lands in the table.
                let hint = if [
                    "deny_digests",
                    "deny_patterns",
                    "require_where",
                    "privileges",
                    "schemas",
                ]
                .contains(&name.as_str())
                {
                    format!(
                        "; `{name}` belongs before the [users.tables] header, as a key of the user"
                    )
                } else {
                    String::new()
                };
                errors.push(rules::ConfigError::new(
                    at,
                    format!("name the table with its schema: \"schema.table\"{hint}"),
                ));
                continue;
            };
            if !schemas(schema) {
                errors.push(rules::ConfigError::new(
                    &at,
                    format!("unknown schema `{schema}`"),
                ));
            } else if !u.schemas.is_empty() && !u.schemas.iter().any(|s| s == "*" || s == schema) {
                errors.push(rules::ConfigError::new(
                    &at,
                    format!(
                        "user `{}` may not use schema `{schema}`: the rule would do nothing",
                        u.name
                    ),
                ));
            }
            let twice = out.tables.iter().any(|t| {
                t.schema.eq_ignore_ascii_case(schema) && t.table.eq_ignore_ascii_case(table)
            });
            if twice {
                errors.push(rules::ConfigError::new(
                    &at,
                    "given twice (names compare without case)",
                ));
            }
            let mut needs = Vec::new();
            for r in rights {
                match Need::parse(r).filter(|n| router::plan::on_tables(*n)) {
                    Some(n) => needs.push(n),
                    None => errors.push(rules::ConfigError::new(
                        &at,
                        format!("`{r}` is no right on a table; use read, write, ddl"),
                    )),
                }
            }
            out.tables.push(TableRights {
                schema: schema.to_string(),
                table: table.to_string(),
                needs,
            });
        }
        for (i, d) in u.deny_digests.iter().enumerate() {
            let parsed = (d.len() == 16)
                .then(|| u64::from_str_radix(d, 16).ok())
                .flatten();
            match parsed {
                Some(v) if out.deny_digests.contains(&v) => errors.push(rules::ConfigError::new(
                    format!("{key}.deny_digests[{i}]"),
                    format!("`{d}` is listed twice"),
                )),
                Some(v) => out.deny_digests.push(v),
                None => errors.push(rules::ConfigError::new(
                    format!("{key}.deny_digests[{i}]"),
                    format!("`{d}` is no digest: 16 hex digits, as SHOW STATS on the admin port shows them"),
                )),
            }
        }
        for (i, p) in u.deny_patterns.iter().enumerate() {
            if u.deny_patterns[..i].contains(p) {
                errors.push(rules::ConfigError::new(
                    format!("{key}.deny_patterns[{i}]"),
                    format!("`{p}` is listed twice"),
                ));
                continue;
            }
            match regex::RegexBuilder::new(p)
                .size_limit(PATTERN_SIZE_LIMIT)
                .build()
            {
                Ok(r) => out.deny_patterns.push((i, r)),
                Err(e) => errors.push(rules::ConfigError::new(
                    format!("{key}.deny_patterns[{i}]"),
                    format!("not a regular expression: {e}"),
                )),
            }
        }
        out
    }

    /// Some table has rights of its own.
    pub fn has_tables(&self) -> bool {
        !self.tables.is_empty()
    }

    /// The rights on `schema`.`table`, when it has its own (names compare without case).
    pub fn table(&self, schema: &str, table: &str) -> Option<&[Need]> {
        self.tables
            .iter()
            .find(|t| t.schema.eq_ignore_ascii_case(schema) && t.table.eq_ignore_ascii_case(table))
            .map(|t| t.needs.as_slice())
    }

    /// The rights of every table named `name`, in any schema.
    pub fn rights_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [Need]> + 'a {
        self.tables
            .iter()
            .filter(move |t| t.table.eq_ignore_ascii_case(name))
            .map(|t| t.needs.as_slice())
    }

    /// Some table grants `need`.
    pub fn grants_somewhere(&self, need: Need) -> bool {
        self.tables.iter().any(|t| t.needs.contains(&need))
    }

    /// Some statement digests are denied.
    pub fn has_digests(&self) -> bool {
        !self.deny_digests.is_empty()
    }

    /// The firewall has denials to check.
    pub fn has_denials(&self) -> bool {
        !self.deny_digests.is_empty() || !self.deny_patterns.is_empty()
    }

    /// Which denial refuses a statement with this digest, if one does.
    pub fn denial(&self, digest: u64, text: &str) -> Option<String> {
        if self.has_digests() && self.deny_digests.contains(&digest) {
            return Some(format!("deny_digests has its digest {digest:016x}"));
        }
        self.deny_patterns
            .iter()
            .find(|(_, r)| r.is_match(text))
            .map(|(i, r)| {
                let shown: String = text.chars().take(200).collect();
                format!(
                    "deny_patterns[{i}] `{}` matches its digest `{shown}`",
                    r.as_str()
                )
            })
    }
}
