//! information_schema answers only about the user's databases: each information_schema
//! table a statement reads is narrowed to the rows about databases the user may use
//! (see `router::plan::catalog_view`), before the statement goes anywhere, so every
//! path (catalog answers, node hints, prepared statements) sends the narrowed text.

use router::plan::catalog_view::{self, ConfineError, Visible};
use router::privilege::Need;
use rules::Runtime;

use super::access::SYSTEM_SCHEMAS;
use super::Session;
use crate::config::UserConfig;
use crate::wire::SqlError;

impl Session {
    /// The statement in `payload` (command byte first) to run instead, when it reads
    /// information_schema; `Ok(None)`: run it as sent.
    pub(super) fn confine_catalog(
        &self,
        payload: &[u8],
        rt: &Runtime,
    ) -> Result<Option<Vec<u8>>, SqlError> {
        let (Some(user), Some((&cmd, sql))) = (&self.user, payload.split_first()) else {
            return Ok(None);
        };
        let in_catalog = self
            .db
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case("information_schema"));
        // Dynamic SQL hides the name in a string, where escapes may split it
        // (`'informat\ion_schema'`): such statements are always looked into.
        let dynamic = [&b"prepare"[..], b"execute"]
            .iter()
            .any(|w| sql.windows(w.len()).any(|x| x.eq_ignore_ascii_case(w)));
        if !self.shared.settings.enforce_privileges
            || !(in_catalog
                || dynamic
                || router::catalog::contains_word(sql, b"information", b"schema"))
        {
            return Ok(None);
        }
        let visible = visible(user, rt);
        if visible == Visible::All {
            return Ok(None);
        }
        let admin = user.may(Need::Admin);
        let text = self.charset.decode(sql)?;
        let text = std::str::from_utf8(&text).map_err(|_| {
            SqlError::unsupported(
                "not supported by shardgate yet: a statement on information_schema that is not valid text in the connection's character set",
            )
        })?;
        let refuse = |e: ConfineError| {
            match e {
            ConfineError::Denied(table) => SqlError::table_access_denied(format!(
                    "SELECT command denied to user '{}'@'{}' for table `information_schema`.`{table}` \
                     (it shows other databases, clients or the backend account; shardgate grants it \
                     with `privileges = [\"admin\"]`)",
                    user.name,
                    self.peer.ip()
                ),
            ),
            ConfineError::Unreadable(why) => SqlError::unsupported(format!(
                "not supported by shardgate yet: {why}; write the query in a form it can parse"
            )),
        }
        };
        let mentions = |w: &[u8]| {
            text.as_bytes()
                .windows(w.len())
                .any(|x| x.eq_ignore_ascii_case(w))
        };
        // A batch that changes sql_mode reads its later statements another way than
        // this one: it may not also read information_schema.
        if !admin && mentions(b"sql_mode") && mentions(b"information_schema") {
            return Err(SqlError::unsupported(
                "not supported by shardgate yet: a statement that changes sql_mode and reads \
                 information_schema; send them separately",
            ));
        }
        // PREPARE … FROM '<query>' runs a text that is a string here: narrowed, it
        // would no longer be the string the client wrote.
        for part in router::privilege::statements(text.as_bytes(), self.reading) {
            let Some(Ok(inner)) = router::privilege::dynamic_sql_in(part, self.reading) else {
                continue;
            };
            let narrowed = catalog_view::confine(&inner, self.reading, in_catalog, &visible, admin)
                .map_err(refuse)?;
            if narrowed.is_some() {
                return Err(SqlError::unsupported(
                    "not supported by shardgate yet: PREPARE or EXECUTE IMMEDIATE of a query on \
                     information_schema; send the query itself, or prepare it with the binary protocol",
                ));
            }
        }
        let narrowed = catalog_view::confine(text, self.reading, in_catalog, &visible, admin)
            .map_err(refuse)?;
        Ok(narrowed.map(|sql| {
            let encoded = self.charset.encode(&sql);
            let mut p = Vec::with_capacity(1 + encoded.len());
            p.push(cmd);
            p.extend_from_slice(&encoded);
            p
        }))
    }
}

/// The databases whose information_schema rows `user` may see, by their physical
/// names on the nodes: the same databases `access::may_name` lets it name.
fn visible(user: &UserConfig, rt: &Runtime) -> Visible {
    let admin = user.may(Need::Admin);
    let everything = user.schemas.iter().any(|s| s == "*");
    if everything && rt.passthrough.is_some() {
        return if admin {
            Visible::All
        } else {
            Visible::AllBut(SYSTEM_SCHEMAS.iter().map(|s| s.to_string()).collect())
        };
    }
    let mut names = vec!["information_schema".to_string()];
    if admin {
        names.extend(SYSTEM_SCHEMAS.iter().map(|s| s.to_string()));
    }
    for schema in rt.schemas.values().filter(|s| user.may_use(&s.name, true)) {
        names.push(schema.name.clone());
        for node in schema.nodes() {
            names.push(schema.database_on(&rt.nodes, node).to_string());
        }
    }
    names.sort();
    names.dedup();
    Visible::Only(names)
}
