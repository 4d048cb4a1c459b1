//! MariaDB GTID positions: what a session (or a user) wrote on a node, and what a
//! replica has applied. A position holds the highest sequence number per replication
//! domain; a replica has applied a write when, in the write's domain, its sequence
//! number is at least the write's (the server id does not order transactions).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// One GTID per domain: `domain-server-sequence`, as MariaDB writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidPos {
    /// Sorted by domain; a handful at most.
    entries: Vec<(u32, u32, u64)>,
}

impl GtidPos {
    /// Reads `0-1-42,1-2-7`; `None` when any part is not a GTID. Empty text is the
    /// empty position.
    pub fn parse(text: &[u8]) -> Option<GtidPos> {
        let text = std::str::from_utf8(text).ok()?.trim();
        let mut pos = GtidPos::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut it = part.splitn(3, '-');
            let domain = it.next()?.parse().ok()?;
            let server = it.next()?.parse().ok()?;
            let seq = it.next()?.parse().ok()?;
            pos.note(domain, server, seq);
        }
        Some(pos)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn note(&mut self, domain: u32, server: u32, seq: u64) {
        match self.entries.binary_search_by_key(&domain, |e| e.0) {
            Ok(i) => {
                if seq > self.entries[i].2 {
                    self.entries[i] = (domain, server, seq);
                }
            }
            Err(i) => self.entries.insert(i, (domain, server, seq)),
        }
    }

    /// Raises this position to include `other`, domain by domain.
    pub fn merge(&mut self, other: &GtidPos) {
        for &(d, s, n) in &other.entries {
            self.note(d, s, n);
        }
    }

    /// Every transaction of `other` is within this position.
    pub fn covers(&self, other: &GtidPos) -> bool {
        other.entries.iter().all(|&(d, _, n)| {
            self.entries
                .binary_search_by_key(&d, |e| e.0)
                .is_ok_and(|i| self.entries[i].2 >= n)
        })
    }
}

impl fmt::Display for GtidPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (d, s, n)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}-{s}-{n}")?;
        }
        Ok(())
    }
}

/// Where the GTIDs of writes on one node go as their OK packets arrive: a session's
/// record, which passes each on to its user's (causal reads `global`). Shared by the
/// session and the backend connection that carries the write, so no path that reads
/// an OK can miss it. Every write is recorded whatever the mode; the mode decides
/// which record a read looks at.
#[derive(Debug, Default)]
pub struct Written {
    pos: Mutex<GtidPos>,
    /// A connection that cannot report GTIDs (a MySQL primary) may have written:
    /// no replica can be known to have applied it.
    unknown: std::sync::atomic::AtomicBool,
    /// The user's record, which sees every write of the session's too.
    user: Option<Arc<Written>>,
}

impl Written {
    /// A session's record on a node, passing its writes on to `user`'s.
    pub fn for_session(user: Arc<Written>) -> Written {
        Written {
            user: Some(user),
            ..Written::default()
        }
    }

    pub fn mark_unknown(&self) {
        self.unknown
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(u) = &self.user {
            u.mark_unknown();
        }
    }

    /// Writes were made that no GTID names: reads must use the primary.
    pub fn unknown(&self) -> bool {
        self.unknown.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn note(&self, gtid: &[u8]) {
        if let Some(p) = GtidPos::parse(gtid) {
            self.lock().merge(&p);
            if let Some(u) = &self.user {
                u.lock().merge(&p);
            }
        }
    }

    /// What a read must find applied.
    pub fn get(&self) -> GtidPos {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GtidPos> {
        self.pos.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every user's writes, by (user, data node name): causal reads in `global` mode,
/// where a user's sessions read each other's writes.
#[derive(Debug, Default)]
pub struct UserWrites {
    by_user: Mutex<HashMap<(String, String), Arc<Written>>>,
}

impl UserWrites {
    pub fn of(&self, user: &str, node: &str) -> Arc<Written> {
        let mut map = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
        map.entry((user.to_string(), node.to_string()))
            .or_default()
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_cover_by_domain() {
        let replica = GtidPos::parse(b"0-1-100,1-2-5").unwrap();
        assert!(replica.covers(&GtidPos::parse(b"0-1-100").unwrap()));
        assert!(replica.covers(&GtidPos::parse(b"0-3-99").unwrap()));
        assert!(!replica.covers(&GtidPos::parse(b"0-1-101").unwrap()));
        assert!(!replica.covers(&GtidPos::parse(b"2-1-1").unwrap()));
        assert!(replica.covers(&GtidPos::default()));
        let mut w = GtidPos::parse(b"1-2-9").unwrap();
        w.merge(&GtidPos::parse(b"0-1-3,1-2-4").unwrap());
        assert_eq!(w.to_string(), "0-1-3,1-2-9");
        assert_eq!(GtidPos::parse(b"").unwrap(), GtidPos::default());
        assert!(GtidPos::parse(b"0-1").is_none());
        assert!(GtidPos::parse(b"a-1-2").is_none());
    }
}
