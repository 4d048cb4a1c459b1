//! The fuzzers' short seeded form, run by `cargo test`: every seed, every input a
//! fuzzer once crashed on (`fuzz/regressions/<target>/`), and seeded mutations of
//! them: flipped bits, cut and doubled tails, spliced seeds, random bytes.

use super::{seeds, TARGETS};

/// xorshift64*: the same inputs on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = [0, 0xFF, 0xFE, 0xFB, 0x7F, 0x01][rng.below(6)];
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 => {
                let other = &seeds[rng.below(seeds.len())];
                let at = rng.below(other.len() + 1);
                v.extend_from_slice(&other[at..]);
            }
            4 => {
                let at = rng.below(v.len() + 1);
                let tail = v[at..].to_vec();
                v.extend_from_slice(&tail);
            }
            _ => {
                let n = rng.below(64);
                v.extend((0..n).map(|_| rng.next() as u8));
            }
        }
    }
    v
}

/// Files a fuzzer left for a target (crashes kept as regression inputs).
fn regressions(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect()
}

#[test]
fn every_target_survives_its_seeds_regressions_and_mutations() {
    for (name, target) in TARGETS {
        let mut inputs = seeds(name);
        assert!(!inputs.is_empty(), "{name} has seeds");
        inputs.extend(regressions(name));
        for input in &inputs {
            target(input);
        }
        let mut rng = Rng(0x5EED_0000 ^ name.len() as u64);
        for _ in 0..2000 {
            target(&mutate(&mut rng, &inputs));
        }
    }
}

/// The seeds get somewhere: a fuzzer starting from them starts past the first
/// check of each reader.
#[test]
fn the_seeds_are_real_inputs() {
    let hello = &seeds("client_packets")[0];
    let mut reader = crate::wire::PacketReader::default();
    let mut mem = super::Mem::new(&hello[1..], 64);
    use futures_util::FutureExt;
    let p = reader
        .read(&mut mem, 1 << 20)
        .now_or_never()
        .and_then(|r| r.ok().flatten())
        .expect("a packet");
    let h = crate::wire::handshake::parse_client_hello(&p.payload).expect("a client hello");
    assert_eq!(h.user, "app");
    assert!(super::route::specs_len() >= 5, "the merge plans were made");
    assert!(seeds("tls_hello")[0].len() > 100, "a real ClientHello");
}
