//! LOAD DATA in a logical schema.

use super::*;

/// `LOAD DATA|XML … INTO TABLE t`: the file reaches one server (the client sends it
/// once, relayed as it comes), so it runs unchanged where `t` lives whole: a table
/// the schema does not configure, or a single table on the schema's node. Rows that
/// would have to be split over shards or copied to every node are refused by name.
pub(super) fn load_data(
    sql: &[u8],
    schema: &LogicalSchema,
    rt: &Runtime,
    reading: Reading,
) -> Result<Option<Prepared>, RouteError> {
    let tokens: Vec<Token<'_>> = reading
        .lexer(sql)
        .filter(|t| !matches!(t, Token::Comment(_)))
        .collect();
    let name = |t: &Token<'_>| match t {
        Token::Word(w) | Token::Quoted(w) => Some(String::from_utf8_lossy(w).into_owned()),
        _ => None,
    };
    let at = tokens.windows(2).position(|w| {
        w[0].word().is_some_and(|x| x.eq_ignore_ascii_case(b"into"))
            && w[1]
                .word()
                .is_some_and(|x| x.eq_ignore_ascii_case(b"table"))
    });
    let Some(first) = at.and_then(|i| tokens.get(i + 2)).and_then(name) else {
        return Ok(None);
    };
    let qualified = matches!(tokens.get(at.unwrap_or(0) + 3), Some(Token::Punct(p)) if *p == b".");
    let table = match qualified {
        true if first != schema.name => return Ok(None),
        true => at
            .and_then(|i| tokens.get(i + 4))
            .and_then(name)
            .unwrap_or_default(),
        false => first,
    };
    let Some(configured) = schema.tables.get(&table) else {
        return Ok(None);
    };
    let node_name = |n: NodeId| rt.nodes.get(n).map_or("?", |d| d.name.as_str());
    match &configured.kind {
        TableKind::Single { node } if *node == schema.node && !qualified => Ok(None),
        TableKind::Single { node } => Err(RouteError::Unsupported(format!(
            "LOAD DATA into single table `{table}`, which lives on {}, not on the schema's \
             node: send it with the hint /* shardgate:node={} */ and the table unqualified",
            node_name(*node),
            node_name(*node)
        ))),
        TableKind::Broadcast { .. } => Err(RouteError::Unsupported(format!(
            "LOAD DATA into broadcast table `{table}`: the file would reach one copy; load it \
             on each node with the hint /* shardgate:node=… */, or INSERT the rows"
        ))),
        TableKind::Sharded(_) => Err(RouteError::Unsupported(format!(
            "LOAD DATA into sharded table `{table}`: shardgate does not split a file's rows \
             over the shards yet; INSERT the rows (multi-row INSERTs are split by shard)"
        ))),
    }
}
