//! Executable comments (`/*! … */`, `/*!40101 … */`, `/*M!100000 … */`) resolved the
//! way the backend server reads them, before anything else reads the statement.
//!
//! The server runs a versioned comment's code or skips it by its version; shardgate's
//! lexer, sqlparser and the server used to disagree (sqlparser skips `/*M!`, the lexer
//! ran everything). A statement is therefore rewritten once, at the door: the code of
//! a comment the server runs loses its markers (they become spaces), and a comment
//! the server skips becomes a plain comment. The rewritten text means the same to the
//! server, has the same length, and every reader after it sees what the server sees.

use crate::reading::Reading;

/// What decides whether the backend runs a versioned comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerVersion {
    pub mariadb: bool,
    /// `10.11.19` → 101119; `8.0.36` → 80036.
    pub id: u32,
}

impl ServerVersion {
    /// From a server's version string (`10.11.19-MariaDB-0+deb12u1`,
    /// `5.5.5-10.11.19-MariaDB`, `8.0.36`).
    pub fn parse(version: &str) -> ServerVersion {
        let mariadb = version.contains("MariaDB");
        let v = version.strip_prefix("5.5.5-").unwrap_or(version);
        let mut parts = v
            .split(|c: char| !c.is_ascii_digit())
            .take(3)
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let (a, b, c) = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        ServerVersion {
            mariadb,
            id: a
                .saturating_mul(10_000)
                .saturating_add(b.min(99) * 100)
                .saturating_add(c.min(99)),
        }
    }

    /// Whether code under `/*!` (`mariadb_only` false) or `/*M!` runs, given the
    /// version digits written after it (`None`: no version).
    fn runs(self, mariadb_only: bool, version: Option<(u32, usize)>) -> bool {
        if mariadb_only && !self.mariadb {
            return false;
        }
        match version {
            None => true,
            // MariaDB skips code meant for MySQL 5.7 and later (5-digit 50700–99999).
            Some((v, 5)) if self.mariadb && !mariadb_only && (50700..=99999).contains(&v) => false,
            Some((v, _)) => v <= self.id,
        }
    }
}

/// `sql` with its executable comments resolved for `server`; `None` when it has none.
pub fn resolve(sql: &[u8], reading: Reading, server: ServerVersion) -> Option<Vec<u8>> {
    if !sql.windows(3).any(|w| w == b"/*!") && !sql.windows(4).any(|w| w == b"/*M!") {
        return None;
    }
    let mut out = sql.to_vec();
    let mut i = 0;
    let mut in_code_comment = false;
    while i < sql.len() {
        match sql[i] {
            q @ (b'\'' | b'"' | b'`') => i = skip_quoted(sql, i, q, reading),
            b'#' => i = skip_to_line_end(sql, i),
            b'-' if sql.get(i + 1) == Some(&b'-')
                && sql
                    .get(i + 2)
                    .is_none_or(|c| c.is_ascii_whitespace() || c.is_ascii_control()) =>
            {
                i = skip_to_line_end(sql, i)
            }
            b'*' if in_code_comment && sql.get(i + 1) == Some(&b'/') => {
                out[i] = b' ';
                out[i + 1] = b' ';
                in_code_comment = false;
                i += 2;
            }
            b'/' if sql.get(i + 1) == Some(&b'*') => {
                let mariadb_only = sql.get(i + 2) == Some(&b'M') && sql.get(i + 3) == Some(&b'!');
                let marker = if mariadb_only { 4 } else { 3 };
                if !(mariadb_only || sql.get(i + 2) == Some(&b'!')) || in_code_comment {
                    // A plain comment (or one nested in code, which the server treats
                    // as plain too): skipped to its end.
                    i = find(sql, i + 2, b"*/").map_or(sql.len(), |e| e + 2);
                    continue;
                }
                // MySQL reads five version digits; MariaDB six when there are six.
                let most = if server.mariadb { 6 } else { 5 };
                let digits = sql[i + marker..]
                    .iter()
                    .take(most)
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                let (version, used) = match digits {
                    6 => (parse(&sql[i + marker..i + marker + 6]).map(|v| (v, 6)), 6),
                    5 => (parse(&sql[i + marker..i + marker + 5]).map(|v| (v, 5)), 5),
                    _ => (None, 0),
                };
                if server.runs(mariadb_only, version) {
                    out[i..i + marker + used].fill(b' ');
                    in_code_comment = true;
                    i += marker + used;
                } else {
                    // Skipped by the server: a plain comment for every reader.
                    out[i + 2..i + marker].fill(b' ');
                    i = find(sql, i + marker, b"*/").map_or(sql.len(), |e| e + 2);
                }
            }
            _ => i += 1,
        }
    }
    Some(out)
}

fn parse(digits: &[u8]) -> Option<u32> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

fn skip_to_line_end(sql: &[u8], i: usize) -> usize {
    find(sql, i, b"\n").map_or(sql.len(), |e| e + 1)
}

/// Past the closing quote of the quoted run at `i`: doubled quotes stay inside, and a
/// backslash escapes in strings unless NO_BACKSLASH_ESCAPES.
fn skip_quoted(sql: &[u8], i: usize, quote: u8, reading: Reading) -> usize {
    let string = quote == b'\'' || (quote == b'"' && !reading.ansi_quotes);
    let mut j = i + 1;
    while j < sql.len() {
        let c = sql[j];
        if c == b'\\' && string && reading.backslash_escapes {
            j += 2;
        } else if c == quote {
            if sql.get(j + 1) == Some(&quote) {
                j += 2;
            } else {
                return j + 1;
            }
        } else {
            j += 1;
        }
    }
    sql.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARIADB: ServerVersion = ServerVersion {
        mariadb: true,
        id: 101119,
    };

    fn r(sql: &str, server: ServerVersion) -> String {
        let out = resolve(sql.as_bytes(), Reading::DEFAULT, server)
            .unwrap_or_else(|| sql.as_bytes().to_vec());
        assert_eq!(out.len(), sql.len());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn reads_versions_as_mariadb_10_11_does() {
        // Measured on MariaDB 10.11.19: which of these run the code inside.
        for (comment, runs) in [
            ("/*! 1 */", true),
            ("/*!40101 1 */", true),
            ("/*!50699 1 */", true),
            ("/*!50700 1 */", false),
            ("/*!99999 1 */", false),
            ("/*!100000 1 */", true),
            ("/*!101100 1 */", true),
            ("/*!101200 1 */", false),
            ("/*M! 1 */", true),
            ("/*M!50000 1 */", true),
            ("/*M!101119 1 */", true),
            ("/*M!101120 1 */", false),
            ("/*!5000000 1 */", false),
        ] {
            let out = r(&format!("SELECT 0 {comment}"), MARIADB);
            let ran = !out.contains("/*");
            assert_eq!(ran, runs, "{comment}: {out}");
        }
        assert_eq!(
            r("SELECT a FROM t /*!40101 WHERE a = 1 */", MARIADB),
            "SELECT a FROM t          WHERE a = 1   "
        );
        assert_eq!(
            r("SELECT a FROM t /*M!100000 WHERE a = 1 */", MARIADB),
            "SELECT a FROM t            WHERE a = 1   "
        );
    }

    #[test]
    fn mysql_skips_mariadb_comments_and_strings_are_left_alone() {
        let mysql = ServerVersion::parse("8.0.36");
        assert_eq!(
            mysql,
            ServerVersion {
                mariadb: false,
                id: 80036
            }
        );
        assert_eq!(
            r("SELECT 1 /*M! , 2 */ /*!80000 , 3 */", mysql),
            "SELECT 1 /*   , 2 */          , 3   "
        );
        assert_eq!(
            r("SELECT '/*!1 x */', `/*M!`", MARIADB),
            "SELECT '/*!1 x */', `/*M!`"
        );
        assert_eq!(ServerVersion::parse("5.5.5-10.11.19-MariaDB-log"), MARIADB);
        // A version string out of range does not overflow.
        let huge = ServerVersion::parse("4294967295.4294967295.9");
        assert_eq!(huge.id, u32::MAX);
        // MySQL reads five version digits: `/*!800001` is version 80000 and code `1`.
        assert_eq!(r("SELECT 0 /*!800001 */", mysql), "SELECT 0         1   ");
    }
}
