//! Routing hints written as comments, e.g. `/* shardgate:primary */`. Read from the
//! comments the lexer yields, so hints anywhere in the statement count and the
//! statement text itself reaches the backend untouched.

/// What the client asked for in `shardgate:` comments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    /// `shardgate:primary`: run on the primary even if the statement is a plain read.
    pub primary: bool,
    /// `shardgate:node=NAME`: run on this data node.
    pub node: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown shardgate hint `{0}`; known hints are `shardgate:primary` and `shardgate:node=NAME`"
)]
pub struct HintError(pub String);

const PREFIX: &[u8] = b"shardgate:";

impl Hints {
    /// Adds the directives of one comment body; comments without the prefix are ignored.
    pub fn add_comment(&mut self, body: &[u8]) -> Result<(), HintError> {
        let body = trim(body);
        let rest = match body.get(..PREFIX.len()) {
            Some(p) if p.eq_ignore_ascii_case(PREFIX) => &body[PREFIX.len()..],
            _ => return Ok(()),
        };
        let rest = String::from_utf8_lossy(rest);
        for word in rest.split(|c: char| c.is_whitespace() || c == ',') {
            if word.is_empty() {
                continue;
            }
            if word.eq_ignore_ascii_case("primary") || word.eq_ignore_ascii_case("master") {
                self.primary = true;
            } else if let Some(node) = word
                .split_once('=')
                .filter(|(k, v)| k.eq_ignore_ascii_case("node") && !v.is_empty())
                .map(|(_, v)| v)
            {
                self.node = Some(node.to_string());
            } else {
                return Err(HintError(word.to_string()));
            }
        }
        Ok(())
    }
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_directives() {
        let mut h = Hints::default();
        h.add_comment(b" shardgate:primary node=dn2 ").unwrap();
        assert!(h.primary);
        assert_eq!(h.node.as_deref(), Some("dn2"));
    }

    #[test]
    fn ignores_other_comments_and_rejects_typos() {
        let mut h = Hints::default();
        h.add_comment(b" just a comment ").unwrap();
        assert_eq!(h, Hints::default());
        let err = h.add_comment(b"shardgate:primay").unwrap_err();
        assert!(err.to_string().contains("`primay`"));
    }
}
