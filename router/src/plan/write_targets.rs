//! The tables an UPDATE or DELETE changes. Its SET columns and DELETE targets name
//! tables by alias or by name, and only the statement's own top-level tables count:
//! an alias inside a subquery or derived table is another scope. A name that cannot
//! be resolved there makes the targets unknown (`None`), never a guess.

use sqlparser::ast::{
    AssignmentTarget, FromTable, ObjectName, Statement, TableFactor, TableWithJoins,
    UpdateTableFromKind,
};

/// A table as written: (schema qualifier, name).
pub type Name = (Option<String>, String);

/// The tables `statement` changes, when it is an UPDATE or DELETE (`Some(empty)` for
/// other statements); `None` when they cannot be told.
pub fn write_targets(statement: &Statement) -> Option<Vec<Name>> {
    match statement {
        Statement::Update(u) => {
            let mut from = vec![u.table.clone()];
            if let Some(UpdateTableFromKind::BeforeSet(f) | UpdateTableFromKind::AfterSet(f)) =
                &u.from
            {
                from.extend(f.iter().cloned());
            }
            let factors = factors(&from)?;
            let mut targets = Vec::new();
            for a in &u.assignments {
                let columns = match &a.target {
                    AssignmentTarget::ColumnName(c) => std::slice::from_ref(c),
                    AssignmentTarget::Tuple(cs) => cs.as_slice(),
                };
                for c in columns {
                    let parts = idents(c)?;
                    match parts.split_last() {
                        // Unqualified: any of the statement's tables may own it.
                        Some((_, [])) => targets.extend(named(&factors)),
                        Some((_, qualifier)) => targets.push(resolve(qualifier, &factors)?),
                        None => return None,
                    }
                }
            }
            Some(dedup(targets))
        }
        Statement::Delete(d) => {
            let from = match &d.from {
                FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
            };
            let mut scope = factors(from)?;
            if let Some(using) = &d.using {
                // `DELETE FROM a, b USING a JOIN b …`: FROM names the targets.
                let joined = factors(using)?;
                let targets = from_names(from)?
                    .iter()
                    .map(|n| resolve(&qualifier(n), &joined))
                    .collect::<Option<Vec<_>>>()?;
                return Some(dedup(targets));
            }
            if d.tables.is_empty() {
                return Some(dedup(named(&scope)));
            }
            scope.retain(|f| f.name.is_some() || f.alias.is_some());
            let targets = d
                .tables
                .iter()
                .map(|t| resolve(&idents(t)?, &scope))
                .collect::<Option<Vec<_>>>()?;
            Some(dedup(targets))
        }
        _ => Some(Vec::new()),
    }
}

/// A top-level table of the statement: its name (`None`: a derived table or other
/// factor that no write can change) and alias.
struct Factor {
    name: Option<Name>,
    alias: Option<String>,
}

/// The factors of a FROM list, nested joins opened. `None`: a table name of more
/// than two parts.
fn factors(from: &[TableWithJoins]) -> Option<Vec<Factor>> {
    let mut out = Vec::new();
    for t in from {
        for f in std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)) {
            match f {
                TableFactor::Table { name, alias, .. } => out.push(Factor {
                    name: Some(name_of(name)?),
                    alias: alias.as_ref().map(|a| a.name.value.clone()),
                }),
                TableFactor::NestedJoin {
                    table_with_joins, ..
                } => out.extend(factors(std::slice::from_ref(table_with_joins))?),
                _ => out.push(Factor {
                    name: None,
                    alias: None,
                }),
            }
        }
    }
    Some(out)
}

fn named(factors: &[Factor]) -> Vec<Name> {
    factors.iter().filter_map(|f| f.name.clone()).collect()
}

fn dedup(mut names: Vec<Name>) -> Vec<Name> {
    let mut out: Vec<Name> = Vec::new();
    for n in names.drain(..) {
        if !out.iter().any(|o| same(o, &n)) {
            out.push(n);
        }
    }
    out
}

/// The same table as written (names compare without case).
pub fn same(a: &Name, b: &Name) -> bool {
    let schema = match (&a.0, &b.0) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        (None, None) => true,
        _ => false,
    };
    schema && a.1.eq_ignore_ascii_case(&b.1)
}

/// A name as the parts a qualifier is written with.
fn qualifier(n: &Name) -> Vec<String> {
    n.0.iter().cloned().chain([n.1.clone()]).collect()
}

/// The names of a DELETE … USING's FROM list.
fn from_names(from: &[TableWithJoins]) -> Option<Vec<Name>> {
    let f = factors(from)?;
    f.into_iter().map(|f| f.name).collect()
}

/// The table `qualifier` (`t`, or `s`, `t`) stands for among `factors`: an alias
/// first, then an unaliased table of that name.
fn resolve(qualifier: &[String], factors: &[Factor]) -> Option<Name> {
    match qualifier {
        [t] => {
            // Aliases (and names) that differ only in case are two on the server and
            // one here: such a statement's targets are unknown, not guessed.
            let by_alias: Vec<&Factor> = factors
                .iter()
                .filter(|f| {
                    f.alias
                        .as_deref()
                        .is_some_and(|a| a.eq_ignore_ascii_case(t))
                })
                .collect();
            let by_name: Vec<&Factor> = factors
                .iter()
                .filter(|f| {
                    f.alias.is_none()
                        && f.name.as_ref().is_some_and(|n| n.1.eq_ignore_ascii_case(t))
                })
                .collect();
            match (by_alias.as_slice(), by_name.as_slice()) {
                ([f], []) | ([], [f]) => f.name.clone(),
                _ => None,
            }
        }
        [s, t] => Some((Some(s.clone()), t.clone())),
        _ => None,
    }
}

fn idents(n: &ObjectName) -> Option<Vec<String>> {
    n.0.iter()
        .map(|p| p.as_ident().map(|i| i.value.clone()))
        .collect()
}

/// A one- or two-part table name.
pub fn name_of(n: &ObjectName) -> Option<Name> {
    match idents(n)?.as_slice() {
        [t] => Some((None, t.clone())),
        [s, t] => Some((Some(s.clone()), t.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::parser::Parser;

    fn targets(sql: &str) -> Option<Vec<String>> {
        let s =
            Parser::parse_sql(&crate::reading::Reading::DEFAULT.dialect(), sql).expect("parses");
        write_targets(&s[0]).map(|t| {
            t.into_iter()
                .map(|(s, t)| s.map_or(t.clone(), |s| format!("{s}.{t}")))
                .collect()
        })
    }

    #[test]
    fn targets_resolve_in_the_statements_own_scope() {
        let t = |sql| targets(sql).unwrap_or_else(|| panic!("{sql}: unknown"));
        assert_eq!(
            t("UPDATE db.notes n SET n.body = 1 WHERE n.id = 1"),
            ["db.notes"]
        );
        assert_eq!(t("UPDATE db.notes SET notes.body = 1"), ["db.notes"]);
        assert_eq!(t("DELETE n FROM db.notes n WHERE n.id = 1"), ["db.notes"]);
        assert_eq!(
            t("UPDATE audit, notes SET body = 1 WHERE audit.id = notes.id"),
            ["audit", "notes"]
        );
        assert_eq!(
            t("UPDATE (audit JOIN notes ON audit.id = notes.id) SET body = 1"),
            ["audit", "notes"]
        );
        assert_eq!(t("UPDATE a JOIN b ON a.id = b.id SET a.x = b.y"), ["a"]);
        assert_eq!(t("DELETE FROM a1 USING t1 AS a1 JOIN t2"), ["t1"]);
        assert_eq!(t("DELETE FROM t"), ["t"]);
        assert_eq!(t("SELECT 1"), Vec::<String>::new());
        // An alias of a subquery's scope is no alias here.
        assert_eq!(
            t("UPDATE audit a JOIN (SELECT id FROM audit n) d ON d.id = a.id JOIN notes n ON n.id = a.id SET n.body = 1"),
            ["notes"]
        );
        // A qualifier naming nothing of the statement's own: unknown.
        assert_eq!(
            targets("UPDATE t JOIN (SELECT 1 AS id) d ON d.id = t.id SET d.id = 2"),
            None
        );
        assert_eq!(targets("UPDATE notes n SET x.body = 1"), None);
        // `N` and `n` are two aliases on the server: not told apart here, so unknown.
        assert_eq!(
            targets("UPDATE notes N JOIN salaries n ON N.id = n.id SET n.pay = 0"),
            None
        );
        assert_eq!(
            targets("DELETE n FROM notes N JOIN salaries n ON N.id = n.id"),
            None
        );
    }
}
