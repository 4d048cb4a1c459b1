//! Names of the XA transactions shardgate starts. A global id says which instance
//! started it and in which run, so that recovery takes only its own branches and
//! never confuses a transaction of this run with one of an earlier run.

/// At most this many bytes: MariaDB's gtrid holds 64, and the rest of the name
/// (`sg:`, run and counter, in hex) takes up to 29.
const MAX_INSTANCE_ID: usize = 32;

/// `server.instance_id` goes into every XA id: letters, digits, `_` and `-` only,
/// so that ids need no quoting and one instance's prefix is never another's.
pub fn check_instance_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_INSTANCE_ID {
        return Err(format!(
            "must be 1 to {MAX_INSTANCE_ID} characters (it names this shardgate in XA transaction ids)"
        ));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "`{id}`: use letters, digits, `_` and `-` only (it names this shardgate in XA transaction ids)"
        ));
    }
    Ok(())
}

/// The prefix of every global id an instance starts.
pub fn prefix(instance: &str) -> String {
    format!("sg:{instance}:")
}

/// A global id: the instance's prefix, the run (its number in the decision log), a
/// counter.
pub fn gtrid(prefix: &str, run: u64, n: u64) -> String {
    format!("{prefix}{run:x}:{n:x}")
}

/// The xid of one branch as SQL (`XA START <xid>`): hex literals, which hold any byte.
/// The branch qualifier is the node's name, cut to MariaDB's 64 bytes: it only tells
/// branches of one global transaction apart, and each node has one.
pub fn literal(gtrid: &str, bqual: &[u8]) -> String {
    let bqual = &bqual[..bqual.len().min(64)];
    format!("X'{}',X'{}'", hex(gtrid.as_bytes()), hex(bqual))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// One row of `XA RECOVER`: `formatID`, `gtrid_length`, `bqual_length`, `data`.
/// `None` for a row that is not a branch in the standard format (ours all are).
pub fn from_recover_row(row: &[Option<Vec<u8>>]) -> Option<(String, Vec<u8>)> {
    let num = |i: usize| -> Option<usize> {
        std::str::from_utf8(row.get(i)?.as_deref()?)
            .ok()?
            .parse()
            .ok()
    };
    if num(0)? != 1 {
        return None;
    }
    let (g, b) = (num(1)?, num(2)?);
    let data = row.get(3)?.as_deref()?;
    if data.len() != g + b {
        return None;
    }
    let gtrid = String::from_utf8(data[..g].to_vec()).ok()?;
    Some((gtrid, data[g..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_fit_mariadb_and_parse_back() {
        let p = prefix(&"a".repeat(MAX_INSTANCE_ID));
        let g = gtrid(&p, u32::MAX as u64, u64::MAX);
        assert!(g.len() <= 64, "{} bytes", g.len());
        assert_eq!(literal("sg:x:1:2", b"dn1"), "X'73673a783a313a32',X'646e31'");
        let row = |f: &str, gl: &str, bl: &str, d: &str| {
            vec![
                Some(f.as_bytes().to_vec()),
                Some(gl.as_bytes().to_vec()),
                Some(bl.as_bytes().to_vec()),
                Some(d.as_bytes().to_vec()),
            ]
        };
        assert_eq!(
            from_recover_row(&row("1", "8", "3", "sg:x:1:2dn1")),
            Some(("sg:x:1:2".to_string(), b"dn1".to_vec()))
        );
        assert_eq!(from_recover_row(&row("2", "8", "3", "sg:x:1:2dn1")), None);
        assert_eq!(from_recover_row(&row("1", "9", "3", "sg:x:1:2dn1")), None);
    }

    #[test]
    fn instance_ids_are_plain_names() {
        assert!(check_instance_id("shard-gate_1").is_ok());
        assert!(check_instance_id("").is_err());
        assert!(check_instance_id("a:b").is_err());
        assert!(check_instance_id(&"a".repeat(33)).is_err());
    }
}
