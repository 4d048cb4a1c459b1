//! Point lookups of every shard algorithm (value → shard), integer and string keys.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use rules::{RuleConfig, Value};

const RULES: &[(&str, &str)] = &[
    ("mod", "algorithm = \"mod\"\nshards = 16"),
    ("hash_mod", "algorithm = \"hash_mod\"\nshards = 16"),
    ("jump", "algorithm = \"jump\"\nshards = 16"),
    ("murmur (Mycat)", "algorithm = \"murmur\"\nshards = 16"),
    ("range", "algorithm = \"range\"\nboundaries = [0, 1000, 10000, 100000, 1000000, 10000000, 100000000]"),
    ("list", "algorithm = \"list\"\nshards = 4\ndefault = 3\n[values]\n\"1\" = 0\n\"2\" = 1\n\"3\" = 2\n\"12345\" = 1"),
    ("ss_mod", "algorithm = \"ss_mod\"\nsharding_count = 16"),
    ("ss_hash_mod", "algorithm = \"ss_hash_mod\"\nsharding_count = 16"),
    (
        "date (month, epoch seconds)",
        "algorithm = \"date\"\nunit = \"month\"\nstart = \"2020-01-01\"\ntime_zone = \"Europe/Berlin\"\nshards = 120\nintegers = \"epoch_seconds\"",
    ),
];

fn point_lookups(c: &mut Criterion) {
    let mut g = c.benchmark_group("shard");
    let int_key = Value::Int(12_345);
    let epoch_key = Value::Int(1_718_000_000);
    let text_key = Value::text("user_0012345");
    let date_key = Value::text("2024-06-10 08:30:00");
    for (name, spec) in RULES {
        let cfg: RuleConfig = toml::from_str(spec).unwrap();
        let rule = cfg.build("bench").unwrap();
        let key = if name.starts_with("date") {
            &epoch_key
        } else {
            &int_key
        };
        g.bench_function(format!("{name}: integer key"), |b| {
            b.iter(|| black_box(rule.shard_of(black_box(key)).unwrap()))
        });
        let text = if name.starts_with("date") {
            &date_key
        } else {
            &text_key
        };
        if rule.shard_of(text).is_ok() {
            g.bench_function(format!("{name}: string key"), |b| {
                b.iter(|| black_box(rule.shard_of(black_box(text)).unwrap()))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, point_lookups);
criterion_main!(benches);
