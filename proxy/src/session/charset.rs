//! The client's character set. Statements and string parameters arrive in it, and a
//! shard key must be placed by the text it means, not by the bytes that carried it:
//! `'Ã©'` sent by a latin1 client is the same value as `'Ã©'` from a utf8mb4 client,
//! and must land on the same shard. So text for planning is decoded from the client's
//! character set, and the physical statements are encoded back into it (the backend
//! connection speaks the client's character set).

use std::borrow::Cow;

use encoding_rs::Encoding;

use crate::wire::SqlError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCharset {
    /// utf8mb4, utf8mb3, ascii, binary: the bytes are the text.
    Utf8,
    /// A character set shardgate translates.
    Transcoded(&'static Encoding, &'static str),
    /// One it cannot read: statements on configured tables that are not plain ASCII
    /// are refused rather than placed by a guess.
    Unsupported(String),
}

impl ClientCharset {
    /// From a MySQL character set name (`SET NAMES latin1`).
    pub fn from_name(name: &str) -> ClientCharset {
        use encoding_rs::*;
        let name = name.trim_matches(|c| c == '\'' || c == '"' || c == '`');
        let lower = name.to_ascii_lowercase();
        let enc: (&'static Encoding, &'static str) = match lower.as_str() {
            "utf8mb4" | "utf8" | "utf8mb3" | "ascii" | "binary" | "default" => {
                return ClientCharset::Utf8
            }
            "latin1" => (WINDOWS_1252, "latin1"),
            "latin2" => (ISO_8859_2, "latin2"),
            "latin5" => (WINDOWS_1254, "latin5"),
            "latin7" => (ISO_8859_13, "latin7"),
            "cp1250" => (WINDOWS_1250, "cp1250"),
            "cp1251" => (WINDOWS_1251, "cp1251"),
            "cp1256" => (WINDOWS_1256, "cp1256"),
            "cp1257" => (WINDOWS_1257, "cp1257"),
            "cp866" => (IBM866, "cp866"),
            "greek" => (ISO_8859_7, "greek"),
            "hebrew" => (ISO_8859_8, "hebrew"),
            "koi8r" => (KOI8_R, "koi8r"),
            "koi8u" => (KOI8_U, "koi8u"),
            "macroman" => (MACINTOSH, "macroman"),
            "tis620" => (WINDOWS_874, "tis620"),
            "gbk" => (GBK, "gbk"),
            "gb18030" => (GB18030, "gb18030"),
            "big5" => (BIG5, "big5"),
            "sjis" | "cp932" => (SHIFT_JIS, "sjis"),
            "ujis" | "eucjpms" => (EUC_JP, "ujis"),
            "euckr" => (EUC_KR, "euckr"),
            _ => return ClientCharset::Unsupported(lower),
        };
        ClientCharset::Transcoded(enc.0, enc.1)
    }

    /// From the collation id a client sends in its handshake.
    pub fn from_collation(id: u8) -> ClientCharset {
        let collation = mysql_common::collations::Collation::from(
            mysql_common::collations::CollationId::from(u16::from(id)),
        );
        ClientCharset::from_name(collation.charset())
    }

    /// The statement as text, for planning. Plain ASCII (most statements) and UTF-8
    /// clients cost nothing.
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>, SqlError> {
        if bytes.is_ascii() {
            return Ok(Cow::Borrowed(bytes));
        }
        match self {
            ClientCharset::Utf8 => Ok(Cow::Borrowed(bytes)),
            ClientCharset::Transcoded(enc, name) => {
                let text = enc
                    .decode_without_bom_handling_and_without_replacement(bytes)
                    .ok_or_else(|| undecodable(name))?;
                // Only a faithful round trip may be planned: the server will read the
                // bytes sent back exactly as the client's.
                if enc.encode(&text).0.as_ref() != bytes {
                    return Err(undecodable(name));
                }
                Ok(Cow::Owned(text.into_owned().into_bytes()))
            }
            ClientCharset::Unsupported(name) => Err(SqlError::new(
                1115,
                "42000",
                format!(
                    "shardgate cannot read character set `{name}` to place shard keys; \
                     use utf8mb4 (SET NAMES utf8mb4), latin1, or another set the README lists"
                ),
            )),
        }
    }

    /// A physical statement (text) in the bytes the backend connection expects.
    pub fn encode<'a>(&self, sql: &'a str) -> Cow<'a, [u8]> {
        match self {
            ClientCharset::Transcoded(enc, _) if !sql.is_ascii() => enc.encode(sql).0,
            _ => Cow::Borrowed(sql.as_bytes()),
        }
    }

    /// A string parameter's value, for placing its row.
    pub fn text(&self, bytes: &[u8]) -> Result<String, SqlError> {
        Ok(String::from_utf8_lossy(&self.decode(bytes)?).into_owned())
    }
}

fn undecodable(name: &str) -> SqlError {
    SqlError::new(
        1366,
        "HY000",
        format!(
            "shardgate could not read the statement as {name}, this session's character set; \
             it was not run"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_text_means_what_the_server_reads() {
        let latin1 = ClientCharset::from_name("latin1");
        // The bytes of UTF-8 'é' are two latin1 characters, 'Ã' and '©'.
        let got = latin1.decode(b"SELECT 'caf\xc3\xa9'").unwrap();
        assert_eq!(std::str::from_utf8(&got).unwrap(), "SELECT 'cafÃ©'");
        assert_eq!(
            latin1.encode("SELECT 'cafÃ©'").as_ref(),
            b"SELECT 'caf\xc3\xa9'"
        );
        // A latin1 'é' is one byte.
        let got = latin1.decode(b"'caf\xe9'").unwrap();
        assert_eq!(std::str::from_utf8(&got).unwrap(), "'café'");
        assert_eq!(ClientCharset::from_collation(8), latin1);
        assert_eq!(ClientCharset::from_collation(45), ClientCharset::Utf8);
        assert_eq!(ClientCharset::from_name("UTF8MB4"), ClientCharset::Utf8);
        assert!(ClientCharset::from_name("swe7").decode(b"'\xe9'").is_err());
        assert!(ClientCharset::from_name("swe7").decode(b"'plain'").is_ok());
        assert!(ClientCharset::from_name("sjis").decode(b"'\x82'").is_err());
    }
}
