//! Length-encoded integers and strings, the protocol's variable-width fields.

use bytes::{BufMut, BytesMut};

pub fn put_int(out: &mut BytesMut, v: u64) {
    match v {
        0..=250 => out.put_u8(v as u8),
        251..=0xFFFF => {
            out.put_u8(0xFC);
            out.put_u16_le(v as u16);
        }
        0x1_0000..=0xFF_FFFF => {
            out.put_u8(0xFD);
            out.put_uint_le(v, 3);
        }
        _ => {
            out.put_u8(0xFE);
            out.put_u64_le(v);
        }
    }
}

pub fn put_str(out: &mut BytesMut, s: &[u8]) {
    put_int(out, s.len() as u64);
    out.put_slice(s);
}

/// Reads a length-encoded integer; returns it and the bytes it took, or `None` when
/// `buf` is too short or starts with a byte that is not an integer prefix.
pub fn read_int(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let width = match first {
        0..=250 => return Some((first as u64, 1)),
        0xFC => 2,
        0xFD => 3,
        0xFE => 8,
        _ => return None,
    };
    let bytes = buf.get(1..1 + width)?;
    let mut v = 0u64;
    for (i, b) in bytes.iter().enumerate() {
        v |= (*b as u64) << (8 * i);
    }
    Some((v, 1 + width))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_roundtrip_at_every_width() {
        for v in [
            0,
            250,
            251,
            0xFFFF,
            0x1_0000,
            0xFF_FFFF,
            0x100_0000,
            u64::MAX,
        ] {
            let mut b = BytesMut::new();
            put_int(&mut b, v);
            assert_eq!(read_int(&b), Some((v, b.len())));
        }
        assert_eq!(read_int(&[0xFC, 1]), None);
        assert_eq!(read_int(&[0xFF]), None);
    }
}
