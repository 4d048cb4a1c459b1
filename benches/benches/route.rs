//! Statement classification: the per-statement routing cost today (no plan cache yet).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};

fn classify(c: &mut Criterion) {
    let mut g = c.benchmark_group("route");
    for (name, sql) in [
        ("point select", "SELECT c FROM sbtest1 WHERE id=4913"),
        ("update", "UPDATE sbtest3 SET k=k+1 WHERE id=5021"),
        (
            "hinted select",
            "/* shardgate:primary */ SELECT c FROM sbtest1 WHERE id=4913",
        ),
        (
            "range select",
            "SELECT DISTINCT c FROM sbtest2 WHERE id BETWEEN 4111 AND 4210 ORDER BY c",
        ),
    ] {
        g.bench_function(format!("classify {name}"), |b| {
            b.iter(|| black_box(router::classify(black_box(sql.as_bytes())).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, classify);
criterion_main!(benches);
