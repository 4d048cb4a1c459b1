//! Text result sets that shardgate answers itself (e.g. `SHOW DATABASES` of logical
//! schemas). Columns are VARCHAR utf8mb4 or BIGINT, like MySQL's own for such answers.

use bytes::{BufMut, BytesMut};
use mysql_common::constants::{ColumnFlags, ColumnType, StatusFlags};

use super::generic;
use super::lenenc;
use super::packet::write_packet;

#[derive(Debug, Clone)]
pub struct LocalColumn {
    pub name: String,
    pub kind: ColumnType,
}

impl LocalColumn {
    pub fn text(name: &str) -> Self {
        LocalColumn {
            name: name.to_string(),
            kind: ColumnType::MYSQL_TYPE_VAR_STRING,
        }
    }

    pub fn integer(name: &str) -> Self {
        LocalColumn {
            name: name.to_string(),
            kind: ColumnType::MYSQL_TYPE_LONGLONG,
        }
    }
}

const UTF8MB4_GENERAL_CI: u16 = 45;
const BINARY: u16 = 63;

fn column_definition(out: &mut BytesMut, table: &str, col: &LocalColumn) {
    lenenc::put_str(out, b"def");
    lenenc::put_str(out, b"");
    lenenc::put_str(out, table.as_bytes());
    lenenc::put_str(out, b"");
    lenenc::put_str(out, col.name.as_bytes());
    lenenc::put_str(out, b"");
    out.put_u8(0x0c);
    let numeric = col.kind == ColumnType::MYSQL_TYPE_LONGLONG;
    out.put_u16_le(if numeric { BINARY } else { UTF8MB4_GENERAL_CI });
    out.put_u32_le(if numeric { 21 } else { 256 });
    out.put_u8(col.kind as u8);
    let flags = if numeric {
        ColumnFlags::NOT_NULL_FLAG | ColumnFlags::BINARY_FLAG | ColumnFlags::NUM_FLAG
    } else {
        ColumnFlags::empty()
    };
    out.put_u16_le(flags.bits());
    out.put_u8(0);
    out.put_u16(0);
}

/// Appends a complete result set (columns, rows, end marker) framed from `*seq`.
pub fn write_result_set(
    out: &mut BytesMut,
    seq: &mut u8,
    deprecate_eof: bool,
    status: StatusFlags,
    table: &str,
    columns: &[LocalColumn],
    rows: &[Vec<Option<String>>],
) {
    let mut p = BytesMut::new();
    lenenc::put_int(&mut p, columns.len() as u64);
    write_packet(out, seq, &p);
    for c in columns {
        p.clear();
        column_definition(&mut p, table, c);
        write_packet(out, seq, &p);
    }
    if !deprecate_eof {
        write_packet(out, seq, &generic::eof_payload(false, status, 0));
    }
    for row in rows {
        p.clear();
        for v in row {
            match v {
                Some(v) => lenenc::put_str(&mut p, v.as_bytes()),
                None => p.put_u8(0xFB),
            }
        }
        write_packet(out, seq, &p);
    }
    write_packet(out, seq, &generic::eof_payload(deprecate_eof, status, 0));
}
