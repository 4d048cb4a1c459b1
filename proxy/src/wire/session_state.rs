//! OK packets in the session-tracking format. shardgate asks primaries to report each
//! transaction's GTID in its OK packet (`session_track_system_variables = last_gtid`),
//! which needs CLIENT_SESSION_TRACK on the backend connection; clients are never
//! offered that capability, so every OK that carries session state is turned back
//! into the plain form before a client sees it, and the GTID is kept.
//!
//! With CLIENT_SESSION_TRACK and SERVER_SESSION_STATE_CHANGED, an OK is: header,
//! affected rows, insert id, status, warnings, info (length-encoded), state changes
//! (length-encoded: entries of a type byte and length-encoded data). Without the
//! flag it is the same bytes in both forms, so only flagged OKs are rewritten.

use bytes::{BufMut, BytesMut};
use mysql_common::constants::StatusFlags;

use super::{generic, lenenc};

/// Session-state entry type: a system variable changed (name, value).
const SYSTEM_VARIABLES: u8 = 0;

/// What a tracked OK said besides the plain OK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untracked {
    /// The OK as a client without session tracking reads it.
    pub plain: BytesMut,
    /// `last_gtid`, when the statement committed a transaction that was binlogged.
    pub last_gtid: Option<Vec<u8>>,
}

/// True when `payload` (an OK, or an end-of-rows OK starting 0xFE) carries session
/// state, so that it must go through [`untrack`] before a client sees it.
pub fn carries_state(payload: &[u8]) -> bool {
    generic::ok_status_at(payload)
        .and_then(|at| payload.get(at..at + 2))
        .is_some_and(|s| {
            u16::from_le_bytes([s[0], s[1]]) & StatusFlags::SERVER_SESSION_STATE_CHANGED.bits() != 0
        })
}

/// Splits a tracked OK into its plain form and the GTID it reports. `None` when the
/// packet does not carry session state or is malformed (then it is passed on as it is:
/// a client reads the same fields up to the info).
pub fn untrack(payload: &[u8]) -> Option<Untracked> {
    if !carries_state(payload) {
        return None;
    }
    let at = generic::ok_status_at(payload)?;
    let fixed_end = at + 4;
    let rest = payload.get(fixed_end..)?;
    let (info, info_len) = read_str(rest)?;
    let (state, _) = read_str(rest.get(info_len..)?)?;
    let mut plain = BytesMut::with_capacity(fixed_end + info.len() + 2);
    plain.put_slice(&payload[..fixed_end]);
    let status = u16::from_le_bytes([payload[at], payload[at + 1]])
        & !StatusFlags::SERVER_SESSION_STATE_CHANGED.bits();
    plain[at..at + 2].copy_from_slice(&status.to_le_bytes());
    if !info.is_empty() {
        lenenc::put_str(&mut plain, info);
    }
    Some(Untracked {
        plain,
        last_gtid: last_gtid(state),
    })
}

/// The value of `last_gtid` among the state changes, when it is there and not empty.
fn last_gtid(mut state: &[u8]) -> Option<Vec<u8>> {
    let mut found = None;
    while let Some((&kind, rest)) = state.split_first() {
        let (data, n) = read_str(rest)?;
        if kind == SYSTEM_VARIABLES {
            let (name, m) = read_str(data)?;
            let (value, _) = read_str(data.get(m..)?)?;
            if name.eq_ignore_ascii_case(b"last_gtid") && !value.is_empty() {
                found = Some(value.to_vec());
            }
        }
        state = rest.get(n..)?;
    }
    found
}

/// A length-encoded string and the bytes it took.
fn read_str(b: &[u8]) -> Option<(&[u8], usize)> {
    let (len, n) = lenenc::read_int(b)?;
    let end = n.checked_add(usize::try_from(len).ok()?)?;
    Some((b.get(n..end)?, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracked(info: &[u8], entries: &[(u8, &[u8], &[u8])], status: u16) -> BytesMut {
        let mut p = generic::ok_payload(1, 7, StatusFlags::from_bits_truncate(status), 2);
        lenenc::put_str(&mut p, info);
        let mut state = BytesMut::new();
        for (kind, name, value) in entries {
            let mut data = BytesMut::new();
            lenenc::put_str(&mut data, name);
            lenenc::put_str(&mut data, value);
            state.put_u8(*kind);
            lenenc::put_str(&mut state, &data);
        }
        lenenc::put_str(&mut p, &state);
        p
    }

    #[test]
    fn a_tracked_ok_becomes_plain_and_gives_its_gtid() {
        let flags = 0x4002; // STATE_CHANGED | AUTOCOMMIT
        let p = tracked(
            b"Rows matched: 1  Changed: 1  Warnings: 0",
            &[(0, b"last_gtid", b"0-1-42")],
            flags,
        );
        let u = untrack(&p).expect("tracked");
        assert_eq!(u.last_gtid.as_deref(), Some(&b"0-1-42"[..]));
        let mut expected = generic::ok_payload(1, 7, StatusFlags::from_bits_truncate(0x0002), 2);
        lenenc::put_str(&mut expected, b"Rows matched: 1  Changed: 1  Warnings: 0");
        assert_eq!(u.plain, expected);
    }

    #[test]
    fn empty_info_and_other_entries() {
        // A schema change (type 1) and another variable: no GTID, no info left.
        let p = tracked(b"", &[(1, b"x", b""), (0, b"autocommit", b"ON")], 0x4000);
        let u = untrack(&p).expect("tracked");
        assert_eq!(u.last_gtid, None);
        assert_eq!(u.plain, generic::ok_payload(1, 7, StatusFlags::empty(), 2));
        // An end-of-rows OK (0xFE) is read the same way.
        let mut eof = tracked(b"", &[(0, b"last_gtid", b"1-2-3")], 0x4000);
        eof[0] = 0xFE;
        let u = untrack(&eof).expect("tracked");
        assert_eq!(u.plain[0], 0xFE);
        assert_eq!(u.last_gtid.as_deref(), Some(&b"1-2-3"[..]));
    }

    #[test]
    fn untracked_or_malformed_packets_are_left_alone() {
        assert!(untrack(&generic::ok_payload(0, 0, StatusFlags::empty(), 0)).is_none());
        let mut cut = tracked(b"", &[(0, b"last_gtid", b"0-1-42")], 0x4000);
        cut.truncate(cut.len() - 3);
        assert!(untrack(&cut).is_none());
    }
}
