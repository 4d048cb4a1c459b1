//! What a backend sends: answers streamed through the response tracker in every
//! mode and chunking, packets read whole and classified, the OK/ERR/EOF and
//! column-definition parsers, session-state rewriting, and text rows rewritten as
//! binary ones.

use bytes::{Buf, Bytes, BytesMut};
use futures_util::FutureExt;
use mysql_common::constants::StatusFlags;
use tokio::io::AsyncWriteExt;

use super::{steer, Mem};
use crate::backend::results::ResultReader;
use crate::wire::binary_rows::BinaryRows;
use crate::wire::packet::write_packet;
use crate::wire::response::{Mode, Progress, Reached, ResponseTracker};
use crate::wire::{coldef, generic, handshake, session_state, stmt, PacketReader};

const MODES: [Mode; 5] = [
    Mode::Query,
    Mode::Prepare,
    Mode::Fetch,
    Mode::FieldList,
    Mode::Single,
];

pub fn backend_answer(data: &[u8]) {
    let (ctl, input) = steer(data);
    let step = 1 + usize::from(ctl % 32) * 7;
    for mode in MODES {
        for deprecate_eof in [true, false] {
            track(input, step, mode, deprecate_eof, ctl & 0x80 != 0);
        }
    }
    let mut reader = PacketReader::default();
    let mut mem = Mem::new(input, step);
    let (mut classic, mut modern) = (ResultReader::default(), ResultReader::default());
    let mut payloads = Vec::new();
    for _ in 0..256 {
        let Some(Ok(Some(p))) = reader.read(&mut mem, 1 << 20).now_or_never() else {
            break;
        };
        packet(&p.payload);
        let _ = classic.classify(p.payload.clone(), false);
        let _ = modern.classify(p.payload.clone(), true);
        payloads.push(p.payload);
    }
    // The same bytes as a text answer a binary execution's client gets rewritten.
    for deprecate_eof in [true, false] {
        let mut rows = BinaryRows::new(Mem::new(&[], 1), deprecate_eof);
        let _ = rows.write_all(input).now_or_never();
        let _ = rows.flush().now_or_never();
    }
}

/// Feeds `input` `step` bytes at a time, as `BackendConn::forward` does, checking
/// that the tracker never claims more bytes than it was given, and that where it
/// says an ERR may end the answer, the client holds whole packets and the ERR's
/// sequence id follows the last one.
fn track(input: &[u8], step: usize, mode: Mode, deprecate_eof: bool, untrack: bool) {
    let mut t = ResponseTracker::new(mode, deprecate_eof);
    t.untrack = untrack;
    t.add_status = StatusFlags::SERVER_STATUS_IN_TRANS;
    let mut buf = BytesMut::new();
    let mut passed = Vec::new();
    let mut chunks = input.chunks(step);
    loop {
        let before = buf.len();
        let Ok((n, progress)) = t.feed(&mut buf) else {
            return;
        };
        assert!(
            n <= buf.len() && buf.len() <= before.max(n),
            "the tracker passed bytes it was not given"
        );
        passed.extend_from_slice(&buf[..n]);
        buf.advance(n);
        if let Reached::Resumable { seq, .. } = t.reached(!passed.is_empty()) {
            assert_eq!(
                whole_packets(&passed),
                Some(seq),
                "an ERR offered inside a packet"
            );
        }
        match progress {
            Progress::NeedMore => match chunks.next() {
                Some(c) => buf.extend_from_slice(c),
                None => return,
            },
            Progress::Done | Progress::LocalInfile => return,
        }
    }
}

/// The sequence id after the last packet, when `bytes` are whole packets.
fn whole_packets(bytes: &[u8]) -> Option<u8> {
    let (mut pos, mut next) = (0, None);
    while pos < bytes.len() {
        let header = bytes.get(pos..pos + 4)?;
        pos += 4 + crate::wire::packet::payload_len(header);
        next = Some(header[3].wrapping_add(1));
    }
    (pos == bytes.len()).then_some(next).flatten()
}

/// Every parse a backend packet may meet.
fn packet(p: &[u8]) {
    let _ = generic::parse_ok(p);
    let _ = generic::parse_err(p);
    let _ = generic::parse_eof(p);
    let _ = generic::ok_status_at(p);
    let _ = session_state::carries_state(p);
    let _ = session_state::untrack(p);
    let _ = coldef::shape(p);
    let _ = crate::merge::ColumnInfo::parse(p);
    let _ = stmt::PrepareOk::parse(p);
    let _ = handshake::parse_server_greeting(p);
    for columns in [1, 3, 9] {
        let _ = crate::merge::Row::parse(Bytes::copy_from_slice(p), columns);
    }
}

pub fn seeds() -> Vec<Vec<u8>> {
    let framed = |payloads: &[&[u8]]| {
        let mut out = BytesMut::new();
        let mut seq = 1;
        for p in payloads {
            write_packet(&mut out, &mut seq, p);
        }
        let mut v = vec![0x05];
        v.extend_from_slice(&out);
        v
    };
    let ok = generic::ok_payload(3, 7, StatusFlags::SERVER_STATUS_AUTOCOMMIT, 1).to_vec();
    let end = generic::eof_payload(true, StatusFlags::SERVER_STATUS_AUTOCOMMIT, 0).to_vec();
    let eof = generic::eof_payload(false, StatusFlags::SERVER_MORE_RESULTS_EXISTS, 2).to_vec();
    let def = b"\x03def\x04shop\x06orders\x06orders\x02id\x02id\x0c\x3f\x00\x0b\x00\x00\x00\x08\x03\x00\x00\x00\x00".to_vec();
    let err = b"\xff\x15\x04#28000Access denied".to_vec();
    vec![
        framed(&[&ok]),
        framed(&[&err]),
        framed(&[b"\x01", &def, b"\x0242", b"\xfb", &end]),
        framed(&[b"\x01", &def, &eof, b"\x011", &eof, &ok]),
        framed(&[b"\x00\x01\x00\x00\x00\x01\x00\x01\x00\x00", &def, &def]),
    ]
}
