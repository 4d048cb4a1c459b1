//! A prepared execution answered through the text path: a read whose bound values
//! send it to several shards is run as the text statement it stands for (its
//! parameters written in as literals), so every strategy text statements have
//! (merges, gathers) serves it, and its result set reaches the client in the binary
//! protocol it asked for (see `wire::binary_rows`).

use crate::wire::stmt::Param;
use crate::wire::{command::COM_QUERY, SqlError};

use super::charset::ClientCharset;
use super::{CommandError, Reply, Session};

impl Session {
    /// Runs `sql` (the prepared text, decoded) with `params` bound, through the text
    /// path, answering in the binary protocol.
    pub(super) async fn execute_as_text(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        long_data: &[(u16, Vec<u8>)],
        seq: u8,
    ) -> Reply {
        let text = bind(sql, params, long_data, &self.charset, self.reading)?;
        let mut payload = Vec::with_capacity(1 + text.len());
        payload.push(COM_QUERY);
        payload.extend_from_slice(&self.charset.encode(&text));
        self.stream.start_binary_rows(self.deprecate_eof());
        let answered = self.query(&payload, seq).await;
        self.stream.stop_binary_rows();
        match answered {
            // The handler's own error is the whole answer, as for any command.
            Err(CommandError::Sql(e)) => {
                self.send_err(seq, &e).await?;
                Ok(super::Flow::Continue)
            }
            other => other,
        }
    }
}

/// `sql` with each `?` replaced by its parameter as a literal of the same type.
pub(super) fn bind(
    sql: &str,
    params: &[Param<'_>],
    long_data: &[(u16, Vec<u8>)],
    charset: &ClientCharset,
    reading: router::reading::Reading,
) -> Result<String, SqlError> {
    let base = sql.as_ptr() as usize;
    let marks: Vec<usize> = reading
        .lexer(sql.as_bytes())
        .filter_map(|t| match t {
            router::lexer::Token::Punct(p) if p == b"?" => Some(p.as_ptr() as usize - base),
            _ => None,
        })
        .collect();
    if marks.len() != params.len() {
        return Err(SqlError::bad_execute(format!(
            "the statement has {} parameter markers and {} values were bound",
            marks.len(),
            params.len()
        )));
    }
    let mut out = String::with_capacity(sql.len() + 16 * params.len());
    let mut pos = 0;
    for (i, (at, p)) in marks.iter().zip(params).enumerate() {
        out.push_str(&sql[pos..*at]);
        let long = || {
            long_data
                .iter()
                .filter(|(n, _)| usize::from(*n) == i)
                .flat_map(|(_, d)| d.iter().copied())
                .collect::<Vec<u8>>()
        };
        match p {
            Param::Null => out.push_str("NULL"),
            Param::Int(v) => out.push_str(&v.to_string()),
            // Scientific notation keeps it a DOUBLE, as the binary value was; Rust
            // prints the shortest digits that read back to the same double.
            Param::Float(f) if f.is_finite() => out.push_str(&format!("{f:e}")),
            Param::Float(_) => {
                return Err(SqlError::bad_execute(
                    "a floating-point parameter that is not a number",
                ))
            }
            Param::Decimal(d) if d.iter().all(|b| b.is_ascii_digit() || b"+-.eE".contains(b)) => {
                out.push_str(&String::from_utf8_lossy(d))
            }
            Param::Decimal(d) | Param::Bytes(d) => string(&mut out, d, charset, reading),
            Param::LongData => string(&mut out, &long(), charset, reading),
            Param::Temporal(t) => temporal(&mut out, t),
        }
        pos = at + 1;
    }
    out.push_str(&sql[pos..]);
    Ok(out)
}

/// A string parameter: quoted text in the client's character set, or, for bytes
/// that are no text in it (a BLOB), a binary string.
fn string(
    out: &mut String,
    bytes: &[u8],
    charset: &ClientCharset,
    reading: router::reading::Reading,
) {
    let text = match charset {
        ClientCharset::Utf8 => std::str::from_utf8(bytes).ok().map(str::to_string),
        _ => charset.text(bytes).ok(),
    };
    let Some(text) = text else {
        out.push_str("X'");
        for b in bytes {
            out.push_str(&format!("{b:02X}"));
        }
        out.push('\'');
        return;
    };
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' if reading.backslash_escapes => out.push_str("\\\\"),
            '\0' if reading.backslash_escapes => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// A date or time parameter as a typed literal, so that it compares as the temporal
/// value it was, not as a string.
fn temporal(out: &mut String, t: &str) {
    let zero = t.starts_with("0000-00-00");
    let kind = match (
        t.len() >= 10 && t.as_bytes().get(4) == Some(&b'-'),
        t.contains(':'),
    ) {
        _ if zero => "",
        (true, true) => "TIMESTAMP",
        (true, false) => "DATE",
        _ => "TIME",
    };
    out.push_str(kind);
    out.push('\'');
    out.push_str(t);
    out.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;
    use router::reading::Reading;

    #[test]
    fn parameters_become_literals_of_their_type() {
        let params = [
            Param::Int(-3),
            Param::Float(0.1),
            Param::Bytes(b"it's \\ ?"),
            Param::Null,
            Param::Temporal("2024-02-29 10:00:00".into()),
            Param::Temporal("2024-02-29".into()),
            Param::Bytes(&[0xff, 0x00]),
            Param::LongData,
        ];
        let long = [(7u16, b"ab".to_vec()), (7u16, b"c".to_vec())];
        let sql = "SELECT '?', a FROM t WHERE a = ? AND b = ? AND c = ? /* ? */ AND d <=> ? \
                   AND e = ? AND f = ? AND g = ? AND h = ?";
        let got = bind(sql, &params, &long, &ClientCharset::Utf8, Reading::DEFAULT).unwrap();
        assert_eq!(
            got,
            "SELECT '?', a FROM t WHERE a = -3 AND b = 1e-1 AND c = 'it''s \\\\ ?' /* ? */ \
             AND d <=> NULL AND e = TIMESTAMP'2024-02-29 10:00:00' AND f = DATE'2024-02-29' \
             AND g = X'FF00' AND h = 'abc'"
        );
        assert!(bind("SELECT ?", &[], &[], &ClientCharset::Utf8, Reading::DEFAULT).is_err());
    }
}
