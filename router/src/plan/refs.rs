//! Finds every table a statement names, with the byte ranges of the name and of any
//! schema qualifier, and the aliases of table factors.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, ObjectName, ObjectNamePart, Statement, TableFactor, Visit, Visitor};

use super::spans::Offsets;

/// One mention of a table in relation position (FROM, JOIN, INSERT INTO, UPDATE ...).
#[derive(Debug, Clone)]
pub struct TableRef {
    pub schema: Option<String>,
    pub name: String,
    /// Byte range of the table identifier (quotes included).
    pub name_range: (usize, usize),
    /// Byte range of the schema qualifier, when written.
    pub schema_range: Option<(usize, usize)>,
    /// Named in a multi-table DELETE's target list: the table is in the FROM too,
    /// so this is no table of the join of its own.
    pub deleted: bool,
}

/// A `table.column` or `schema.table.column` reference in an expression.
#[derive(Debug, Clone)]
pub struct QualifiedColumn {
    pub schema: Option<String>,
    pub table: String,
    pub table_range: (usize, usize),
    pub schema_range: Option<(usize, usize)>,
}

#[derive(Debug, Default)]
pub struct Refs {
    pub tables: Vec<TableRef>,
    /// (table name, alias) of every table factor.
    pub aliases: Vec<(String, String)>,
    pub qualified: Vec<QualifiedColumn>,
    /// Subqueries (nested queries) seen: their tables are in `tables` too.
    pub queries: usize,
    /// A span could not be turned into bytes: rewriting would be unsafe.
    pub unlocated: bool,
}

struct Collector<'a> {
    offsets: &'a Offsets<'a>,
    refs: Refs,
}

fn ident_parts(name: &ObjectName) -> Vec<&sqlparser::ast::Ident> {
    name.0
        .iter()
        .filter_map(|p| match p {
            ObjectNamePart::Identifier(i) => Some(i),
            _ => None,
        })
        .collect()
}

impl Visitor for Collector<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, _q: &sqlparser::ast::Query) -> ControlFlow<()> {
        self.refs.queries += 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        let parts = ident_parts(relation);
        let (schema, table) = match parts.as_slice() {
            [t] => (None, *t),
            [s, t] => (Some(*s), *t),
            _ => {
                self.refs.unlocated = true;
                return ControlFlow::Continue(());
            }
        };
        let name_range = self.offsets.range(table.span);
        let schema_range = schema.map(|s| self.offsets.range(s.span));
        match (name_range, schema_range) {
            (Some(name_range), None) | (Some(name_range), Some(Some(_))) => {
                self.refs.tables.push(TableRef {
                    schema: schema.map(|s| s.value.clone()),
                    name: table.value.clone(),
                    name_range,
                    schema_range: schema_range.flatten(),
                    deleted: false,
                });
            }
            _ => self.refs.unlocated = true,
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name,
            alias: Some(alias),
            ..
        } = factor
        {
            if let Some(t) = ident_parts(name).last() {
                self.refs
                    .aliases
                    .push((t.value.clone(), alias.name.value.clone()));
            }
        }
        // Derived tables and table functions have a name too (no table behind it).
        let other = match factor {
            TableFactor::Derived { alias, .. }
            | TableFactor::JsonTable { alias, .. }
            | TableFactor::NestedJoin { alias, .. } => alias.as_ref(),
            _ => None,
        };
        if let Some(alias) = other {
            self.refs
                .aliases
                .push((String::new(), alias.name.value.clone()));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::CompoundIdentifier(parts) = expr {
            let parts: Vec<&sqlparser::ast::Ident> = parts.iter().collect();
            self.qualified_column(&parts);
        }
        ControlFlow::Continue(())
    }
}

impl Collector<'_> {
    /// `table.column` or `schema.table.column`: the qualifier is a mention of the
    /// table (renamed with it).
    fn qualified_column(&mut self, parts: &[&sqlparser::ast::Ident]) {
        let (schema, table) = match parts {
            [t, _col] => (None, *t),
            [s, t, _col] => (Some(*s), *t),
            _ => return,
        };
        match (
            self.offsets.range(table.span),
            schema.map(|s| self.offsets.range(s.span)),
        ) {
            (Some(table_range), None) | (Some(table_range), Some(Some(_))) => {
                self.refs.qualified.push(QualifiedColumn {
                    schema: schema.map(|s| s.value.clone()),
                    table: table.value.clone(),
                    table_range,
                    schema_range: schema.and_then(|s| self.offsets.range(s.span)),
                })
            }
            _ => self.refs.unlocated = true,
        }
    }

    /// The columns an UPDATE (or ON DUPLICATE KEY UPDATE) assigns are names, not
    /// expressions: their qualifiers are not visited as columns.
    fn assigned(&mut self, assignments: &[sqlparser::ast::Assignment]) {
        use sqlparser::ast::AssignmentTarget;
        for a in assignments {
            let names: Vec<&ObjectName> = match &a.target {
                AssignmentTarget::ColumnName(n) => vec![n],
                AssignmentTarget::Tuple(ns) => ns.iter().collect(),
            };
            for n in names {
                self.qualified_column(&ident_parts(n));
            }
        }
    }
}

pub fn collect(statement: &Statement, offsets: &Offsets<'_>) -> Refs {
    let mut c = Collector {
        offsets,
        refs: Refs::default(),
    };
    let _ = statement.visit(&mut c);
    match statement {
        Statement::Update(u) => c.assigned(&u.assignments),
        Statement::Insert(ins) => {
            if let Some(sqlparser::ast::OnInsert::DuplicateKeyUpdate(a)) = &ins.on {
                c.assigned(a);
            }
        }
        _ => {}
    }
    // The tables a multi-table DELETE deletes from (`DELETE o, i FROM …`) are names
    // or aliases, not visited as relations: the names are mentions of their tables.
    if let Statement::Delete(d) = statement {
        for n in &d.tables {
            let alias = matches!(n.0.as_slice(), [p] if p.as_ident().is_some_and(|i| {
                c.refs.aliases.iter().any(|(_, a)| a.eq_ignore_ascii_case(&i.value))
            }));
            if !alias {
                let before = c.refs.tables.len();
                let _ = c.pre_visit_relation(n);
                if let Some(t) = c.refs.tables.get_mut(before) {
                    t.deleted = true;
                }
            }
        }
    }
    // DROP TABLE names are not visited as relations by sqlparser.
    if let Statement::Drop {
        object_type: sqlparser::ast::ObjectType::Table,
        names,
        ..
    } = statement
    {
        for n in names {
            let _ = c.pre_visit_relation(n);
        }
    }
    c.refs
}

/// The names common table expressions define anywhere in `statement` (`WITH x AS
/// (...)`): references to them are not tables.
pub fn cte_names(statement: &Statement) -> Vec<String> {
    struct Ctes(Vec<String>);
    impl Visitor for Ctes {
        type Break = ();
        fn pre_visit_query(&mut self, q: &sqlparser::ast::Query) -> ControlFlow<()> {
            if let Some(with) = &q.with {
                for cte in &with.cte_tables {
                    self.0.push(cte.alias.name.value.clone());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut v = Ctes(Vec::new());
    let _ = statement.visit(&mut v);
    v.0
}
