//! What a statement does to each table it names, for rights granted per table: the
//! tables it writes (INSERT's, UPDATE's and DELETE's targets), those whose definition
//! it changes (DDL), and those it only reads (everything else it names). A statement
//! whose targets this cannot tell is taken to do everything it needs to every table
//! it names, so an unknown shape is refused rather than let through.

use sqlparser::ast::{
    AssignmentTarget, FromTable, ObjectName, ObjectType, SetExpr, ShowCreateObject, Statement,
    TableFactor, TableObject, TableWithJoins,
};
use sqlparser::parser::Parser;

use super::{mask_lock_in_share_mode, refs, spans, RouteError};
use crate::privilege::Need;
use crate::reading::Reading;

/// A table a statement uses, and the right that use needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableUse {
    /// The qualifier as written; `None`: the session's database.
    pub schema: Option<String>,
    pub table: String,
    pub need: Need,
}

/// The statement's table uses, and whether it is an UPDATE or DELETE without WHERE.
#[derive(Debug, Default)]
pub struct TableAccess {
    pub uses: Vec<TableUse>,
    /// An UPDATE or DELETE with no WHERE clause: every row of its targets.
    pub unbounded_write: bool,
    /// Every statement was of a shape whose tables are known: otherwise a table may
    /// be named other than as a relation (`SHOW INDEX FROM t`), and `uses` may miss it.
    pub exact: bool,
}

/// `needs`: what the statement needs as a whole (from its words); a shape whose
/// targets are not known gets all of them on every table it names.
pub fn table_access(
    sql: &[u8],
    reading: Reading,
    needs: &[Need],
) -> Result<TableAccess, RouteError> {
    let text = std::str::from_utf8(sql).map_err(|_| RouteError::NotUtf8(String::new()))?;
    let masked = mask_lock_in_share_mode(text, reading);
    let statements = Parser::parse_sql(&reading.dialect(), masked.as_deref().unwrap_or(text))
        .map_err(|e| RouteError::Parse(e.to_string()))?;
    let offsets = spans::Offsets::new(text);
    let mut access = TableAccess {
        exact: true,
        ..TableAccess::default()
    };
    for statement in &statements {
        let ctes = refs::cte_names(statement);
        let refs = refs::collect(statement, &offsets);
        let named: Vec<(Option<String>, String)> = refs
            .tables
            .iter()
            .filter(|t| !t.deleted && (t.schema.is_some() || !ctes.contains(&t.name)))
            .map(|t| (t.schema.clone(), t.name.clone()))
            .collect();
        let alias_of = |n: &str| -> Option<String> {
            refs.aliases
                .iter()
                .find(|(_, a)| a.eq_ignore_ascii_case(n))
                .map(|(t, _)| t.clone())
        };
        let Some(shape) = shape(statement, &alias_of) else {
            // Targets unknown: every table may be anything the statement needs.
            access.exact = false;
            for (schema, table) in &named {
                for &need in needs.iter().filter(|n| on_tables(**n)) {
                    access.push(schema.clone(), table.clone(), need);
                }
            }
            continue;
        };
        access.unbounded_write |= shape.unbounded;
        for (schema, table) in &shape.targets {
            access.push(schema.clone(), table.clone(), shape.need);
            if shape.reads_targets {
                access.push(schema.clone(), table.clone(), Need::Read);
            }
        }
        // Each target's own mention is the target; every other mention is a read.
        let mut unmatched = shape.targets.clone();
        for (schema, table) in named {
            if let Some(i) = unmatched
                .iter()
                .position(|t| same(t, &(schema.clone(), table.clone())))
            {
                unmatched.remove(i);
                continue;
            }
            access.push(schema, table, Need::Read);
        }
    }
    Ok(access)
}

/// Rights that are granted per table.
pub fn on_tables(need: Need) -> bool {
    matches!(need, Need::Read | Need::Write | Need::Ddl)
}

impl TableAccess {
    fn push(&mut self, schema: Option<String>, table: String, need: Need) {
        let u = TableUse {
            schema,
            table,
            need,
        };
        if !self.uses.contains(&u) {
            self.uses.push(u);
        }
    }
}

type Name = (Option<String>, String);

fn same(a: &Name, b: &Name) -> bool {
    let schema = match (&a.0, &b.0) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        (None, None) => true,
        _ => false,
    };
    schema && a.1.eq_ignore_ascii_case(&b.1)
}

/// What a statement of a known shape writes or redefines.
struct Shape {
    targets: Vec<Name>,
    need: Need,
    /// The targets' rows are read too (a WHERE picks them).
    reads_targets: bool,
    unbounded: bool,
}

fn name(n: &ObjectName) -> Option<Name> {
    let parts: Vec<String> =
        n.0.iter()
            .filter_map(|p| p.as_ident().map(|i| i.value.clone()))
            .collect();
    match parts.as_slice() {
        [t] => Some((None, t.clone())),
        [s, t] => Some((Some(s.clone()), t.clone())),
        _ => None,
    }
}

/// The tables of a FROM-like list (`a JOIN b`), by name.
fn joined(from: &[TableWithJoins]) -> Vec<Name> {
    let mut out = Vec::new();
    for t in from {
        for factor in std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)) {
            if let TableFactor::Table { name: n, .. } = factor {
                out.extend(name(n));
            }
        }
    }
    out
}

/// A name that may be an alias (`DELETE o FROM orders o`, `SET o.x = 1`), as its table.
fn unaliased(n: Name, alias_of: &dyn Fn(&str) -> Option<String>) -> Name {
    match (&n.0, alias_of(&n.1)) {
        (None, Some(table)) => (None, table),
        _ => n,
    }
}

fn shape(statement: &Statement, alias_of: &dyn Fn(&str) -> Option<String>) -> Option<Shape> {
    let ddl = |targets: Vec<Name>| Shape {
        targets,
        need: Need::Ddl,
        reads_targets: false,
        unbounded: false,
    };
    Some(match statement {
        // `WITH … DELETE …`: the data statement decides.
        Statement::Query(q)
            if !matches!(
                *q.body,
                SetExpr::Select(_)
                    | SetExpr::Query(_)
                    | SetExpr::SetOperation { .. }
                    | SetExpr::Values(_)
                    | SetExpr::Table(_)
            ) =>
        {
            match &*q.body {
                SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) => {
                    return shape(s, alias_of)
                }
                _ => return None,
            }
        }
        Statement::Query(_) => Shape {
            targets: Vec::new(),
            need: Need::Read,
            reads_targets: false,
            unbounded: false,
        },
        Statement::ShowCreate {
            obj_type: ShowCreateObject::Table | ShowCreateObject::View,
            obj_name,
        } => Shape {
            targets: name(obj_name).into_iter().collect(),
            need: Need::Read,
            reads_targets: false,
            unbounded: false,
        },
        Statement::Insert(ins) => match &ins.table {
            TableObject::TableName(n) => Shape {
                targets: name(n).into_iter().collect(),
                need: Need::Write,
                reads_targets: false,
                unbounded: false,
            },
            _ => return None,
        },
        Statement::Update(u) => {
            // `SET a.x = …` names the tables written; an unqualified column may be
            // any joined table's.
            let mut targets = Vec::new();
            let mut all_qualified = true;
            for a in &u.assignments {
                let columns = match &a.target {
                    AssignmentTarget::ColumnName(c) => std::slice::from_ref(c),
                    AssignmentTarget::Tuple(cs) => cs.as_slice(),
                };
                for c in columns {
                    let parts: Vec<String> =
                        c.0.iter()
                            .filter_map(|p| p.as_ident().map(|i| i.value.clone()))
                            .collect();
                    match parts.as_slice() {
                        [_] => all_qualified = false,
                        [t, _] => targets.push(unaliased((None, t.clone()), alias_of)),
                        [s, t, _] => targets.push((Some(s.clone()), t.clone())),
                        _ => return None,
                    }
                }
            }
            if !all_qualified || targets.is_empty() {
                targets = joined(std::slice::from_ref(&u.table));
            }
            Shape {
                targets,
                need: Need::Write,
                reads_targets: u.selection.is_some(),
                unbounded: u.selection.is_none(),
            }
        }
        Statement::Delete(d) => {
            let targets = if d.tables.is_empty() {
                match &d.from {
                    FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => joined(f),
                }
            } else {
                d.tables
                    .iter()
                    .filter_map(name)
                    .map(|n| unaliased(n, alias_of))
                    .collect()
            };
            Shape {
                targets,
                need: Need::Write,
                reads_targets: d.selection.is_some(),
                unbounded: d.selection.is_none(),
            }
        }
        Statement::CreateTable(ct) => ddl(name(&ct.name).into_iter().collect()),
        Statement::CreateView(cv) => ddl(name(&cv.name).into_iter().collect()),
        Statement::AlterView { name: n, .. } => ddl(name(n).into_iter().collect()),
        Statement::AlterTable(at) => ddl(name(&at.name).into_iter().collect()),
        Statement::CreateIndex(ci) => ddl(name(&ci.table_name).into_iter().collect()),
        Statement::Truncate(t) => ddl(t.table_names.iter().filter_map(|t| name(&t.name)).collect()),
        Statement::RenameTable(r) => ddl(r
            .iter()
            .flat_map(|r| [name(&r.old_name), name(&r.new_name)])
            .flatten()
            .collect()),
        Statement::Drop {
            object_type: ObjectType::Table | ObjectType::View,
            names,
            ..
        } => ddl(names.iter().filter_map(name).collect()),
        Statement::Drop {
            object_type: ObjectType::Index,
            table: Some(t),
            ..
        } => ddl(name(t).into_iter().collect()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(sql: &str) -> Vec<(String, Need)> {
        let needs = crate::privilege::needs(sql.as_bytes());
        table_access(sql.as_bytes(), Reading::DEFAULT, &needs)
            .map(|a| {
                a.uses
                    .into_iter()
                    .map(|u| {
                        let name = match u.schema {
                            Some(s) => format!("{s}.{}", u.table),
                            None => u.table,
                        };
                        (name, u.need)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn targets_write_and_everything_else_reads() {
        use Need::*;
        assert_eq!(
            uses("SELECT * FROM a JOIN b.c ON 1"),
            [("a".into(), Read), ("b.c".into(), Read)]
        );
        assert_eq!(
            uses("INSERT INTO log SELECT * FROM orders WHERE id = 1"),
            [("log".into(), Write), ("orders".into(), Read)]
        );
        assert_eq!(uses("INSERT INTO log VALUES (1)"), [("log".into(), Write)]);
        assert_eq!(
            uses("UPDATE orders o JOIN users u ON o.u = u.id SET o.total = u.x WHERE u.id = 1"),
            [
                ("orders".into(), Write),
                ("orders".into(), Read),
                ("users".into(), Read)
            ]
        );
        assert_eq!(
            uses("UPDATE orders o JOIN users u ON o.u = u.id SET total = 1"),
            [("orders".into(), Write), ("users".into(), Write)]
        );
        assert_eq!(
            uses("DELETE o FROM orders o JOIN users u ON o.u = u.id WHERE u.x = 1"),
            [
                ("orders".into(), Write),
                ("orders".into(), Read),
                ("users".into(), Read)
            ]
        );
        assert_eq!(
            uses("DELETE FROM shop.orders"),
            [("shop.orders".into(), Write)]
        );
        assert_eq!(
            uses("UPDATE t SET x = (SELECT max(y) FROM t) WHERE id = 2"),
            [("t".into(), Write), ("t".into(), Read)]
        );
        assert_eq!(
            uses("CREATE TABLE n AS SELECT * FROM o"),
            [("n".into(), Ddl), ("o".into(), Read)]
        );
        assert_eq!(
            uses("DROP TABLE a, b"),
            [("a".into(), Ddl), ("b".into(), Ddl)]
        );
        assert_eq!(uses("TRUNCATE TABLE a"), [("a".into(), Ddl)]);
        assert_eq!(uses("ALTER TABLE a ADD COLUMN c INT"), [("a".into(), Ddl)]);
        assert_eq!(
            uses("RENAME TABLE a TO b"),
            [("a".into(), Ddl), ("b".into(), Ddl)]
        );
        assert_eq!(uses("SHOW CREATE TABLE s.a"), [("s.a".into(), Read)]);
        assert_eq!(uses("DESCRIBE a"), [("a".into(), Read)]);
        assert_eq!(
            uses("WITH x AS (SELECT 1) DELETE FROM a WHERE id IN (SELECT * FROM x)"),
            [("a".into(), Write), ("a".into(), Read)]
        );
        assert_eq!(
            uses("WITH x AS (SELECT * FROM a) SELECT * FROM x"),
            [("a".into(), Read)]
        );
    }

    /// Which common statements the parser reads (the others fall back to a look at
    /// their words).
    #[test]
    fn shows_name_their_table() {
        use Need::*;
        for sql in [
            "SHOW COLUMNS FROM t",
            "SHOW FULL COLUMNS FROM t",
            "SHOW CREATE TABLE t",
            "DESC t",
            "EXPLAIN t",
        ] {
            assert_eq!(uses(sql), [("t".into(), Read)], "{sql}");
        }
        // Parsed, but the table is no relation in the tree: not exact.
        let parsed = table_access(b"SHOW INDEX FROM t", Reading::DEFAULT, &[Read]);
        assert!(parsed.is_ok_and(|a| !a.exact));
    }

    #[test]
    fn unbounded_writes_are_those_without_where() {
        let unbounded = |sql: &str| {
            table_access(sql.as_bytes(), Reading::DEFAULT, &[Need::Write])
                .map(|a| a.unbounded_write)
                .unwrap_or_default()
        };
        assert!(unbounded("DELETE FROM t"));
        assert!(unbounded("UPDATE t SET a = 1 LIMIT 5"));
        assert!(unbounded("DELETE t FROM t JOIN u ON t.a = u.a"));
        assert!(!unbounded("DELETE FROM t WHERE a = 1"));
        assert!(!unbounded(
            "UPDATE t SET a = 1 WHERE b IN (SELECT c FROM u)"
        ));
        assert!(!unbounded("INSERT INTO t VALUES (1)"));
    }
}
