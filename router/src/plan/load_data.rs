//! LOAD DATA in a logical schema.
//!
//! Into a table that lives whole on the schema's node (unconfigured, or single
//! there) the statement runs unchanged: the client's file is relayed to one server.
//! Into a sharded table, each line of a LOCAL file goes, as the client sent it, to the
//! shard its key field picks, each shard's server running the statement on its own
//! table; into a broadcast table every line goes to every copy. The file is never held:
//! lines are cut as the server cuts them ([`LoadFormat`]) while they stream.

use super::*;
use crate::load_format::{Field, LoadFormat};
use crate::load_key::KeyType;

/// How the executor splits a LOAD DATA LOCAL file. The plan's targets are the
/// statements each target runs (for a sharded table, in shard order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadSplit {
    pub table: String,
    pub format: LoadFormat,
    /// Lines the client's `IGNORE n LINES` skips: skipped by shardgate, not by each
    /// target (the targets' statements no longer have the clause).
    pub ignore_lines: u64,
    /// Field number of the shard key in each line; `None`: every line goes to every
    /// target (a broadcast table's copies).
    pub key_field: Option<usize>,
    /// The fields each line gives the statement (its column list's length).
    pub fields: usize,
    /// The file's character set as the statement names it (lowercase); without one
    /// the server takes `character_set_database`.
    pub charset: Option<String>,
}

impl LoadSplit {
    /// The target (index into the plan's targets) of a line whose key field is `key`,
    /// for a shard column of type `column`; `line` numbers it for the error.
    pub fn target_of(
        &self,
        key: &Field,
        column: &KeyType,
        schema: &LogicalSchema,
        line: u64,
    ) -> Result<usize, RouteError> {
        let Some(TableKind::Sharded(t)) = schema.tables.get(&self.table).map(|t| &t.kind) else {
            return Ok(0);
        };
        let invalid = |why: String| {
            RouteError::Invalid(format!(
                "line {line} of the file: {why} for shard column `{}`; shardgate places a \
                 line only by a key the server stores unchanged",
                t.column
            ))
        };
        if let Field::Bytes(b) = key {
            let utf8 = self
                .charset
                .as_deref()
                .is_some_and(|c| c.starts_with("utf8"));
            if !b.is_ascii() && !utf8 {
                return Err(invalid(
                    "a value that is not ASCII, in a file of no named character set (name it: \
                     CHARACTER SET utf8mb4)"
                        .into(),
                ));
            }
        }
        let value = column.value(key).map_err(invalid)?;
        Ok(t.algorithm.shard_of(&value)? as usize)
    }
}

/// The statement's clauses, as far as splitting it needs them.
struct Clauses {
    local: bool,
    xml: bool,
    /// Bytes of the table name (qualified or not) in the text.
    table_at: std::ops::Range<usize>,
    partition: bool,
    charset: Option<String>,
    format: LoadFormat,
    starting_by: bool,
    /// `IGNORE n LINES`: n and the clause's bytes.
    ignore: Option<(u64, std::ops::Range<usize>)>,
    /// The column list's names (user variables as `@name`); `None`: no list.
    columns: Option<Vec<String>>,
    /// Where a column list goes when there is none: before SET, or at the end.
    list_at: usize,
    /// Columns the SET clause assigns.
    set: Vec<String>,
    /// The SET clause's text.
    set_text: String,
}

/// `LOAD DATA|XML … INTO TABLE t`: see the module comment.
pub(super) fn load_data(
    sql: &[u8],
    schema: &LogicalSchema,
    rt: &Runtime,
    reading: Reading,
) -> Result<Option<Prepared>, RouteError> {
    let tokens = reading.tokens(sql);
    let Some((qualifier, table, _, _)) = named_table(&tokens) else {
        return Ok(None);
    };
    if qualifier.as_ref().is_some_and(|q| *q != schema.name) {
        return Ok(None);
    }
    let Some(configured) = schema.tables.get(&table) else {
        return Ok(None);
    };
    let node_name = |n: NodeId| rt.nodes.get(n).map_or("?", |d| d.name.as_str());
    let unsupported = |what: String| Err(RouteError::Unsupported(what));
    match &configured.kind {
        TableKind::Single { node } if *node == schema.node && qualifier.is_none() => {
            return Ok(None)
        }
        TableKind::Single { node } => {
            return unsupported(format!(
                "LOAD DATA into single table `{table}`, which lives on {}, not on the schema's \
                 node: send it with the hint /* shardgate:node={} */ and the table unqualified",
                node_name(*node),
                node_name(*node)
            ))
        }
        _ => {}
    }
    let c = match clauses(sql, &tokens, reading) {
        Some(c) => c,
        None => {
            return Err(RouteError::Unsupported(format!(
                "a LOAD DATA into `{table}` whose clauses shardgate cannot read (it splits the \
                 file by them): write terminators as plain quoted strings ('\\t', ','), without \
                 hex literals or character set introducers"
            )))
        }
    };
    let kind = match &configured.kind {
        TableKind::Sharded(_) => "sharded",
        _ => "broadcast",
    };
    if !c.local {
        return unsupported(format!(
            "LOAD DATA INFILE (a file the server reads) into {kind} table `{table}`: its rows \
             must be split by shardgate; use LOAD DATA LOCAL INFILE"
        ));
    }
    if c.xml || c.partition || c.starting_by || c.format.line_end.is_empty() {
        return unsupported(format!(
            "LOAD XML, PARTITION, LINES STARTING BY and an empty line terminator in LOAD DATA \
             into {kind} table `{table}`; load a plain delimited file"
        ));
    }
    if c.format.field_end == c.format.line_end {
        return unsupported(format!(
            "the same field and line terminator in LOAD DATA into {kind} table `{table}`"
        ));
    }
    if c.format.field_end.is_empty() {
        return unsupported(format!(
            "fixed-width rows (FIELDS TERMINATED BY '') in LOAD DATA into {kind} table \
             `{table}`; use a field terminator"
        ));
    }
    // Only the statement's own variables: the parts run on connections where the
    // session's are not set.
    let bound: Vec<String> = c
        .columns
        .iter()
        .flatten()
        .filter_map(|n| n.strip_prefix('@').map(str::to_string))
        .collect();
    if let Some(what) = super::gather::session_bound(&c.set_text, reading, &bound) {
        return unsupported(format!(
            "{what} in the SET of a LOAD DATA into {kind} table `{table}`: each part runs on a \
             connection of its own, where {what} is not this session's"
        ));
    }
    let key_field = match &configured.kind {
        TableKind::Sharded(t) => {
            let Some(columns) = &c.columns else {
                return Err(RouteError::NeedsColumns {
                    table: table.clone(),
                    at: c.list_at,
                });
            };
            if c.set.iter().any(|s| s.eq_ignore_ascii_case(&t.column)) {
                return Err(RouteError::Invalid(format!(
                    "LOAD DATA may not SET the shard column `{}` of `{table}`: shardgate places \
                     each line by the key the file holds; load the key from the file",
                    t.column
                )));
            }
            let named = |col: &str| {
                columns
                    .iter()
                    .filter(|n| n.eq_ignore_ascii_case(col))
                    .count()
            };
            if named(&t.column) > 1 {
                return Err(RouteError::Invalid(format!(
                    "LOAD DATA names the shard column `{}` of `{table}` twice",
                    t.column
                )));
            }
            if let Some(id) = &t.global_id {
                return unsupported(format!(
                    "LOAD DATA into `{table}`, whose global id column `{}` shardgate fills \
                     for INSERTs only (a line without an id would get a shard's own); INSERT \
                     the rows",
                    id.column
                ));
            }
            let Some(i) = columns
                .iter()
                .position(|n| n.eq_ignore_ascii_case(&t.column))
            else {
                return Err(RouteError::Invalid(format!(
                    "LOAD DATA into sharded table `{table}` must read its shard column `{}` \
                     from the file: name it in the column list",
                    t.column
                )));
            };
            Some(i)
        }
        _ => None,
    };
    let statement = |physical: &str| -> String {
        let mut edits = vec![(
            c.table_at.clone(),
            format!("`{}`", physical.replace('`', "``")),
        )];
        if let Some((_, at)) = &c.ignore {
            edits.push((at.clone(), String::new()));
        }
        edits.sort_by_key(|e| std::cmp::Reverse(e.0.start));
        let mut text = String::from_utf8_lossy(sql).into_owned();
        for (at, with) in edits {
            text.replace_range(at, &with);
        }
        text
    };
    let targets: Vec<Target> = match &configured.kind {
        TableKind::Sharded(t) => t
            .shards
            .iter()
            .enumerate()
            .map(|(i, s)| Target {
                node: s.node,
                shard: Some(i as u32),
                sql: statement(&s.table),
            })
            .collect(),
        TableKind::Broadcast { nodes } => nodes
            .iter()
            .map(|n| Target {
                node: *n,
                shard: None,
                sql: statement(&table),
            })
            .collect(),
        TableKind::Single { .. } => return Ok(None),
    };
    let split = LoadSplit {
        table: table.clone(),
        format: c.format,
        ignore_lines: c.ignore.map_or(0, |(n, _)| n),
        key_field,
        fields: c.columns.as_ref().map_or(0, Vec::len),
        charset: c.charset,
    };
    Ok(Some(Prepared {
        plan: Plan {
            targets,
            write: true,
            scatter: false,
            merge: Merge::Concat,
            fill_global_id: None,
            gather: None,
            load: Some(Box::new(split)),
        },
        routing: Routing::Fixed,
        algorithm: None,
        params: 0,
    }))
}

/// Reads the clauses of `sql`; `None` when it is not a LOAD DATA this understands
/// (the server then says what is wrong with it).
fn clauses(sql: &[u8], tokens: &[Token<'_>], reading: Reading) -> Option<Clauses> {
    let base = sql.as_ptr() as usize;
    let at = |t: &[u8]| t.as_ptr() as usize - base;
    let word = |i: usize| tokens.get(i).and_then(|t| t.word());
    let is = |i: usize, w: &str| word(i).is_some_and(|x| x.eq_ignore_ascii_case(w.as_bytes()));
    let string = |i: usize| match tokens.get(i) {
        Some(Token::Str(s)) => crate::lexer::string_literal(s, reading.backslash_escapes),
        _ => None,
    };
    let xml = is(1, "xml");
    let (_, _, into, mut i) = named_table(tokens)?;
    let local = (0..into).any(|i| is(i, "local"));
    // The bytes of the table's name, qualified or not, backticks included.
    let span = |t: &Token<'_>| match t {
        Token::Quoted(w) => at(w).saturating_sub(1)..at(w) + w.len() + 1,
        Token::Word(w) => at(w)..at(w) + w.len(),
        _ => 0..0,
    };
    let table_at = span(&tokens[into + 2]).start..span(&tokens[i - 1]).end;
    let mut c = Clauses {
        local,
        xml,
        table_at,
        partition: false,
        charset: None,
        // Without ESCAPED BY, NO_BACKSLASH_ESCAPES leaves the file without one.
        format: LoadFormat {
            escaped: reading.backslash_escapes.then_some(b'\\'),
            ..LoadFormat::default()
        },
        starting_by: false,
        ignore: None,
        columns: None,
        list_at: sql.len(),
        set: Vec::new(),
        set_text: String::new(),
    };
    let mut section = "";
    while i < tokens.len() {
        if is(i, "partition") {
            c.partition = true;
            i += 1;
        } else if is(i, "character") && is(i + 1, "set") || is(i, "charset") {
            i += if is(i, "charset") { 1 } else { 2 };
            let cs = match tokens.get(i) {
                Some(Token::Str(s)) => String::from_utf8_lossy(&crate::lexer::string_literal(
                    s,
                    reading.backslash_escapes,
                )?)
                .into_owned(),
                Some(t) => name_of(t)?,
                None => return None,
            };
            let cs = cs.to_ascii_lowercase();
            // `DEFAULT`: the database's, as without the clause.
            c.charset = (cs != "default").then_some(cs);
            i += 1;
        } else if is(i, "fields") || is(i, "columns") || is(i, "lines") {
            section = if is(i, "lines") { "lines" } else { "fields" };
            i += 1;
        } else if is(i, "terminated") && is(i + 1, "by") {
            let s = string(i + 2)?;
            match section {
                "lines" => c.format.line_end = s,
                _ => c.format.field_end = s,
            }
            i += 3;
        } else if is(i, "optionally") {
            i += 1;
        } else if is(i, "enclosed") && is(i + 1, "by") {
            c.format.enclosed = string(i + 2)?.first().copied();
            i += 3;
        } else if is(i, "escaped") && is(i + 1, "by") {
            c.format.escaped = string(i + 2)?.first().copied();
            i += 3;
        } else if is(i, "starting") && is(i + 1, "by") {
            c.starting_by = !string(i + 2)?.is_empty();
            i += 3;
        } else if is(i, "ignore") && (is(i + 2, "lines") || is(i + 2, "rows")) {
            let Some(Token::Number(n)) = tokens.get(i + 1) else {
                return None;
            };
            let n: u64 = std::str::from_utf8(n).ok()?.parse().ok()?;
            let start = at(word(i)?);
            let end = at(word(i + 2)?) + word(i + 2)?.len();
            c.ignore = Some((n, start..end));
            i += 3;
        } else if matches!(tokens.get(i), Some(Token::Punct(p)) if *p == b"(") {
            let mut names = Vec::new();
            i += 1;
            while let Some(t) = tokens.get(i) {
                match t {
                    Token::Punct(p) if *p == b")" => break,
                    Token::UserVar(v) => names.push(format!(
                        "@{}",
                        String::from_utf8_lossy(v).trim_start_matches('@')
                    )),
                    t => names.extend(name_of(t)),
                }
                i += 1;
            }
            c.columns = Some(names);
            i += 1;
        } else if is(i, "set") {
            c.list_at = at(word(i)?);
            c.set_text = String::from_utf8_lossy(&sql[c.list_at..]).into_owned();
            // `col = expr, …`: a name followed by `=` at the top level is assigned.
            let mut depth = 0i32;
            for j in i + 1..tokens.len() {
                match &tokens[j] {
                    Token::Punct(p) if *p == b"(" => depth += 1,
                    Token::Punct(p) if *p == b")" => depth -= 1,
                    Token::Punct(p) if (*p == b"=" || *p == b":=") && depth == 0 => {
                        c.set
                            .extend(tokens.get(j.wrapping_sub(1)).and_then(name_of));
                    }
                    _ => {}
                }
            }
            break;
        } else {
            i += 1;
        }
    }
    if c.set.is_empty() {
        let end = sql.trim_ascii_end();
        c.list_at = end
            .strip_suffix(b";")
            .map_or(end.len(), |e| e.trim_ascii_end().len());
    }
    Some(c)
}

fn name_of(t: &Token<'_>) -> Option<String> {
    match t {
        Token::Word(w) | Token::Quoted(w) => Some(String::from_utf8_lossy(w).into_owned()),
        _ => None,
    }
}

/// `INTO TABLE [schema.]table`: the schema named, the table, the position of `INTO`
/// and of the token after the name.
fn named_table(tokens: &[Token<'_>]) -> Option<(Option<String>, String, usize, usize)> {
    let is = |i: usize, w: &str| {
        tokens
            .get(i)
            .and_then(|t| t.word())
            .is_some_and(|x| x.eq_ignore_ascii_case(w.as_bytes()))
    };
    let into = (0..tokens.len()).find(|&i| is(i, "into") && is(i + 1, "table"))?;
    let first = name_of(tokens.get(into + 2)?)?;
    match tokens.get(into + 3) {
        Some(Token::Punct(p)) if *p == b"." => {
            let second = name_of(tokens.get(into + 4)?)?;
            Some((Some(first), second, into, into + 5))
        }
        _ => Some((None, first, into, into + 3)),
    }
}
