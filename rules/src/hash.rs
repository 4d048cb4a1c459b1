//! Hash functions behind placement. Written out here, never taken from `std::hash`
//! (SipHash keys and `Hash` impls may change between Rust versions): a key must land on
//! the same shard forever. Golden vectors in `tests/golden.rs` pin every one.

/// MurmurHash3, x86 32-bit variant, as Austin Appleby published it (and as Guava's
/// `Hashing.murmur3_32(seed)` computes it over bytes).
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        h ^= mix_k(k, C1, C2);
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, b) in tail.iter().enumerate() {
            k |= (*b as u32) << (8 * i);
        }
        h ^= mix_k(k, C1, C2);
    }
    h ^= data.len() as u32;
    fmix32(h)
}

fn mix_k(k: u32, c1: u32, c2: u32) -> u32 {
    k.wrapping_mul(c1).rotate_left(15).wrapping_mul(c2)
}

fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// Guava's `hashUnencodedChars`: murmur3_32 over the string's UTF-16 code units in
/// little-endian order (what Java and so Mycat hash for a `String`).
pub fn murmur3_32_utf16(text: &str, seed: u32) -> u32 {
    let mut bytes = Vec::with_capacity(text.len() * 2);
    for unit in text.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    murmur3_32(&bytes, seed)
}

/// Java's `String.hashCode()`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units,
/// in wrapping 32-bit arithmetic.
pub fn java_string_hash(text: &str) -> i32 {
    text.encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(u as i32))
}

/// Java's `Long.hashCode(v)`: `(int)(v ^ (v >>> 32))`.
pub fn java_long_hash(v: i64) -> i32 {
    (v ^ ((v as u64) >> 32) as i64) as i32
}

/// A 64-bit key from bytes: two murmur3_32 passes with different seeds.
pub fn key64(data: &[u8]) -> u64 {
    ((murmur3_32(data, 0) as u64) << 32) | murmur3_32(data, 0x9747_b28c) as u64
}

/// Jump consistent hash (Lamping & Veach, 2014): moving from n to n+1 buckets moves
/// only 1/(n+1) of the keys. The float steps are IEEE-754, so results are identical
/// on every platform.
pub fn jump_consistent(mut key: u64, buckets: u32) -> u32 {
    let mut b: i64 = -1;
    let mut j: i64 = 0;
    while j < buckets as i64 {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_reference_vectors() {
        // Published test vectors for MurmurHash3_x86_32.
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_32(b"", 0xffff_ffff), 0x81f1_6f39);
        assert_eq!(murmur3_32(&[0, 0, 0, 0], 0), 0x2362_f9de);
        assert_eq!(murmur3_32(b"aaaa", 0x9747_b28c), 0x5a97_808a);
        assert_eq!(murmur3_32(b"a", 0x9747_b28c), 0x7fa0_9ea6);
        assert_eq!(murmur3_32(b"abc", 0), 0xb3dd_93fa);
        assert_eq!(murmur3_32(b"Hello, world!", 0x9747_b28c), 0x2488_4cba);
        assert_eq!(
            murmur3_32(b"The quick brown fox jumps over the lazy dog", 0x9747_b28c),
            0x2fa8_26cd
        );
    }

    #[test]
    fn java_hashes() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(java_long_hash(1), 1);
        assert_eq!(java_long_hash(-1), 0);
        assert_eq!(java_long_hash(1 << 32), 1);
    }

    #[test]
    fn jump_is_stable_and_monotone() {
        assert_eq!(jump_consistent(0, 1), 0);
        for key in [1u64, 42, 0xdead_beef, u64::MAX] {
            let mut prev = jump_consistent(key, 1);
            for n in 2..64 {
                let now = jump_consistent(key, n);
                assert!(now < n);
                // A key only ever moves to the new bucket.
                assert!(now == prev || now == n - 1);
                prev = now;
            }
        }
    }
}
