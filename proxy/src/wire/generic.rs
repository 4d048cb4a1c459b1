//! OK, ERR and EOF packets: encoding the ones shardgate answers itself, and reading the
//! status a backend put in its own.

use bytes::{BufMut, BytesMut};
use mysql_common::constants::StatusFlags;

use super::codes::SqlError;
use super::lenenc;

pub const OK: u8 = 0x00;
pub const EOF: u8 = 0xFE;
pub const ERR: u8 = 0xFF;
pub const LOCAL_INFILE: u8 = 0xFB;

pub fn ok_payload(
    affected: u64,
    last_insert_id: u64,
    status: StatusFlags,
    warnings: u16,
) -> BytesMut {
    let mut b = BytesMut::with_capacity(16);
    b.put_u8(OK);
    lenenc::put_int(&mut b, affected);
    lenenc::put_int(&mut b, last_insert_id);
    b.put_u16_le(status.bits());
    b.put_u16_le(warnings);
    b
}

/// Whether a packet of `len` bytes starting 0xFE among a result's rows ends them (EOF,
/// or an OK starting 0xFE when EOF is deprecated) rather than being a row that starts
/// with 0xFE: such a row is at least 9 bytes (an 8-byte length follows the 0xFE), and
/// with EOF deprecated the end marker is a short OK, never a full-sized packet.
pub fn ends_rows(len: usize, deprecate_eof: bool) -> bool {
    if deprecate_eof {
        len < 0xFF_FFFF
    } else {
        len < 9
    }
}

/// The end-of-rows marker: a classic EOF, or with CLIENT_DEPRECATE_EOF an OK with 0xFE.
pub fn eof_payload(deprecate_eof: bool, status: StatusFlags, warnings: u16) -> BytesMut {
    if deprecate_eof {
        let mut b = ok_payload(0, 0, status, warnings);
        b[0] = EOF;
        b
    } else {
        let mut b = BytesMut::with_capacity(5);
        b.put_u8(EOF);
        b.put_u16_le(warnings);
        b.put_u16_le(status.bits());
        b
    }
}

pub fn err_payload(e: &SqlError) -> BytesMut {
    let mut b = BytesMut::with_capacity(9 + e.message.len());
    b.put_u8(ERR);
    b.put_u16_le(e.code);
    b.put_u8(b'#');
    let mut state = [b'H', b'Y', b'0', b'0', b'0'];
    for (d, s) in state.iter_mut().zip(e.state.bytes()) {
        *d = s;
    }
    b.put_slice(&state);
    b.put_slice(e.message.as_bytes());
    b
}

/// Reads an ERR packet's code, state and message (protocol 4.1 form).
pub fn parse_err(payload: &[u8]) -> Option<(u16, String, String)> {
    if payload.first() != Some(&ERR) || payload.len() < 3 {
        return None;
    }
    let code = u16::from_le_bytes([payload[1], payload[2]]);
    let rest = &payload[3..];
    let (state, msg) = match rest.first() {
        Some(b'#') if rest.len() >= 6 => (
            String::from_utf8_lossy(&rest[1..6]).into_owned(),
            &rest[6..],
        ),
        _ => ("HY000".to_string(), rest),
    };
    Some((code, state, String::from_utf8_lossy(msg).into_owned()))
}

/// What an OK packet (or a deprecate-EOF OK) says. `None` when truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OkInfo {
    pub affected: u64,
    pub last_insert_id: u64,
    pub status: StatusFlags,
    pub warnings: u16,
}

pub fn parse_ok(payload: &[u8]) -> Option<OkInfo> {
    let (affected, n) = lenenc::read_int(payload.get(1..)?)?;
    let (last_insert_id, _) = lenenc::read_int(payload.get(1 + n..)?)?;
    let pos = ok_status_at(payload)?;
    let s = payload.get(pos..pos + 4)?;
    Some(OkInfo {
        affected,
        last_insert_id,
        status: StatusFlags::from_bits_truncate(u16::from_le_bytes([s[0], s[1]])),
        warnings: u16::from_le_bytes([s[2], s[3]]),
    })
}

/// Where an OK packet's status flags start.
pub fn ok_status_at(payload: &[u8]) -> Option<usize> {
    let (_, a) = lenenc::read_int(payload.get(1..)?)?;
    let (_, b) = lenenc::read_int(payload.get(1 + a..)?)?;
    let at = 1 + a + b;
    (payload.len() >= at + 2).then_some(at)
}

/// Where a classic EOF packet's status flags start.
pub const EOF_STATUS_AT: usize = 3;

/// Status and warnings of a classic EOF packet.
pub fn parse_eof(payload: &[u8]) -> Option<(u16, StatusFlags)> {
    let s = payload.get(1..5)?;
    Some((
        u16::from_le_bytes([s[0], s[1]]),
        StatusFlags::from_bits_truncate(u16::from_le_bytes([s[2], s[3]])),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_roundtrip() {
        let st = StatusFlags::SERVER_STATUS_AUTOCOMMIT | StatusFlags::SERVER_STATUS_IN_TRANS;
        let p = ok_payload(300, 70000, st, 2);
        assert_eq!(
            parse_ok(&p),
            Some(OkInfo {
                affected: 300,
                last_insert_id: 70000,
                status: st,
                warnings: 2
            })
        );
        let e = eof_payload(true, st, 1);
        assert_eq!(e[0], EOF);
        assert_eq!(parse_ok(&e).unwrap().status, st);
        let e = eof_payload(false, st, 1);
        assert_eq!(parse_eof(&e), Some((1, st)));
    }

    #[test]
    fn err_roundtrip() {
        let p = err_payload(&SqlError::unknown_database("x"));
        assert_eq!(
            parse_err(&p),
            Some((1049, "42000".into(), "Unknown database 'x'".into()))
        );
    }
}
