//! Benchmarks live in `benches/` (criterion: `cargo bench -p benches`), `sysbench/`
//! (`benches/sysbench/run`) and `memory/` (`benches/memory/slow-client`).
