//! What shardgate knows of a front-end password. A config file may hold the password
//! itself, or only the hashes the login plugins check: `mysql_native_password`'s
//! SHA1(SHA1(password)) (MySQL's `*…` form) and `caching_sha2_password`'s
//! SHA256(SHA256(password)). Both plugins can be verified from their hash alone, so a
//! file that leaks gives no password that works elsewhere.

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The checks one account's logins are held to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credential {
    /// SHA1(SHA1(password)).
    native: Option<[u8; 20]>,
    /// SHA256(SHA256(password)).
    sha2: Option<[u8; 32]>,
    /// The account has no password: an empty answer logs in.
    empty: bool,
}

/// A hash in the config that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("give `password` or the hashes, not both")]
    Both,
    #[error("`password_native_hash` must be `*` and 40 hex digits (MySQL's PASSWORD() form), as `shardgate hash-password` prints it")]
    BadNative,
    #[error("`password_sha2_hash` must be 64 hex digits (SHA256(SHA256(password))), as `shardgate hash-password` prints it")]
    BadSha2,
}

impl Credential {
    /// From a config entry: a cleartext password ("" for none) or either hash.
    pub fn from_config(
        password: &str,
        native_hash: Option<&str>,
        sha2_hash: Option<&str>,
    ) -> Result<Credential, CredentialError> {
        if native_hash.is_none() && sha2_hash.is_none() {
            return Ok(Credential::from_password(password));
        }
        if !password.is_empty() {
            return Err(CredentialError::Both);
        }
        let native = native_hash
            .map(|h| {
                h.strip_prefix('*')
                    .and_then(hex::<20>)
                    .ok_or(CredentialError::BadNative)
            })
            .transpose()?;
        let sha2 = sha2_hash
            .map(|h| hex::<32>(h).ok_or(CredentialError::BadSha2))
            .transpose()?;
        Ok(Credential {
            native,
            sha2,
            empty: false,
        })
    }

    pub fn from_password(password: &str) -> Credential {
        if password.is_empty() {
            return Credential {
                empty: true,
                ..Credential::default()
            };
        }
        Credential {
            native: Some(native_hash(password.as_bytes())),
            sha2: Some(sha2_hash(password.as_bytes())),
            empty: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.empty
    }

    /// A `mysql_native_password` answer can be checked.
    pub fn knows_native(&self) -> bool {
        self.empty || self.native.is_some()
    }

    /// A `caching_sha2_password` answer can be checked.
    pub fn knows_sha2(&self) -> bool {
        self.empty || self.sha2.is_some()
    }

    /// Checks a `mysql_native_password` answer: the client sent SHA1(pw) XOR
    /// SHA1(scramble, SHA1(SHA1(pw))); unmasked, its SHA1 must be the stored hash.
    pub fn verify_native(&self, scramble: &[u8; 20], response: &[u8]) -> bool {
        if self.empty {
            return response.is_empty();
        }
        let (Some(stored), Ok(sent)) = (self.native, <[u8; 20]>::try_from(response)) else {
            return false;
        };
        let mask: [u8; 20] = Sha1::new()
            .chain_update(scramble)
            .chain_update(stored)
            .finalize()
            .into();
        let stage1 = xor(sent, mask);
        let again: [u8; 20] = Sha1::digest(stage1).into();
        same_bytes(&again, &stored)
    }

    /// Checks a `caching_sha2_password` fast-path answer: SHA256(pw) XOR
    /// SHA256(SHA256(SHA256(pw)), scramble).
    pub fn verify_sha2(&self, scramble: &[u8; 20], response: &[u8]) -> bool {
        if self.empty {
            // Clients may end an empty answer with a NUL.
            return response.is_empty() || response == [0];
        }
        let (Some(stored), Ok(sent)) = (self.sha2, <[u8; 32]>::try_from(response)) else {
            return false;
        };
        let mask: [u8; 32] = Sha256::new()
            .chain_update(stored)
            .chain_update(scramble)
            .finalize()
            .into();
        let stage1 = xor(sent, mask);
        let again: [u8; 32] = Sha256::digest(stage1).into();
        same_bytes(&again, &stored)
    }

    /// Checks the cleartext password a client sends in full authentication (over
    /// TLS), NUL-terminated.
    pub fn verify_cleartext(&self, sent: &[u8]) -> bool {
        let sent = sent.strip_suffix(&[0]).unwrap_or(sent);
        if self.empty || sent.is_empty() {
            return self.empty && sent.is_empty();
        }
        match (self.sha2, self.native) {
            (Some(stored), _) => same_bytes(&sha2_hash(sent), &stored),
            (None, Some(stored)) => same_bytes(&native_hash(sent), &stored),
            (None, None) => false,
        }
    }
}

/// SHA1(SHA1(password)).
pub fn native_hash(password: &[u8]) -> [u8; 20] {
    Sha1::digest(Sha1::digest(password)).into()
}

/// SHA256(SHA256(password)).
pub fn sha2_hash(password: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(password)).into()
}

/// The config lines `shardgate hash-password` prints for `password`.
pub fn config_lines(password: &str) -> String {
    let hexed = |b: &[u8]| b.iter().map(|x| format!("{x:02X}")).collect::<String>();
    format!(
        "password_native_hash = \"*{}\"\npassword_sha2_hash = \"{}\"\n",
        hexed(&native_hash(password.as_bytes())),
        hexed(&sha2_hash(password.as_bytes())).to_ascii_lowercase()
    )
}

fn hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.trim();
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn xor<const N: usize>(a: [u8; N], b: [u8; N]) -> [u8; N] {
    let mut out = a;
    for (o, m) in out.iter_mut().zip(b) {
        *o ^= m;
    }
    out
}

/// Equality in time independent of where the bytes differ.
pub fn same_bytes(expected: &[u8], response: &[u8]) -> bool {
    if expected.len() != response.len() {
        return false;
    }
    expected
        .iter()
        .zip(response)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::auth::plugins::{caching_sha2_password, mysql_native_password};

    const SCRAMBLE: [u8; 20] = *b"0123456789abcdefghij";

    fn hashed(pw: &str) -> Credential {
        let lines = config_lines(pw);
        let value = |key: &str| {
            lines.lines().find_map(|l| l.strip_prefix(key)).map(|v| {
                v.trim_matches(|c| c == ' ' || c == '=' || c == '"')
                    .to_string()
            })
        };
        Credential::from_config(
            "",
            value("password_native_hash").as_deref(),
            value("password_sha2_hash").as_deref(),
        )
        .unwrap()
    }

    /// Answers computed the way drivers compute them (mysql_common's own scramble
    /// functions) pass against the cleartext and the hashed forms alike; wrong ones
    /// fail.
    #[test]
    fn hashed_and_cleartext_credentials_check_what_drivers_send() {
        for pw in ["secret", "ünïcødé pässwörd", "x"] {
            let native = mysql_native_password::scramble_native(&SCRAMBLE, pw.as_bytes()).unwrap();
            let sha2 = caching_sha2_password::scramble_sha256(&SCRAMBLE, pw.as_bytes()).unwrap();
            for c in [Credential::from_password(pw), hashed(pw)] {
                assert!(c.verify_native(&SCRAMBLE, &native), "{pw}");
                assert!(c.verify_sha2(&SCRAMBLE, &sha2), "{pw}");
                assert!(c.verify_cleartext(format!("{pw}\0").as_bytes()), "{pw}");
                assert!(!c.verify_native(&SCRAMBLE, &sha2[..20]));
                assert!(!c.verify_sha2(&SCRAMBLE, &[0u8; 32]));
                assert!(!c.verify_cleartext(b"wrong\0"));
                assert!(!c.verify_native(&SCRAMBLE, b""));
                assert!(!c.verify_cleartext(b"\0"));
            }
        }
    }

    /// MySQL's `SELECT PASSWORD('secret')`.
    #[test]
    fn the_native_hash_is_mysqls_password_form() {
        assert!(config_lines("secret").contains("*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"));
    }

    #[test]
    fn bad_hashes_and_mixed_forms_are_refused() {
        let native = Some("*14E65567ABDB5135D0CFD9A70B3032C179A49EE7");
        assert!(matches!(
            Credential::from_config("pw", native, None),
            Err(CredentialError::Both)
        ));
        for bad in [
            "14E65567ABDB5135D0CFD9A70B3032C179A49EE7",
            "*14E6",
            "*ZZE65567ABDB5135D0CFD9A70B3032C179A49EE7",
        ] {
            assert!(
                matches!(
                    Credential::from_config("", Some(bad), None),
                    Err(CredentialError::BadNative)
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            Credential::from_config("", None, Some("abc")),
            Err(CredentialError::BadSha2)
        ));
        let only_native = Credential::from_config("", native, None).unwrap();
        assert!(only_native.knows_native() && !only_native.knows_sha2());
    }

    #[test]
    fn an_empty_password_takes_an_empty_answer_only() {
        let c = Credential::from_password("");
        assert!(c.verify_native(&SCRAMBLE, b""));
        assert!(c.verify_sha2(&SCRAMBLE, b"\0"));
        assert!(!c.verify_native(&SCRAMBLE, &[1u8; 20]));
        assert!(c.verify_cleartext(b"\0"));
        assert!(!c.verify_cleartext(b"x\0"));
    }
}
