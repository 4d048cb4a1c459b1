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

criterion_group!(benches, classify, plan, long);
criterion_main!(benches);

const SHARDED: &str = r#"
[nodes.dn1]
primary = "127.0.0.1:3306"
user = "u"
[nodes.dn2]
primary = "127.0.0.1:3307"
user = "u"
[rules.by_id]
algorithm = "mod"
shards = 2
[schemas.sbtest]
node = "dn1"
[schemas.sbtest.tables.sbtest1]
kind = "sharded"
column = "id"
rule = "by_id"
nodes = ["dn1", "dn2"]
"#;

fn plan(c: &mut Criterion) {
    let cfg: rules::ClusterConfig = toml::from_str(SHARDED).unwrap();
    let rt = rules::Runtime::build(&cfg).unwrap();
    let schema = &rt.schemas["sbtest"];
    let mut g = c.benchmark_group("route");
    for (name, sql) in [
        ("plan sharded point select (uncached)", "SELECT c FROM sbtest1 WHERE id=4913"),
        ("plan sharded 3-row insert (uncached)", "INSERT INTO sbtest1 (id, k, c, pad) VALUES (1, 2, 'a', 'b'), (2, 3, 'c', 'd'), (3, 4, 'e', 'f')"),
        ("plan statement naming no configured table", "SELECT c FROM other WHERE id=4913"),
    ] {
        g.bench_function(name, |b| b.iter(|| black_box(router::plan(black_box(sql.as_bytes()), schema, &rt, router::reading::Reading::DEFAULT).unwrap())));
    }
    let rt = std::sync::Arc::new(rt);
    let cache = router::PlanCache::new(1000);
    let sql = b"SELECT c FROM sbtest1 WHERE id=4913";
    cache
        .plan(
            sql,
            &rt.schemas["sbtest"],
            &rt,
            router::reading::Reading::DEFAULT,
        )
        .unwrap();
    // A prepared point SELECT: each EXECUTE is parsed, its parameters decoded and
    // routed, with no SQL looked at.
    let prepared = router::plan::prepare(
        b"SELECT c FROM sbtest1 WHERE id=?",
        &rt.schemas["sbtest"],
        &rt,
        router::reading::Reading::DEFAULT,
    )
    .unwrap()
    .unwrap();
    let mut execute = vec![0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0x08, 0];
    execute.extend_from_slice(&4913i64.to_le_bytes());
    g.bench_function("route prepared EXECUTE (point select)", |b| {
        b.iter(|| {
            let exec = proxy::wire::stmt::Execute::parse(black_box(&execute), 1).unwrap();
            let types = exec.types.unwrap();
            let params =
                proxy::wire::stmt::decode_params(1, exec.nulls, types, exec.values, |_| false)
                    .unwrap();
            let values: Vec<rules::Value> = params
                .iter()
                .map(|p| match p {
                    proxy::wire::stmt::Param::Int(i) => rules::Value::Int(*i),
                    _ => rules::Value::Null,
                })
                .collect();
            black_box(prepared.targets(&values).unwrap().len())
        })
    });
    // sysbench's text mode: a new literal every time, so the exact-text cache never
    // hits; the template (literals lifted out) does.
    let texts: Vec<String> = (0..1024)
        .map(|i| format!("SELECT c FROM sbtest1 WHERE id={}", 7919 * i))
        .collect();
    let mut i = 0usize;
    g.bench_function(
        "plan sharded point select, new literal each time (template)",
        |b| {
            b.iter(|| {
                i = (i + 1) % texts.len();
                black_box(
                    cache
                        .plan(
                            black_box(texts[i].as_bytes()),
                            &rt.schemas["sbtest"],
                            &rt,
                            router::reading::Reading::DEFAULT,
                        )
                        .unwrap(),
                )
            })
        },
    );
    g.bench_function("plan sharded point select (cached)", |b| {
        b.iter(|| {
            black_box(
                cache
                    .plan(
                        black_box(sql),
                        &rt.schemas["sbtest"],
                        &rt,
                        router::reading::Reading::DEFAULT,
                    )
                    .unwrap(),
            )
        })
    });
    g.finish();
}

/// Planning is linear in the statement's size: the longest IN lists a client can send
/// (65,535 parameters, a 200,000-value text list) plan in milliseconds.
fn long(c: &mut Criterion) {
    let cfg: rules::ClusterConfig = toml::from_str(SHARDED).unwrap();
    let rt = rules::Runtime::build(&cfg).unwrap();
    let schema = &rt.schemas["sbtest"];
    let reading = router::reading::Reading::DEFAULT;
    let mut g = c.benchmark_group("route long");
    g.sample_size(10);
    let params = format!(
        "SELECT c FROM sbtest1 WHERE id IN ({})",
        vec!["?"; 65_535].join(", ")
    );
    g.bench_function("prepare IN (? x 65,535)", |b| {
        b.iter(|| {
            black_box(router::plan::prepare(params.as_bytes(), schema, &rt, reading).unwrap())
        })
    });
    let values: Vec<String> = (0..200_000).map(|i| i.to_string()).collect();
    let text = format!("SELECT c FROM sbtest1 WHERE id IN ({})", values.join(", "));
    g.bench_function("plan text IN (200,000 values)", |b| {
        b.iter(|| black_box(router::plan(text.as_bytes(), schema, &rt, reading).unwrap()))
    });
    g.finish();
}
