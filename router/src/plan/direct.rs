//! The direct strategies: a statement planned onto one node, one shard, or every
//! shard with a merge of their answers. What they cannot answer exactly they refuse
//! (`RouteError::Unsupported`), and a read is then gathered (see `gather`).

use super::*;

/// The direct strategies: one node, one shard, or every shard with a merge.
pub(super) fn plan_direct(
    sql: &[u8],
    schema: &LogicalSchema,
    rt: &Runtime,
    prepared: bool,
    foreign: bool,
    reading: Reading,
) -> Result<Option<Prepared>, RouteError> {
    if !mentions_configured_table(sql, schema, reading) {
        return Ok(None);
    }
    // Statements that act on a table's physical copy, which shardgate cannot spread
    // over shards or copies: refused by name rather than failing to parse.
    let spread = |t: Token<'_>| match t {
        Token::Word(w) | Token::Quoted(w) => schema.tables.iter().any(|(name, table)| {
            name.as_bytes().eq_ignore_ascii_case(w)
                && !matches!(table.kind, TableKind::Single { .. })
        }),
        _ => false,
    };
    // ANALYZE/CHECK/CHECKSUM/OPTIMIZE/REPAIR TABLE answer with rows per physical
    // table, which shardgate does not merge yet.
    let maintenance = |w: &[u8]| {
        [
            &b"analyze"[..],
            b"check",
            b"checksum",
            b"optimize",
            b"repair",
        ]
        .iter()
        .any(|k| w.eq_ignore_ascii_case(k))
            && reading
                .lexer(sql)
                .filter_map(|t| t.word())
                .nth(1)
                .is_some_and(|t| t.eq_ignore_ascii_case(b"table"))
    };
    if let Some(w) = reading.first_word(sql).filter(|w| {
        ([&b"handler"[..], b"lock"]
            .iter()
            .any(|k| w.eq_ignore_ascii_case(k))
            || maintenance(w))
            && reading.lexer(sql).any(spread)
    }) {
        return Err(RouteError::Unsupported(format!(
            "{} on a sharded or broadcast table: shardgate does not spread it over the \
             shards or copies yet; run it on the data nodes directly",
            String::from_utf8_lossy(w).to_uppercase()
        )));
    }
    if reading
        .first_word(sql)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"load"))
    {
        return load_data::load_data(sql, schema, rt, reading);
    }
    let text = std::str::from_utf8(sql).map_err(|_| RouteError::NotUtf8(schema.name.clone()))?;
    let params = prepared.then(|| keys::Params::new(text, reading));
    let masked = mask_lock_in_share_mode(text, reading);
    let statements = Parser::parse_sql(&reading.dialect(), masked.as_deref().unwrap_or(text))
        .map_err(|e| RouteError::Parse(e.to_string()))?;
    let [statement] = statements.as_slice() else {
        return Err(RouteError::Unsupported(
            "several statements in one query on a sharded schema; send them one at a time".into(),
        ));
    };
    let offsets = spans::Offsets::new(text);
    let refs = refs::collect(statement, &offsets);
    if refs.unlocated {
        return Err(RouteError::Unsupported(
            "a table reference whose position could not be found".into(),
        ));
    }
    let ctes = refs::cte_names(statement);
    if let Some(t) = refs.tables.iter().find(|t| {
        t.schema.as_deref().is_none_or(|s| s == schema.name)
            && !ctes.contains(&t.name)
            && schema.shard_tables.contains(&t.name.to_lowercase())
    }) {
        return Err(RouteError::ShardTable(schema.name.clone(), t.name.clone()));
    }
    // Tables of this schema that it does not configure: they live on its default
    // node only.
    let unconfigured: Vec<&str> = dedup(refs.tables.iter().filter_map(|t| {
        let ours = t.schema.as_deref().is_none_or(|s| s == schema.name);
        let cte = t.schema.is_none() && ctes.contains(&t.name);
        (ours && !cte && !schema.tables.contains_key(&t.name)).then_some(t.name.as_str())
    }));
    if let Some(t) = refs.tables.iter().find(|t| {
        t.schema
            .as_deref()
            .is_some_and(|s| s != schema.name && rt.schemas.contains_key(s))
    }) {
        return Err(RouteError::Unsupported(format!(
            "a statement naming tables of several logical schemas (`{}` and `{}`); run one \
             statement per schema",
            schema.name,
            t.schema.as_deref().unwrap_or_default()
        )));
    }
    if foreign {
        if let Some(t) = refs
            .tables
            .iter()
            .find(|t| t.schema.is_none() && !ctes.contains(&t.name))
        {
            return Err(RouteError::Unsupported(format!(
                "a statement naming tables of logical schema `{0}` and the unqualified `{1}`, \
                 which belongs to the session's own database; qualify it, or USE `{0}` first",
                schema.name, t.name
            )));
        }
    }
    // Configured tables of this schema that the statement names.
    let named: Vec<&refs::TableRef> = refs
        .tables
        .iter()
        .filter(|t| {
            t.schema.as_deref().is_none_or(|s| s == schema.name)
                && schema.tables.contains_key(&t.name)
        })
        .collect();
    if named.is_empty() {
        return Ok(None);
    }
    let write = !matches!(statement, Statement::Query(_));
    let sharded: Vec<&str> = dedup(named.iter().filter_map(
        |t| match schema.tables[&t.name].kind {
            TableKind::Sharded(_) => Some(t.name.as_str()),
            _ => None,
        },
    ));

    if sharded.is_empty() {
        return Ok(Some(Prepared {
            plan: plan_unsharded(text, schema, rt, &named, &refs, write)?,
            routing: Routing::Fixed,
            algorithm: None,
            params: params.as_ref().map_or(0, keys::Params::count),
        }));
    }
    if !bound_together(schema, &sharded) {
        return Err(RouteError::Unsupported(format!(
            "a statement over sharded tables {} that are not in one binding group \
             (only reads are evaluated across shards; a write must stay within one)",
            sharded.join(", ")
        )));
    }
    // Each sharded table of the statement, once per mention (a self-join has two).
    let mut instances = Vec::new();
    for &name in &sharded {
        let TableKind::Sharded(t) = &schema.tables[name].kind else {
            continue;
        };
        let key = t.column.to_lowercase();
        let aliases: Vec<&String> = refs
            .aliases
            .iter()
            .filter(|(table, _)| table == name)
            .map(|(_, a)| a)
            .collect();
        let mentions = named
            .iter()
            .filter(|t| t.name == name && !t.deleted)
            .count();
        instances.extend(aliases.iter().map(|a| joins::Instance {
            qualifier: a.to_lowercase(),
            key: key.clone(),
        }));
        instances.extend((aliases.len()..mentions).map(|_| joins::Instance {
            qualifier: name.to_lowercase(),
            key: key.clone(),
        }));
    }
    let key_of = |t: &str| match schema.tables.get(t).map(|t| &t.kind) {
        Some(TableKind::Sharded(s)) => Some(s.column.to_lowercase()),
        _ => None,
    };
    let set_operation = matches!(statement, Statement::Query(q) if matches!(q.body.as_ref(), SetExpr::SetOperation { .. }));
    let joined = if set_operation {
        joins::set_parts_on_shard_keys(statement, &key_of)
    } else {
        joins::on_shard_keys(statement, &instances)
    };
    // Subqueries first: their tables look like joined ones, and the message should
    // name what the client wrote.
    if refs.queries > 1 + parenthesized_union_parts(statement) {
        return Err(RouteError::Unsupported(
            "subqueries on sharded tables".into(),
        ));
    }
    if !joined {
        return Err(RouteError::Unsupported(
            "a join of sharded tables that is not on their shard keys; join them with \
             equal shard keys (ON a.key = b.key), or read them separately"
                .into(),
        ));
    }
    joins::changes_only_sharded(statement, schema, &named, sharded[0])?;
    let lead = sharded[0];
    let TableKind::Sharded(table) = &schema.tables[lead].kind else {
        unreachable!("filtered to sharded tables above")
    };
    let aliases: Vec<String> = refs
        .aliases
        .iter()
        .filter(|(t, _)| sharded.contains(&t.as_str()))
        .map(|(_, a)| a.clone())
        .collect();
    let key_tables: Vec<&str> = sharded
        .iter()
        .copied()
        .chain(aliases.iter().map(String::as_str))
        .collect();
    let key = keys::KeyColumn {
        column: &table.column,
        tables: &key_tables,
    };
    let cx = keys::Context {
        params: params.as_ref(),
        offsets: &offsets,
    };
    let mut routing = Routing::Fixed;
    // The shards a WHERE clause allows; with parameters, all until execution.
    let mut shards_where = |selection: Option<&Expr>| -> ShardSet {
        let all = ShardSet::all(table.algorithm.shards());
        let Some(e) = selection else { return all };
        let k = keys::compile(e, &key, &cx);
        if k.has_params() {
            routing = Routing::Where(k);
            return all;
        }
        keys::eval(&k, &table.algorithm, &[]).unwrap_or(all)
    };

    let mut combine = None;
    let (shards, inserts) = match statement {
        Statement::Query(q) if matches!(q.body.as_ref(), SetExpr::SetOperation { .. }) => {
            if params.as_ref().is_some_and(|p| p.count() > 0) {
                return Err(RouteError::Unsupported(
                    "a prepared UNION over sharded tables".into(),
                ));
            }
            let mut parts = Vec::new();
            let all = union_parts(q.body.as_ref(), &mut parts)?;
            let sets: Vec<ShardSet> = parts
                .iter()
                .map(|s| shards_where(s.selection.as_ref()))
                .collect();
            let one = sets.iter().all(|s| s.len() == 1 && *s == sets[0]);
            if one {
                // Every part on the same shard: the server runs the whole UNION.
                (sets[0].clone(), None)
            } else if all
                && !prepared
                && q.order_by.is_none()
                && q.limit_clause.is_none()
                && union::same_shape(&parts)
            {
                return plan_union_all(text, schema, rt, foreign, reading).map(Some);
            } else {
                return Err(RouteError::Unsupported(
                    "UNION over several shards (only UNION ALL of one select list without ORDER BY/LIMIT, or parts on one shard)"
                        .into(),
                ));
            }
        }
        Statement::Query(q) => {
            let SetExpr::Select(select) = q.body.as_ref() else {
                return Err(RouteError::Unsupported(
                    "VALUES or TABLE over sharded tables".into(),
                ));
            };
            let shards = shards_where(select.selection.as_ref());
            // Values set by the statement (`INTO @n`, `@a := …`) would be set on a
            // shard's connection, not in this session.
            if select.into.is_some() || assigns_variables(text, reading) {
                return Err(RouteError::Unsupported(
                    "a SELECT over sharded tables that sets user variables (`INTO @n`, \
                     `@a := …`): they would be set on a shard's connection, not in this \
                     session; read the value, then SET it"
                        .into(),
                ));
            }
            // An outer join keeping a broadcast table's rows is answered shard by
            // shard only when the WHERE drops the rows it fills with NULLs (a
            // condition on the shard key that NULL fails makes it an inner join).
            let inner = select
                .selection
                .as_ref()
                .is_some_and(|e| keys::rejects_null(&keys::compile(e, &key, &cx)));
            if table.algorithm.shards() > 1
                && !inner
                && joins::keeps_unsharded_rows(statement, &|t| {
                    sharded.iter().any(|s| s.eq_ignore_ascii_case(t))
                })
            {
                return Err(RouteError::Unsupported(
                    "an outer join that keeps the rows of a broadcast or single table over \
                     several shards (each shard would answer them)"
                        .into(),
                ));
            }
            // A prepared statement runs on one shard per execution (several are
            // refused by the executor), so it needs no merge.
            if shards.len() > 1 && !prepared {
                combine = merge::plan(text, q, select, &key, reading)?;
            }
            (shards, None)
        }
        Statement::Update(u) => {
            for a in &u.assignments {
                if let sqlparser::ast::AssignmentTarget::ColumnName(name) = &a.target {
                    if name
                        .0
                        .last()
                        .and_then(|p| p.as_ident())
                        .is_some_and(|i| i.value.eq_ignore_ascii_case(&table.column))
                    {
                        return Err(RouteError::Invalid(format!(
                            "UPDATE may not change the shard column `{}` of `{lead}`: rows would stay on the wrong shard; delete and re-insert them",
                            table.column
                        )));
                    }
                }
            }
            let shards = shards_where(u.selection.as_ref());
            if shards.len() > 1 && (!u.order_by.is_empty() || u.limit.is_some()) {
                return Err(RouteError::Unsupported(
                    "UPDATE ... ORDER BY/LIMIT over several shards".into(),
                ));
            }
            (shards, None)
        }
        Statement::Delete(d) => {
            let shards = shards_where(d.selection.as_ref());
            if shards.len() > 1 && (!d.order_by.is_empty() || d.limit.is_some()) {
                return Err(RouteError::Unsupported(
                    "DELETE ... ORDER BY/LIMIT over several shards".into(),
                ));
            }
            (shards, None)
        }
        Statement::Insert(ins) => {
            // Rows go to the shards of the table written: a table that is not sharded
            // would get each shard's rows on that shard's node only.
            let target = match &ins.table {
                sqlparser::ast::TableObject::TableName(n) => {
                    n.0.last()
                        .and_then(|p| p.as_ident())
                        .map(|i| i.value.clone())
                }
                _ => None,
            };
            if !target
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(lead))
            {
                return Err(RouteError::Unsupported(format!(
                    "INSERT into `{}`, which is not sharded like `{lead}` it reads: each \
                     shard's node would get that shard's rows only; read the rows and insert \
                     them in a statement of their own",
                    target.as_deref().unwrap_or("?")
                )));
            }
            if let Some(g) = &table.global_id {
                if let Some(fill) = values::fill_spec(ins, g, &offsets, text)? {
                    return Ok(Some(Prepared {
                        plan: Plan {
                            targets: Vec::new(),
                            write: true,
                            scatter: false,
                            merge: Merge::Single,
                            fill_global_id: Some(fill),
                            gather: None,
                            load: None,
                        },
                        routing: Routing::Fixed,
                        algorithm: None,
                        params: params.as_ref().map_or(0, keys::Params::count),
                    }));
                }
            }
            if let Some(SetExpr::Select(source)) = ins.source.as_ref().map(|s| s.body.as_ref()) {
                insert_select_shards(ins, source, &key, lead, text)?;
                let shards = shards_where(source.selection.as_ref());
                let limited = ins
                    .source
                    .as_ref()
                    .is_some_and(|q| q.limit_clause.is_some() || q.order_by.is_some());
                let aggregated = source.projection.iter().any(|i| match i {
                    sqlparser::ast::SelectItem::UnnamedExpr(e)
                    | sqlparser::ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                        merge::has_aggregate(e)
                    }
                    _ => false,
                });
                if shards.len() > 1 && (limited || aggregated) {
                    return Err(RouteError::Unsupported(format!(
                        "INSERT ... SELECT into `{lead}` over several shards with LIMIT, ORDER BY or aggregates"
                    )));
                }
                (shards, None)
            } else {
                let split = values::split_insert(text, ins, lead, table, &cx)?;
                if split.missing_key {
                    return Err(RouteError::Invalid(format!(
                        "INSERT into sharded table `{lead}` must give its shard column `{}`",
                        table.column
                    )));
                }
                if !split.param_keys.is_empty() {
                    // Rows go where their parameters say: the whole statement is kept,
                    // and every row of one execution must land on one shard.
                    routing = Routing::Rows(split.param_keys);
                    (ShardSet::all(table.algorithm.shards()), None)
                } else {
                    let shards: ShardSet = split.rows.keys().copied().collect();
                    (shards, Some(split))
                }
            }
        }
        Statement::CreateTable(_)
        | Statement::CreateIndex(_)
        | Statement::AlterTable(_)
        | Statement::Drop { .. }
        | Statement::Truncate(_) => (ShardSet::all(table.algorithm.shards()), None),
        other => {
            return Err(RouteError::Unsupported(format!(
                "{} on sharded table `{lead}`",
                other
                    .to_string()
                    .split_whitespace()
                    .next()
                    .unwrap_or("this statement")
            )))
        }
    };

    let scatter =
        shards.len() == table.algorithm.shards() as usize && shards.len() > 1 && inserts.is_none();
    let mut targets = Vec::with_capacity(shards.len());
    for shard in shards.iter() {
        let loc = &table.shards[shard as usize];
        let node = loc.node;
        let rows: Vec<rewrite::Splice> = inserts
            .as_ref()
            .and_then(|split| split.rows_edit(shard))
            .into_iter()
            .collect();
        let splices = match &combine {
            Some((_, s)) => s.as_slice(),
            None => rows.as_slice(),
        };
        let sql = rewrite::for_shard(text, schema, rt, node, Some(shard), &refs, splices)?;
        targets.push(Target {
            node,
            shard: Some(shard),
            sql,
        });
    }
    joins::present_where_shards_run(schema, rt, &named, &unconfigured, &targets, lead)?;
    let merge = match (targets.len(), write, combine) {
        (1, _, _) => Merge::Single,
        (_, true, _) => Merge::SumAffected,
        (_, false, Some((spec, _))) => Merge::Combine(Box::new(spec)),
        (_, false, None) => Merge::Concat,
    };
    Ok(Some(Prepared {
        plan: Plan {
            targets,
            write,
            scatter,
            merge,
            fill_global_id: None,
            gather: None,
            load: None,
        },
        routing,
        algorithm: Some(table.algorithm.clone()),
        params: params.as_ref().map_or(0, keys::Params::count),
    }))
}

/// sqlparser does not know MySQL's older `LOCK IN SHARE MODE`. For analysis only, it
/// becomes `FOR SHARE` padded to the same length, so every position stays valid; the
/// physical SQL is still cut from the client's own text.
pub(super) fn mask_lock_in_share_mode(text: &str, reading: Reading) -> Option<String> {
    let base = text.as_ptr() as usize;
    let words: Vec<(&[u8], usize)> = reading
        .lexer(text.as_bytes())
        .filter_map(|t| match t {
            Token::Word(w) => Some((w, w.as_ptr() as usize - base)),
            _ => None,
        })
        .collect();
    let at = words.windows(4).find(|w| {
        ["LOCK", "IN", "SHARE", "MODE"]
            .iter()
            .zip(w.iter())
            .all(|(k, (x, _))| x.eq_ignore_ascii_case(k.as_bytes()))
    })?;
    let (start, end) = (at[0].1, at[3].1 + at[3].0.len());
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..start]);
    out.push_str("FOR SHARE");
    out.extend(std::iter::repeat_n(' ', end - start - "FOR SHARE".len()));
    out.push_str(&text[end..]);
    Some(out)
}

/// A user variable assigned in the statement (`@a := …`).
fn assigns_variables(text: &str, reading: Reading) -> bool {
    let tokens: Vec<Token<'_>> = reading
        .lexer(text.as_bytes())
        .filter(|t| !matches!(t, Token::Comment(_)))
        .collect();
    tokens
        .windows(2)
        .any(|w| matches!((&w[0], &w[1]), (Token::UserVar(_), Token::Punct(p)) if *p == b":="))
}

fn dedup<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::new();
    for s in it {
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v
}

fn bound_together(schema: &LogicalSchema, sharded: &[&str]) -> bool {
    sharded.len() == 1
        || schema
            .bindings
            .iter()
            .any(|g| sharded.iter().all(|t| g.iter().any(|b| b == t)))
}
