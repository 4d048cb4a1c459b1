//! A session on the admin port: admin statements and SQL on the admin tables (see
//! [`crate::admin_plane`]), plus the few questions every MySQL client asks when it
//! connects (`SELECT @@version_comment`, `SET NAMES`, `SHOW DATABASES`), answered
//! here. Nothing reaches a data node from this port.

use super::{Flow, Reply, Session};
use crate::admin_plane::{self, Who};
use crate::wire::command::*;
use crate::wire::generic::ok_payload;
use crate::wire::packet::write_packet;
use crate::wire::resultset::LocalColumn;
use crate::wire::SqlError;

/// A result set answered here: columns and rows.
type Answer = (Vec<LocalColumn>, Vec<Vec<Option<String>>>);

/// The variables the admin port answers (`SHOW VARIABLES`, `SELECT @@…`).
const VARIABLES: [&str; 12] = [
    "autocommit",
    "character_set_client",
    "collation_connection",
    "interactive_timeout",
    "lower_case_table_names",
    "max_allowed_packet",
    "net_write_timeout",
    "sql_mode",
    "time_zone",
    "transaction_isolation",
    "version",
    "version_comment",
];

/// The name the admin port's one database goes by.
const ADMIN_DB: &str = "admin";

impl Session {
    pub(super) async fn admin_command(&mut self, cmd: u8, payload: &[u8], seq: u8) -> Reply {
        let body = &payload[1..];
        match cmd {
            COM_QUIT => Ok(Flow::Close),
            COM_PING | COM_RESET_CONNECTION => {
                self.send_ok(seq).await?;
                Ok(Flow::Continue)
            }
            COM_INIT_DB => {
                self.admin_use(&String::from_utf8_lossy(body))?;
                self.send_ok(seq).await?;
                Ok(Flow::Continue)
            }
            // The mysql client asks each table's columns for completion: none.
            COM_FIELD_LIST => {
                self.send_eof(seq).await?;
                Ok(Flow::Continue)
            }
            COM_QUERY => {
                let sql = String::from_utf8_lossy(body).into_owned();
                self.admin_query(&sql, seq).await
            }
            COM_CHANGE_USER => Err(SqlError::unsupported(
                "the admin port does not change users on a connection; connect again as the other admin account",
            )
            .into()),
            other => Err(SqlError::unsupported(format!(
                "the admin port takes text statements only (command {other:#04x}); \
                 use a client without server-side prepared statements"
            ))
            .into()),
        }
    }

    /// `USE db`: the admin database, or a logical schema for PREVIEW to plan in.
    fn admin_use(&mut self, db: &str) -> Result<(), SqlError> {
        let db = db.trim().trim_end_matches(';').trim_matches('`');
        if db.eq_ignore_ascii_case(ADMIN_DB) {
            self.db = None;
            return Ok(());
        }
        if !self.lease.topo.runtime.schemas.contains_key(db) {
            return Err(SqlError::new(
                1049,
                "42000",
                format!(
                    "Unknown database '{db}': the admin port has `{ADMIN_DB}`, and the logical \
                     schemas for PREVIEW to plan in"
                ),
            ));
        }
        self.db = Some(db.to_string());
        Ok(())
    }

    async fn admin_query(&mut self, sql: &str, seq: u8) -> Reply {
        let sql = admin::statement::without_leading_comments(sql);
        if sql.trim().trim_end_matches(';').trim().is_empty() {
            return Err(SqlError::new(1065, "42000", "Query was empty").into());
        }
        if let Some(reply) = self.admin_verb(sql, seq).await {
            return reply;
        }
        let words: Vec<String> = sql
            .trim_end_matches(';')
            .split_whitespace()
            .map(str::to_ascii_uppercase)
            .collect();
        if let [first, db] = words.as_slice() {
            if first == "USE" {
                let db = sql.split_whitespace().nth(1).unwrap_or("").to_string();
                self.admin_use(&db)?;
                self.send_ok(seq).await?;
                return Ok(Flow::Continue);
            }
            let _ = db;
        }
        // `SHOW TABLES`: the admin tables, as SQLite lists them.
        let sql = if words == ["SHOW", "TABLES"] {
            "SELECT name AS Tables_in_admin FROM sqlite_master WHERE type = 'table' ORDER BY name"
        } else {
            sql
        };
        if let Some(answer) = self.client_probe(sql) {
            return match answer? {
                Some((columns, rows)) => self.send_result_set(seq, "", &columns, &rows).await,
                None => {
                    self.send_ok(seq).await?;
                    Ok(Flow::Continue)
                }
            };
        }
        let Some(plane) = self.shared.admin.clone() else {
            return Err(SqlError::internal("the admin plane is not running").into());
        };
        let who = Who {
            user: self.admin_user.clone().unwrap_or_default(),
            client: self.peer.to_string(),
        };
        let reply = plane.execute(&who, sql).await?;
        self.send_admin_reply(reply, seq).await
    }

    pub(super) async fn send_admin_reply(&mut self, reply: admin_plane::Reply, seq: u8) -> Reply {
        match reply {
            admin_plane::Reply::Rows { columns, rows } => {
                self.send_result_set(seq, "", &columns, &rows).await
            }
            admin_plane::Reply::Done { affected } => {
                let mut seq = seq;
                let p = ok_payload(affected, 0, self.lease.status(), 0);
                write_packet(&mut self.out, &mut seq, &p);
                self.flush().await?;
                Ok(Flow::Continue)
            }
        }
    }

    /// What clients ask on their own when they connect, and statements that make no
    /// sense on the admin port: `Some(Ok(None))` is an OK, `Some(Ok(Some(..)))` a
    /// result set; `None`: an admin statement.
    fn client_probe(&self, sql: &str) -> Option<Result<Option<Answer>, SqlError>> {
        let text = sql.trim().trim_end_matches(';').trim();
        let upper = text.to_ascii_uppercase();
        let words: Vec<&str> = upper.split_whitespace().collect();
        let one = |name: &str, value: Option<String>| {
            Some(Ok(Some((vec![LocalColumn::text(name)], vec![vec![value]]))))
        };
        match words.as_slice() {
            ["SET", ..] | ["COMMIT"] => Some(Ok(None)),
            ["BEGIN", ..] | ["START", "TRANSACTION", ..] | ["ROLLBACK"] | ["SAVEPOINT", ..] => {
                Some(Err(SqlError::unsupported(
                    "the admin port has no transactions: each statement takes effect on its own. \
                     Stage changes in the tables; LOAD CONFIG TO RUNTIME puts them in effect together",
                )))
            }
            ["SHOW", "DATABASES"] | ["SHOW", "SCHEMAS"] => {
                one("Database", Some(ADMIN_DB.to_string()))
            }
            ["SHOW", "WARNINGS", ..] | ["SHOW", "ERRORS", ..] => Some(Ok(Some((
                ["Level", "Code", "Message"]
                    .map(LocalColumn::text)
                    .to_vec(),
                Vec::new(),
            )))),
            ["SELECT", "DATABASE()"] => one(
                "DATABASE()",
                Some(self.db.clone().unwrap_or_else(|| ADMIN_DB.to_string())),
            ),
            ["SHOW", "VARIABLES", ..] | ["SHOW", "SESSION", "VARIABLES", ..] => {
                let rows = VARIABLES
                    .iter()
                    .map(|n| vec![Some(n.to_string()), self.variable(n)])
                    .collect();
                Some(Ok(Some((
                    ["Variable_name", "Value"].map(LocalColumn::text).to_vec(),
                    rows,
                ))))
            }
            ["SELECT", "VERSION()"] => {
                one("VERSION()", Some(self.shared.server_version.clone()))
            }
            ["SELECT", f @ ("USER()" | "CURRENT_USER()")] => one(
                f,
                Some(format!(
                    "{}@{}",
                    self.admin_user.as_deref().unwrap_or(""),
                    self.peer.ip()
                )),
            ),
            ["SELECT", "CONNECTION_ID()"] => one("CONNECTION_ID()", Some(self.id.to_string())),
            ["SELECT", ..] if upper[6..].trim_start().starts_with("@@") => {
                Some(Ok(self.variables(&text[6..])))
            }
            _ => None,
        }
    }

    /// `SELECT @@a, @@session.b [LIMIT 1]`: the values clients read on connecting.
    fn variables(&self, list: &str) -> Option<Answer> {
        let lower = list.to_ascii_lowercase();
        let list = match lower.rfind(" limit ") {
            Some(at) => &list[..at],
            None => list,
        };
        let mut columns = Vec::new();
        let mut row = Vec::new();
        for item in list.split(',') {
            let item = item.trim();
            let (expr, alias) = match item.to_ascii_lowercase().find(" as ") {
                Some(at) => (&item[..at], item[at + 4..].trim().trim_matches('`')),
                None => (item, item),
            };
            let name = expr
                .trim()
                .trim_start_matches("@@")
                .to_ascii_lowercase()
                .replace("session.", "")
                .replace("global.", "")
                .replace("local.", "");
            columns.push(LocalColumn::text(alias));
            row.push(self.variable(&name));
        }
        Some((columns, vec![row]))
    }

    fn variable(&self, name: &str) -> Option<String> {
        let s = &self.shared.settings;
        Some(match name {
            "version_comment" => "shardgate admin".into(),
            "version" => self.shared.server_version.clone(),
            "max_allowed_packet" => s.max_allowed_packet.to_string(),
            "wait_timeout" | "interactive_timeout" => "28800".into(),
            "net_write_timeout" => "60".into(),
            "autocommit" => "1".into(),
            "sql_mode" => String::new(),
            "time_zone" => "SYSTEM".into(),
            "system_time_zone" => "UTC".into(),
            "lower_case_table_names" => "0".into(),
            "transaction_isolation" | "tx_isolation" => "REPEATABLE-READ".into(),
            "transaction_read_only" | "tx_read_only" => "0".into(),
            n if n.starts_with("character_set_") => "utf8mb4".into(),
            n if n.starts_with("collation_") => "utf8mb4_general_ci".into(),
            _ => return None,
        })
    }
}
