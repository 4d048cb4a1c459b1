//! The wire codec on the hot path: framing a command, and following a small result
//! (what the proxy does for every point select).

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mysql_common::constants::StatusFlags;
use proxy::wire::generic::eof_payload;
use proxy::wire::packet::write_packet;
use proxy::wire::response::{Mode, Progress, ResponseTracker};

const QUERY: &[u8] = b"\x03SELECT c FROM sbtest1 WHERE id=4913";

/// A one-column, one-row text result as MariaDB sends it with DEPRECATE_EOF.
fn small_result() -> BytesMut {
    let mut out = BytesMut::new();
    let mut seq = 1;
    write_packet(&mut out, &mut seq, &[1]);
    write_packet(
        &mut out,
        &mut seq,
        b"\x03def\x06sbtest\x07sbtest1\x07sbtest1\x01c\x01c\x0c\x2d\x00\xe0\x01\x00\x00\xfe\x81\x40\x00\x00\x00",
    );
    let row = [&[120u8][..], &[b'7'; 120][..]].concat();
    write_packet(&mut out, &mut seq, &row);
    write_packet(
        &mut out,
        &mut seq,
        &eof_payload(true, StatusFlags::SERVER_STATUS_AUTOCOMMIT, 0),
    );
    out
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire");
    g.throughput(Throughput::Elements(1));
    let mut out = BytesMut::with_capacity(1024);
    g.bench_function("frame COM_QUERY", |b| {
        b.iter(|| {
            out.clear();
            let mut seq = 0;
            write_packet(&mut out, &mut seq, black_box(QUERY));
            black_box(&out);
        })
    });
    let mut result = small_result();
    g.bench_function("track small result (1 row)", |b| {
        b.iter(|| {
            let mut t = ResponseTracker::new(Mode::Query, true);
            let (n, p) = t.feed(black_box(&mut result)).unwrap();
            assert_eq!((n, p), (result.len(), Progress::Done));
        })
    });
    g.bench_function("round trip: frame query + track result", |b| {
        b.iter(|| {
            out.clear();
            let mut seq = 0;
            write_packet(&mut out, &mut seq, black_box(QUERY));
            let mut t = ResponseTracker::new(Mode::Query, true);
            black_box(t.feed(black_box(&mut result)).unwrap());
        })
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
