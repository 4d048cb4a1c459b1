//! `shardgate check-broadcast`: are the copies of every broadcast table the same?
//! Each node's primary computes `CHECKSUM TABLE … EXTENDED` of its copy, and copies
//! whose checksums differ (or that are missing) are reported. Writes through
//! shardgate keep copies equal (every node's part commits only when all succeeded);
//! this finds what went around shardgate, or a crash between two commits.

use std::time::Duration;

use rules::{Runtime, TableKind};

use crate::backend::{BackendConn, BackendServer, Flavor};

/// One broadcast table's copies: (node, checksum; `None` when the copy is missing or
/// could not be read, with the reason).
pub struct TableCopies {
    pub schema: String,
    pub table: String,
    pub copies: Vec<(String, Result<Option<String>, String>)>,
}

impl TableCopies {
    /// Every copy could be read and all checksums are equal.
    pub fn consistent(&self) -> bool {
        let mut sums = self.copies.iter().map(|(_, c)| c);
        match sums.next() {
            Some(Ok(Some(first))) => sums.all(|c| matches!(c, Ok(Some(s)) if s == first)),
            Some(_) => false,
            None => true,
        }
    }
}

/// Checksums every copy of every broadcast table, node by node.
pub async fn check(rt: &Runtime, timeout: Duration) -> Vec<TableCopies> {
    let mut report = Vec::new();
    for schema in rt.schemas.values() {
        for (name, table) in &schema.tables {
            let TableKind::Broadcast { nodes } = &table.kind else {
                continue;
            };
            let mut copies = Vec::new();
            for &id in nodes {
                let node = &rt.nodes[id];
                let database = schema.database_on(&rt.nodes, id).to_string();
                let target = BackendServer {
                    label: format!("{}/primary", node.name),
                    address: node.primary.to_string(),
                    user: node.user.clone(),
                    password: node.password.clone(),
                    track_gtid: false,
                    // CHECKSUM TABLE … EXTENDED reads a whole table before it answers.
                    read_timeout: None,
                    tls: crate::backend::link::BackendTls::of(node),
                };
                let sql = format!(
                    "CHECKSUM TABLE `{}`.`{}` EXTENDED",
                    database.replace('`', "``"),
                    name.replace('`', "``")
                );
                let sum =
                    match BackendConn::connect(&target, Flavor::default(), None, timeout).await {
                        Err(e) => Err(format!("cannot connect: {e}")),
                        Ok(mut conn) => match conn.query_rows(sql.as_bytes()).await {
                            Err(e) => Err(e.to_string()),
                            Ok((_, rows)) => Ok(rows
                                .first()
                                .and_then(|r| r.get(1).cloned().flatten())
                                .map(|v| String::from_utf8_lossy(&v).into_owned())),
                        },
                    };
                copies.push((node.name.clone(), sum));
            }
            report.push(TableCopies {
                schema: schema.name.clone(),
                table: name.clone(),
                copies,
            });
        }
    }
    report
}

/// The report as lines for a terminal, and whether every table is consistent.
pub fn render(report: &[TableCopies]) -> (String, bool) {
    let mut out = String::new();
    let mut all = true;
    for t in report {
        let ok = t.consistent();
        all &= ok;
        out.push_str(&format!(
            "{}.{}: {}\n",
            t.schema,
            t.table,
            if ok { "consistent" } else { "COPIES DIFFER" }
        ));
        for (node, sum) in &t.copies {
            let shown = match sum {
                Ok(Some(s)) => format!("checksum {s}"),
                Ok(None) => "missing".to_string(),
                Err(e) => format!("unreadable: {e}"),
            };
            out.push_str(&format!("  {node}: {shown}\n"));
        }
    }
    if report.is_empty() {
        out.push_str("no broadcast tables configured\n");
    }
    (out, all)
}
