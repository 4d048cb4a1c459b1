//! `host:port` addresses of backend servers.

use std::fmt;

/// A backend address as written in the config. Kept as text (not a resolved
/// `SocketAddr`) because DNS names must be resolved at connect time, not at load time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// Parses `host:port` or `[v6]:port`. The port is required: a default would hide
    /// a typo in a config that names several servers on one host.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("address is empty; write it as host:port".into());
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("`{text}`: missing `]` after an IPv6 address"))?;
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err(format!("`{text}`: expected `:port` after `]`")),
            }
        } else if text.matches(':').count() > 1 {
            return Err(format!("`{text}`: write IPv6 addresses as [addr]:port"));
        } else {
            match text.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        if host.is_empty() {
            return Err(format!("`{text}`: host is empty"));
        }
        let bracketed = text.starts_with('[');
        if !bracketed
            && !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        {
            return Err(format!(
                "`{text}`: not a host name or IP address; write it as host:port"
            ));
        }
        let port = match port {
            None => {
                return Err(format!(
                    "`{text}`: give the port too, as host:port (MariaDB's usual port is 3306)"
                ))
            }
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(format!("`{text}`: port must be 1-65535")),
                Ok(p) => p,
            },
        };
        Ok(Endpoint {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(
            Endpoint::parse("127.0.0.1:3307").unwrap(),
            Endpoint {
                host: "127.0.0.1".into(),
                port: 3307
            }
        );
        assert!(Endpoint::parse("db1")
            .unwrap_err()
            .contains("give the port"));
        assert!(Endpoint::parse("not an address")
            .unwrap_err()
            .contains("not a host name"));
        assert_eq!(Endpoint::parse("db-1.example_x:3306").unwrap().port, 3306);
        assert_eq!(Endpoint::parse("[::1]:3310").unwrap().host, "::1");
        assert_eq!(
            Endpoint::parse("[::1]:3310").unwrap().to_string(),
            "[::1]:3310"
        );
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in ["", ":3306", "h:0", "h:99999", "h:x", "::1", "[::1"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
