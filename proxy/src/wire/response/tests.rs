use super::*;
use crate::wire::packet::write_packet;
use bytes::BytesMut;

fn frame(packets: &[&[u8]]) -> BytesMut {
    let mut out = BytesMut::new();
    let mut seq = 1;
    for p in packets {
        write_packet(&mut out, &mut seq, p);
    }
    out
}

fn ok(status: u16) -> Vec<u8> {
    generic::ok_payload(0, 0, StatusFlags::from_bits_truncate(status), 0).to_vec()
}

fn eof(deprecate: bool, status: u16) -> Vec<u8> {
    generic::eof_payload(deprecate, StatusFlags::from_bits_truncate(status), 0).to_vec()
}

/// What the tracker lets through of `input`, fed `step` bytes at a time.
fn passed(t: &mut ResponseTracker, input: &[u8], step: usize) -> Vec<u8> {
    let (mut buf, mut out) = (BytesMut::new(), Vec::new());
    let mut chunks = input.chunks(step);
    loop {
        let (n, p) = t.feed(&mut buf).unwrap();
        out.extend_from_slice(&buf.split_to(n));
        match p {
            Progress::Done => return out,
            _ => buf.extend_from_slice(chunks.next().expect("more input")),
        }
    }
}

/// A tracked OK (session state with a GTID) ending a result set and a plain OK
/// write: fed in any chunking, the client gets plain OKs and the GTID is kept.
#[test]
fn tracked_oks_reach_the_client_plain() {
    let tracked = |first: u8| {
        let mut p = generic::ok_payload(3, 0, StatusFlags::from_bits_truncate(0x4002), 0);
        p[0] = first;
        lenenc::put_str(&mut p, b"");
        let mut data = BytesMut::new();
        lenenc::put_str(&mut data, b"last_gtid");
        lenenc::put_str(&mut data, b"0-1-77");
        let mut state = BytesMut::from(&[0u8][..]);
        lenenc::put_str(&mut state, &data);
        lenenc::put_str(&mut p, &state);
        p.to_vec()
    };
    let plain = |first: u8| {
        let mut p = generic::ok_payload(3, 0, StatusFlags::from_bits_truncate(0x0002), 0);
        p[0] = first;
        p.to_vec()
    };
    let input = frame(&[&[1], &[3, b'd', b'e', b'f'], &[1, b'x'], &tracked(0xFE)]);
    let expected = frame(&[&[1], &[3, b'd', b'e', b'f'], &[1, b'x'], &plain(0xFE)]);
    for step in [1, 3, 7, input.len()] {
        let mut t = ResponseTracker::new(Mode::Query, true);
        t.untrack = true;
        assert_eq!(
            passed(&mut t, &input, step),
            expected.to_vec(),
            "step {step}"
        );
        assert_eq!(t.summary.gtids, [b"0-1-77".to_vec()]);
    }
    // Without tracking on the connection the bytes pass as they are.
    let mut t = ResponseTracker::new(Mode::Query, true);
    let mut buf = frame(&[&tracked(0x00)]);
    let before = buf.clone();
    assert_eq!(t.feed(&mut buf).unwrap(), (before.len(), Progress::Done));
    assert_eq!(buf, before);
    // A batch: a tracked OK that says more results follow, then a result set, all in
    // one buffer; the client sees IN_TRANS added to both statuses.
    let more = |tracked_form: bool| {
        let flags = 0x0002 | 0x0008 | if tracked_form { 0x4000 } else { 0 };
        let mut p = generic::ok_payload(1, 0, StatusFlags::from_bits_truncate(flags), 0);
        if tracked_form {
            let full = tracked(0x00);
            p.extend_from_slice(&full[p.len()..]);
        }
        p.to_vec()
    };
    let added = StatusFlags::SERVER_STATUS_IN_TRANS;
    let with = |p: &[u8], at: usize| {
        let mut p = p.to_vec();
        let f = u16::from_le_bytes([p[at], p[at + 1]]) | added.bits();
        p[at..at + 2].copy_from_slice(&f.to_le_bytes());
        p
    };
    for step in [2, 5, 1000] {
        let input = frame(&[
            &more(true),
            &[1],
            &[3, b'd', b'e', b'f'],
            &[1, b'y'],
            &plain(0xFE),
        ]);
        let expected = frame(&[
            &with(&more(false), 3),
            &[1],
            &[3, b'd', b'e', b'f'],
            &[1, b'y'],
            &with(&plain(0xFE), 3),
        ]);
        let mut t = ResponseTracker::new(Mode::Query, true);
        t.untrack = true;
        t.add_status = added;
        assert_eq!(
            passed(&mut t, &input, step),
            expected.to_vec(),
            "step {step}"
        );
        assert_eq!(t.summary.gtids, [b"0-1-77".to_vec()]);
    }
    // A tracked OK larger than anything read in one piece (a long info string):
    // still rewritten whole.
    let long = "x".repeat(40_000);
    let mut big = generic::ok_payload(1, 0, StatusFlags::from_bits_truncate(0x4002), 0);
    lenenc::put_str(&mut big, long.as_bytes());
    lenenc::put_str(&mut big, b"");
    let mut want = generic::ok_payload(1, 0, StatusFlags::from_bits_truncate(0x0002), 0);
    lenenc::put_str(&mut want, long.as_bytes());
    let mut t = ResponseTracker::new(Mode::Query, true);
    t.untrack = true;
    let out = passed(&mut t, &frame(&[&big]), 4096);
    assert_eq!(out, frame(&[&want]).to_vec());
    // An OK write alone.
    let mut t = ResponseTracker::new(Mode::Query, true);
    t.untrack = true;
    let mut buf = frame(&[&tracked(0x00)]);
    let (n, p) = t.feed(&mut buf).unwrap();
    assert_eq!((n, p), (buf.len(), Progress::Done));
    assert_eq!(buf, frame(&[&plain(0x00)]));
}

/// Feeds `bytes` in chunks of `step` and checks the tracker ends exactly at the end.
fn run(mode: Mode, deprecate: bool, bytes: &[u8], step: usize) -> Summary {
    let mut t = ResponseTracker::new(mode, deprecate);
    let mut buf = BytesMut::new();
    let mut passed = 0;
    let mut input = bytes.chunks(step);
    loop {
        let (n, p) = t.feed(&mut buf).unwrap();
        passed += n;
        bytes::Buf::advance(&mut buf, n);
        match p {
            Progress::Done => break,
            Progress::LocalInfile => panic!("unexpected infile"),
            Progress::NeedMore => match input.next() {
                Some(c) => buf.extend_from_slice(c),
                None => panic!(
                    "tracker wanted more after {passed} of {} bytes",
                    bytes.len()
                ),
            },
        }
    }
    assert_eq!(passed, bytes.len());
    assert!(buf.is_empty());
    t.summary
}

#[test]
fn result_set_with_and_without_eof_in_every_chunking() {
    for deprecate in [false, true] {
        let col =
            b"\x03def\x00\x01t\x01t\x01a\x01a\x0c\x3f\x00\x0b\x00\x00\x00\x03\x00\x00\x00\x00\x00";
        let mut packets: Vec<Vec<u8>> = vec![vec![2], col.to_vec(), col.to_vec()];
        if !deprecate {
            packets.push(eof(false, 2));
        }
        packets.push(b"\x011\x012".to_vec());
        packets.push(b"\xfb\x012".to_vec());
        packets.push(eof(deprecate, 2));
        let refs: Vec<&[u8]> = packets.iter().map(|p| &p[..]).collect();
        let bytes = frame(&refs);
        for step in [1, 2, 3, 5, 7, 64, 4096] {
            let s = run(Mode::Query, deprecate, &bytes, step);
            assert_eq!(s.result_sets, 1);
            assert_eq!(s.status, Some(StatusFlags::SERVER_STATUS_AUTOCOMMIT));
        }
    }
}

#[test]
fn multiple_results_and_errors() {
    let more = 2 | 8;
    let bytes = frame(&[
        &ok(more),
        &[1],
        b"\x03def",
        &eof(false, more),
        b"\x01x",
        &eof(false, 2),
    ]);
    let s = run(Mode::Query, false, &bytes, 3);
    assert_eq!(s.result_sets, 1);
    let err = generic::err_payload(&crate::wire::codes::SqlError::no_database());
    let bytes = frame(&[&ok(more), &err]);
    assert_eq!(run(Mode::Query, false, &bytes, 1).error, Some(1046));
    let bytes = frame(&[&[1], b"\x03def", b"\x01x", &err]);
    assert_eq!(run(Mode::Query, true, &bytes, 2).error, Some(1046));
}

#[test]
fn rows_larger_than_one_packet_stream_through() {
    let big = vec![0xFCu8; 2 * MAX_PAYLOAD + 10];
    let bytes = frame(&[&[1], b"\x03def", &big, &eof(true, 2)]);
    run(Mode::Query, true, &bytes, 1 << 20);
    // A row that is exactly one full packet is followed by an empty continuation.
    let exact = vec![7u8; MAX_PAYLOAD];
    let bytes = frame(&[&[1], b"\x03def", &exact, &eof(true, 2)]);
    run(Mode::Query, true, &bytes, 1 << 20);
}

#[test]
fn prepare_and_single() {
    let prep_ok = b"\x00\x01\x00\x00\x00\x01\x00\x02\x00\x00\x00\x00";
    let bytes = frame(&[prep_ok, b"p1", b"p2", &eof(false, 2), b"c1", &eof(false, 2)]);
    run(Mode::Prepare, false, &bytes, 1);
    let bytes = frame(&[prep_ok, b"p1", b"p2", b"c1"]);
    run(Mode::Prepare, true, &bytes, 1);
    let bytes = frame(&[b"Uptime: 5  Threads: 1"]);
    run(Mode::Single, true, &bytes, 4);
}

#[test]
fn garbage_column_count_is_an_error() {
    let mut t = ResponseTracker::new(Mode::Query, true);
    assert!(t.feed(&mut frame(&[&[0xFC]])).is_err());
}

#[test]
fn adds_status_flags_to_what_the_client_sees_only() {
    let add = StatusFlags::SERVER_STATUS_IN_TRANS;
    for deprecate in [false, true] {
        let mut packets: Vec<Vec<u8>> = vec![vec![1], b"coldef".to_vec()];
        if !deprecate {
            packets.push(eof(false, 2));
        }
        packets.push(vec![1, b'x']);
        packets.push(eof(deprecate, 2));
        let refs: Vec<&[u8]> = packets.iter().map(Vec::as_slice).collect();
        let mut buf = frame(&refs);
        let mut t = ResponseTracker::new(Mode::Query, deprecate);
        t.add_status = add;
        let (n, p) = t.feed(&mut buf).unwrap();
        assert_eq!((n, p), (buf.len(), Progress::Done));
        assert_eq!(
            t.summary.status,
            Some(StatusFlags::SERVER_STATUS_AUTOCOMMIT)
        );
        let last = &buf[buf.len() - packets.last().unwrap().len()..];
        let status = if deprecate {
            generic::parse_ok(last).map(|o| o.status)
        } else {
            generic::parse_eof(last).map(|(_, s)| s)
        };
        assert_eq!(status, Some(StatusFlags::SERVER_STATUS_AUTOCOMMIT | add));
    }
    let mut ok = frame(&[&ok(2)]);
    let mut t = ResponseTracker::new(Mode::Query, false);
    t.add_status = add;
    t.feed(&mut ok).unwrap();
    assert_eq!(
        generic::parse_ok(&ok[4..]).map(|o| o.status),
        Some(StatusFlags::SERVER_STATUS_AUTOCOMMIT | add)
    );
}

/// Wherever a backend stops, the client holds whole rows (an ERR with the next
/// sequence id can end the answer) unless a row is larger than `WHOLE`.
#[test]
fn a_cut_answer_leaves_the_client_at_a_row_boundary() {
    let big = vec![b'b'; WHOLE + 100];
    let rows: [&[u8]; 5] = [
        &[1],
        &[3, b'd', b'e', b'f'],
        &[2, b'a', b'b'],
        &[1, b'c'],
        &big,
    ];
    let input = frame(&rows);
    // The big row's start: everything before it is whole packets.
    let before_big = input.len() - (HEADER + big.len());
    for cut in 1..input.len() {
        let mut t = ResponseTracker::new(Mode::Query, true);
        let mut buf = BytesMut::from(&input[..cut]);
        let (n, progress) = t.feed(&mut buf).unwrap();
        assert_eq!(progress, Progress::NeedMore);
        let reached = t.reached(n > 0);
        if n == 0 {
            assert_eq!(reached, Reached::Nothing, "cut at {cut}");
        } else if n <= before_big {
            // Only whole packets went: the column count and definitions, then rows.
            let mut seqs = 0;
            let mut pos = 0;
            while pos < n {
                pos += HEADER + payload_len(&input[pos..]);
                seqs += 1;
            }
            assert_eq!(pos, n, "cut at {cut}: a packet passed in part");
            let expected = match seqs {
                // Column count alone, or with the definition: no ERR may stand there.
                1 => Reached::Torn,
                // No OK or EOF came before the rows.
                _ => Reached::Resumable {
                    seq: seqs as u8 + 1,
                    status: None,
                },
            };
            assert_eq!(reached, expected, "cut at {cut}");
        } else {
            // Inside the big row, streamed in pieces.
            assert_eq!(reached, Reached::Torn, "cut at {cut}");
        }
    }
}
