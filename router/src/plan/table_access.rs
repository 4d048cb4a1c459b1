//! What a statement does to each table it names, for rights granted per table: the
//! tables it writes (INSERT's, UPDATE's and DELETE's targets), those whose definition
//! it changes (DDL), and those it only reads (everything else it names). A statement
//! whose targets this cannot tell is taken to read every table it names and do to
//! each everything it needs, so an unknown shape is refused rather than let through.
//! Names are taken as written: a common table expression named like a table is
//! checked as that table (a scope that hides a table is not tracked).

use std::ops::ControlFlow;

use sqlparser::ast::{
    AlterTableOperation, CreateTableLikeKind, ObjectType, RenameTableNameKind, SetExpr,
    ShowCreateObject, Statement, TableObject, Visit, Visitor,
};
use sqlparser::parser::Parser;

use super::write_targets::{name_of, same, write_targets, Name};
use super::{mask_lock_in_share_mode, refs, spans, RouteError};
use crate::privilege::Need;
use crate::reading::Reading;

/// A table a statement uses, and the right that use needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableUse {
    /// The qualifier as written; `None`: the database the statement runs in.
    pub schema: Option<String>,
    pub table: String,
    pub need: Need,
}

/// What a statement does to the tables it names.
#[derive(Debug, Default)]
pub struct TableAccess {
    pub uses: Vec<TableUse>,
    /// An UPDATE or DELETE with no WHERE clause: every row of its targets.
    pub unbounded_write: bool,
    /// Every statement was of a shape whose tables are known: otherwise a table may
    /// be named other than as a relation (`SHOW INDEX FROM t`), and `uses` may miss it.
    pub exact: bool,
    /// It defines a view: the tables it reads become reachable through the view,
    /// with the view's rights.
    pub defines_view: bool,
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
        let refs = refs::collect(statement, &offsets);
        // A multi-table DELETE's target list names its tables again: they are
        // targets, and mentioned in its FROM.
        let named: Vec<Name> = refs
            .tables
            .iter()
            .filter(|t| !t.deleted)
            .map(|t| (t.schema.clone(), t.name.clone()))
            .collect();
        // `TABLE t` names its table outside any relation, and so do a foreign key's
        // REFERENCES and a MERGE table's UNION in CREATE and ALTER TABLE.
        access.exact &= !has_table_expression(statement);
        if matches!(
            statement,
            Statement::CreateTable(_) | Statement::AlterTable(_)
        ) {
            access.exact &= !reading.lexer(sql).any(|t| {
                matches!(t, crate::lexer::Token::Word(w)
                    if w.eq_ignore_ascii_case(b"references") || w.eq_ignore_ascii_case(b"union"))
            });
        }
        let Some(shape) = shape(statement) else {
            access.exact = false;
            for (schema, table) in &named {
                access.push(schema.clone(), table.clone(), Need::Read);
                for &need in needs.iter().filter(|n| on_tables(**n)) {
                    access.push(schema.clone(), table.clone(), need);
                }
            }
            continue;
        };
        access.unbounded_write |= shape.unbounded;
        access.defines_view |= shape.view;
        for (schema, table) in &shape.targets {
            access.push(schema.clone(), table.clone(), shape.need);
            if shape.reads_targets {
                access.push(schema.clone(), table.clone(), Need::Read);
            }
        }
        for (schema, table) in &shape.reads {
            access.push(schema.clone(), table.clone(), Need::Read);
        }
        // Each target's own mention is the target; every other mention is a read.
        let mut unmatched = shape.targets.clone();
        for n in named {
            if let Some(i) = unmatched.iter().position(|t| same(t, &n)) {
                unmatched.remove(i);
                continue;
            }
            access.push(n.0, n.1, Need::Read);
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

/// What a statement of a known shape writes or redefines.
struct Shape {
    targets: Vec<Name>,
    need: Need,
    /// The targets' rows are read too (a WHERE picks them).
    reads_targets: bool,
    /// Tables read that are no relation of the tree (`CREATE TABLE … LIKE t`).
    reads: Vec<Name>,
    unbounded: bool,
    view: bool,
}

impl Shape {
    fn new(targets: Vec<Name>, need: Need) -> Shape {
        Shape {
            targets,
            need,
            reads_targets: false,
            reads: Vec::new(),
            unbounded: false,
            view: false,
        }
    }
}

fn shape(statement: &Statement) -> Option<Shape> {
    let one = |n| name_of(n).into_iter().collect::<Vec<_>>();
    Some(match statement {
        // `WITH … DELETE …`: the data statement decides.
        Statement::Query(q) => match &*q.body {
            SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) => return shape(s),
            SetExpr::Select(_)
            | SetExpr::Query(_)
            | SetExpr::SetOperation { .. }
            | SetExpr::Values(_)
            | SetExpr::Table(_) => Shape::new(Vec::new(), Need::Read),
            _ => return None,
        },
        Statement::ShowCreate {
            obj_type: ShowCreateObject::Table | ShowCreateObject::View,
            obj_name,
        } => Shape::new(one(obj_name), Need::Read),
        // DESCRIBE t, SHOW COLUMNS FROM t: their table is a relation of the tree.
        Statement::ExplainTable { .. } => Shape::new(Vec::new(), Need::Read),
        // Only when the parser kept the table (`SHOW COLUMNS FROM account` reads
        // `account` as a keyword and loses it).
        Statement::ShowColumns { show_options, .. }
            if show_options
                .show_in
                .as_ref()
                .is_some_and(|i| i.parent_name.is_some() && i.parent_type.is_none()) =>
        {
            Shape::new(Vec::new(), Need::Read)
        }
        // LOCK TABLES holds its tables (named as plain words, not relations).
        Statement::LockTables { tables } => Shape {
            reads: tables
                .iter()
                .map(|t| (None, t.table.value.clone()))
                .collect(),
            ..Shape::new(Vec::new(), Need::Read)
        },
        // EXPLAIN reads the tables of its statement; EXPLAIN ANALYZE runs it.
        Statement::Explain {
            analyze, statement, ..
        } => match analyze {
            true => return shape(statement),
            false => Shape::new(Vec::new(), Need::Read),
        },
        // ON DUPLICATE KEY UPDATE may read the row it meets (its count tells).
        Statement::Insert(ins) => match &ins.table {
            TableObject::TableName(n) => Shape {
                reads_targets: ins.on.is_some(),
                ..Shape::new(one(n), Need::Write)
            },
            _ => return None,
        },
        // SET expressions, WHERE and ORDER BY read the rows they change, and the
        // counts of changed rows tell what they read.
        Statement::Update(u) => Shape {
            reads_targets: true,
            unbounded: u.selection.is_none(),
            ..Shape::new(write_targets(statement)?, Need::Write)
        },
        Statement::Delete(d) => Shape {
            reads_targets: d.selection.is_some() || !d.order_by.is_empty() || d.limit.is_some(),
            unbounded: d.selection.is_none(),
            ..Shape::new(write_targets(statement)?, Need::Write)
        },
        Statement::CreateTable(ct) => {
            let like = match &ct.like {
                Some(CreateTableLikeKind::Parenthesized(l) | CreateTableLikeKind::Plain(l)) => {
                    one(&l.name)
                }
                None => Vec::new(),
            };
            Shape {
                reads: like
                    .into_iter()
                    .chain(ct.clone.iter().flat_map(one))
                    .collect(),
                ..Shape::new(one(&ct.name), Need::Ddl)
            }
        }
        Statement::CreateView(cv) => Shape {
            view: true,
            ..Shape::new(one(&cv.name), Need::Ddl)
        },
        Statement::AlterView { name: n, .. } => Shape {
            view: true,
            ..Shape::new(one(n), Need::Ddl)
        },
        // ALTER TABLE … RENAME TO: the new name is changed too.
        Statement::AlterTable(at) => {
            let renamed = at.operations.iter().filter_map(|op| match op {
                AlterTableOperation::RenameTable {
                    table_name: RenameTableNameKind::As(n) | RenameTableNameKind::To(n),
                } => name_of(n),
                _ => None,
            });
            Shape::new(
                one(&at.name).into_iter().chain(renamed).collect(),
                Need::Ddl,
            )
        }
        Statement::CreateIndex(ci) => Shape::new(one(&ci.table_name), Need::Ddl),
        Statement::Truncate(t) => Shape::new(
            t.table_names
                .iter()
                .filter_map(|t| name_of(&t.name))
                .collect(),
            Need::Ddl,
        ),
        Statement::RenameTable(r) => Shape::new(
            r.iter()
                .flat_map(|r| [name_of(&r.old_name), name_of(&r.new_name)])
                .flatten()
                .collect(),
            Need::Ddl,
        ),
        Statement::Drop {
            object_type: ObjectType::Table | ObjectType::View,
            names,
            ..
        } => Shape::new(names.iter().filter_map(name_of).collect(), Need::Ddl),
        Statement::Drop {
            object_type: ObjectType::Index,
            table: Some(t),
            ..
        } => Shape::new(one(t), Need::Ddl),
        _ => return None,
    })
}

/// Some query of `statement` is `TABLE t`.
fn has_table_expression(statement: &Statement) -> bool {
    struct Finder;
    fn in_set(e: &SetExpr) -> bool {
        match e {
            SetExpr::Table(_) => true,
            SetExpr::SetOperation { left, right, .. } => in_set(left) || in_set(right),
            SetExpr::Query(q) => in_set(&q.body),
            _ => false,
        }
    }
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, q: &sqlparser::ast::Query) -> ControlFlow<()> {
            if in_set(&q.body) {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    statement.visit(&mut Finder).is_break()
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
            [
                ("orders".into(), Write),
                ("orders".into(), Read),
                ("users".into(), Write),
                ("users".into(), Read)
            ]
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
            [("a".into(), Write), ("a".into(), Read), ("x".into(), Read)]
        );
        assert_eq!(
            uses("WITH x AS (SELECT * FROM a) SELECT * FROM x"),
            [("a".into(), Read), ("x".into(), Read)]
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
        // `account` is a keyword to the parser here: the table is lost, so not exact.
        let lost =
            table_access(b"SHOW COLUMNS FROM account", Reading::DEFAULT, &[Read]).expect("parses");
        assert!(!lost.exact);
        let lock =
            table_access(b"LOCK TABLES notes READ", Reading::DEFAULT, &[Read]).expect("parses");
        assert!(
            lock.exact
                && lock
                    .uses
                    .iter()
                    .any(|u| u.table == "notes" && u.need == Read)
        );
        // Parsed, but the table is no relation in the tree: not exact.
        let parsed = table_access(b"SHOW INDEX FROM t", Reading::DEFAULT, &[Read]);
        assert!(parsed.is_ok_and(|a| !a.exact));
    }

    #[test]
    fn tables_named_outside_relations_are_found_or_flagged() {
        use Need::*;
        assert_eq!(
            uses("CREATE TABLE x LIKE salaries"),
            [("x".into(), Ddl), ("salaries".into(), Read)]
        );
        // SET reads what its subquery reads (its shape is not one of the known).
        let set = table_access(
            b"SET @x = (SELECT GROUP_CONCAT(pay) FROM salaries)",
            Reading::DEFAULT,
            &[Read],
        )
        .expect("parses");
        assert!(!set.exact);
        assert!(set.uses.contains(&TableUse {
            schema: None,
            table: "salaries".into(),
            need: Read
        }));
        let view = table_access(
            b"CREATE VIEW v AS SELECT * FROM notes",
            Reading::DEFAULT,
            &[Ddl],
        )
        .expect("parses");
        assert!(view.defines_view && view.exact);
        // `TABLE t` names no relation: not exact (alone, it does not parse at all).
        let table = table_access(b"SELECT 1 UNION TABLE salaries", Reading::DEFAULT, &[Read])
            .expect("parses");
        assert!(!table.exact);
    }

    #[test]
    fn unbounded_writes_are_those_without_where() {
        let unbounded = |sql: &str| {
            table_access(sql.as_bytes(), Reading::DEFAULT, &[Need::Write])
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .unbounded_write
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
