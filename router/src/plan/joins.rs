//! A join of sharded tables runs inside each shard, and that gives the right answer
//! only when the rows that join always live in the same shard: every sharded table in
//! the join is tied to the others by equal shard keys (`a.user_id = b.user_id`), in
//! the ON or WHERE conditions that must all hold (joined by AND), directly or through
//! a third table. A self-join on another column, or a join on `a.user_id =
//! b.user_id + 1`, may pair rows of different shards: it is refused, never run.

use sqlparser::ast::{
    BinaryOperator, Expr, FromTable, JoinConstraint, JoinOperator, SetExpr, Statement, TableFactor,
    TableWithJoins, UpdateTableFromKind,
};

/// One sharded table in the statement: the name that qualifies its columns (its
/// alias, or its own name) and its shard column, both lowercase.
#[derive(Clone)]
pub(super) struct Instance {
    pub qualifier: String,
    pub key: String,
}

/// True when every instance is tied to every other by shard-key equalities.
pub(super) fn on_shard_keys(statement: &Statement, instances: &[Instance]) -> bool {
    if instances.len() < 2 {
        return true;
    }
    let mut roots: Vec<&Expr> = Vec::new();
    let mut tables: Vec<&TableWithJoins> = Vec::new();
    match statement {
        Statement::Query(q) => match q.body.as_ref() {
            SetExpr::Select(s) => {
                roots.extend(s.selection.as_ref());
                tables.extend(&s.from);
            }
            _ => return false,
        },
        Statement::Update(u) => {
            roots.extend(u.selection.as_ref());
            tables.push(&u.table);
            if let Some(UpdateTableFromKind::BeforeSet(v) | UpdateTableFromKind::AfterSet(v)) =
                &u.from
            {
                tables.extend(v);
            }
        }
        // INSERT … SELECT: the rows it reads join as its SELECT says; the table it
        // writes (its first mention) is not part of that join.
        Statement::Insert(ins) => {
            let Some(source) = &ins.source else {
                return true;
            };
            let target = ins.table.to_string().to_lowercase();
            let target = target
                .rsplit('.')
                .next()
                .unwrap_or(&target)
                .trim_matches('`');
            let mut rest = instances.to_vec();
            if let Some(i) = rest.iter().position(|i| i.qualifier == target) {
                rest.remove(i);
            }
            return on_shard_keys(&Statement::Query(source.clone()), &rest);
        }
        Statement::Delete(d) => {
            roots.extend(d.selection.as_ref());
            match &d.from {
                FromTable::WithFromKeyword(v) | FromTable::WithoutKeyword(v) => tables.extend(v),
            }
            if let Some(using) = &d.using {
                tables.extend(using);
            }
        }
        _ => return false,
    }
    connected(roots, &tables, instances)
}

/// True when the conditions in `roots` and in the joins of `tables` tie every instance
/// to every other by equal shard keys.
fn connected<'a>(
    mut roots: Vec<&'a Expr>,
    tables: &[&'a TableWithJoins],
    instances: &[Instance],
) -> bool {
    if instances.len() < 2 {
        return true;
    }
    for t in tables {
        for j in &t.joins {
            if let Some(JoinConstraint::On(e)) = constraint(&j.join_operator) {
                roots.push(e);
            }
        }
    }
    let mut pairs = Vec::new();
    for r in roots {
        equalities(r, &mut pairs);
    }
    // Union-find over the instances.
    let mut parent: Vec<usize> = (0..instances.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let find = |q: &str, c: &str| {
        instances
            .iter()
            .position(|i| i.qualifier == q && i.key == c)
    };
    for ((q1, c1), (q2, c2)) in pairs {
        if let (Some(a), Some(b)) = (find(&q1, &c1), find(&q2, &c2)) {
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            parent[ra] = rb;
        }
    }
    let first = root(&mut parent, 0);
    (1..instances.len()).all(|i| root(&mut parent, i) == first)
}

/// Each SELECT of a set operation joins only its own tables: each is checked with
/// the sharded tables it names (`key_of` gives a sharded table's shard column).
pub(super) fn set_parts_on_shard_keys(
    statement: &Statement,
    key_of: &dyn Fn(&str) -> Option<String>,
) -> bool {
    fn selects<'a>(e: &'a SetExpr, out: &mut Vec<&'a sqlparser::ast::Select>) {
        match e {
            SetExpr::SetOperation { left, right, .. } => {
                selects(left, out);
                selects(right, out);
            }
            SetExpr::Query(q) => selects(q.body.as_ref(), out),
            SetExpr::Select(s) => out.push(s),
            _ => {}
        }
    }
    let Statement::Query(q) = statement else {
        return true;
    };
    let mut parts = Vec::new();
    selects(q.body.as_ref(), &mut parts);
    parts.iter().all(|s| {
        let mut instances = Vec::new();
        let factors = s
            .from
            .iter()
            .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)));
        for f in factors {
            if let TableFactor::Table { name, alias, .. } = f {
                let table = name.0.last().map(|p| p.to_string()).unwrap_or_default();
                let table = table.trim_matches('`').to_string();
                if let Some(key) = key_of(&table) {
                    let qualifier = alias
                        .as_ref()
                        .map_or(table.clone(), |a| a.name.value.clone());
                    instances.push(Instance {
                        qualifier: qualifier.to_lowercase(),
                        key,
                    });
                }
            }
        }
        let tables: Vec<&TableWithJoins> = s.from.iter().collect();
        connected(s.selection.iter().collect(), &tables, &instances)
    })
}

fn constraint(op: &JoinOperator) -> Option<&JoinConstraint> {
    match op {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c)
        | JoinOperator::CrossJoin(c)
        | JoinOperator::Semi(c)
        | JoinOperator::LeftSemi(c)
        | JoinOperator::RightSemi(c)
        | JoinOperator::Anti(c)
        | JoinOperator::LeftAnti(c)
        | JoinOperator::RightAnti(c)
        | JoinOperator::StraightJoin(c) => Some(c),
        _ => None,
    }
}

/// `q.c = q2.c2` conditions that must hold for the whole expression to hold.
fn equalities(e: &Expr, out: &mut Vec<(Column, Column)>) {
    match e {
        Expr::Nested(inner) => equalities(inner, out),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            equalities(left, out);
            equalities(right, out);
        }
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => {
            if let (Some(a), Some(b)) = (column(left), column(right)) {
                out.push((a, b));
            }
        }
        _ => {}
    }
}

/// A column named with its table's qualifier: (qualifier, column), lowercase.
type Column = (String, String);

/// `q.c` or `db.q.c`: (q, c), lowercase.
fn column(e: &Expr) -> Option<Column> {
    match e {
        Expr::Nested(inner) => column(inner),
        Expr::CompoundIdentifier(parts) => match parts.as_slice() {
            [.., q, c] => Some((q.value.to_lowercase(), c.value.to_lowercase())),
            _ => None,
        },
        _ => None,
    }
}

/// True when an outer join keeps rows of tables that are not sharded (broadcast,
/// single) whatever the sharded side holds: every shard would answer them, once per
/// shard (`products LEFT JOIN orders` repeats each unmatched product per shard).
/// Inner joins and outer joins that keep a sharded table's rows tie every row of
/// the answer to one shard's row, and are answered shard by shard.
pub(super) fn keeps_unsharded_rows(statement: &Statement, sharded: &dyn Fn(&str) -> bool) -> bool {
    let Statement::Query(q) = statement else {
        return false;
    };
    let SetExpr::Select(s) = q.body.as_ref() else {
        return false;
    };
    let has_sharded = |f: &TableFactor| {
        match f {
        TableFactor::Table { name, .. } => name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| sharded(&i.value)),
        // Joins in parentheses are judged as a whole: any sharded table inside.
        TableFactor::NestedJoin {
            table_with_joins, ..
        } => std::iter::once(&table_with_joins.relation)
            .chain(table_with_joins.joins.iter().map(|j| &j.relation))
            .any(|f| matches!(f, TableFactor::Table { name, .. } if name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| sharded(&i.value)))),
        _ => false,
    }
    };
    for t in &s.from {
        let mut left = has_sharded(&t.relation);
        for j in &t.joins {
            let right = has_sharded(&j.relation);
            let wrong = match j.join_operator {
                JoinOperator::Left(_)
                | JoinOperator::LeftOuter(_)
                | JoinOperator::LeftSemi(_)
                | JoinOperator::LeftAnti(_)
                | JoinOperator::OuterApply => right && !left,
                JoinOperator::Right(_)
                | JoinOperator::RightOuter(_)
                | JoinOperator::RightSemi(_)
                | JoinOperator::RightAnti(_) => left && !right,
                JoinOperator::FullOuter(_) => left || right,
                _ => false,
            };
            if wrong {
                return true;
            }
            left |= right;
        }
    }
    false
}

/// A multi-table write runs shard by shard: it may change only sharded tables. A
/// broadcast or single table it changed would be changed on each shard's node by
/// that shard's rows only, and the copies would part.
pub(super) fn changes_only_sharded(
    statement: &Statement,
    schema: &rules::runtime::LogicalSchema,
    named: &[&super::refs::TableRef],
    lead: &str,
) -> Result<(), super::RouteError> {
    use rules::TableKind;
    if named.len() < 2 {
        return Ok(());
    }
    // Targets that cannot be told may be any of the tables.
    let changed = super::write_targets::write_targets(statement);
    let Some(t) = named.iter().find(|t| {
        !matches!(schema.tables[&t.name].kind, TableKind::Sharded(_))
            && changed
                .as_ref()
                .is_none_or(|c| c.iter().any(|(_, c)| c.eq_ignore_ascii_case(&t.name)))
    }) else {
        return Ok(());
    };
    Err(super::RouteError::Unsupported(format!(
        "a multi-table {} that changes `{}` (not sharded) together with sharded `{lead}`: \
         each shard's node would change its copy by that shard's rows only; change `{}` in \
         a statement of its own",
        if matches!(statement, Statement::Delete(_)) {
            "DELETE"
        } else {
            "UPDATE"
        },
        t.name,
        t.name
    )))
}

/// Every other table of a statement run shard by shard runs where each shard runs:
/// it must be there (an unconfigured table on the schema's node, a single table on
/// its node, a broadcast table on its nodes).
pub(super) fn present_where_shards_run(
    schema: &rules::runtime::LogicalSchema,
    rt: &rules::Runtime,
    named: &[&super::refs::TableRef],
    unconfigured: &[&str],
    targets: &[super::Target],
    lead: &str,
) -> Result<(), super::RouteError> {
    use super::RouteError;
    use rules::TableKind;
    for u in unconfigured {
        if let Some(far) = targets.iter().find(|t| t.node != schema.node) {
            return Err(RouteError::Unsupported(format!(
                "`{u}` is not configured in schema `{}`, so it lives only on {}, while sharded \
                 `{lead}` also has shards on {}; declare `{u}` as a broadcast table, or shard it \
                 in `{lead}`'s binding group",
                schema.name, rt.nodes[schema.node].name, rt.nodes[far.node].name
            )));
        }
    }
    for t in named {
        let (nodes, what) = match &schema.tables[&t.name].kind {
            TableKind::Sharded(_) => continue,
            TableKind::Broadcast { nodes } => (nodes.as_slice(), "has copies only on"),
            TableKind::Single { node } => (std::slice::from_ref(node), "lives only on"),
        };
        if let Some(far) = targets.iter().find(|x| !nodes.contains(&x.node)) {
            let on: Vec<&str> = nodes.iter().map(|n| rt.nodes[*n].name.as_str()).collect();
            return Err(RouteError::Unsupported(format!(
                "`{}` {what} {}, while sharded `{lead}` also has shards on {}; make `{}` a \
                 broadcast table on every node of `{lead}`",
                t.name,
                on.join(", "),
                rt.nodes[far.node].name,
                t.name
            )));
        }
    }
    Ok(())
}
