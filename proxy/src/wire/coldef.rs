//! Column definitions (Protocol::ColumnDefinition41) with their schema and table names
//! replaced, so a result from a physical table `orders_0003` in database `shop_b`
//! reaches the client as `orders` in `shop`.

use bytes::{BufMut, BytesMut};

use super::lenenc;

/// Positions among the six length-encoded strings that open a column definition
/// (catalog, schema, table, org_table, name, org_name).
const SCHEMA: usize = 1;
const TABLE: usize = 2;
const ORG_TABLE: usize = 3;

/// What must agree between shards that answer one statement: a column's original
/// name (`org_name`: empty for expressions, the real column for column references,
/// which is what a partial DDL changes) and its type. The display name may differ by
/// design (`t_0001.a + 1` on one shard, `t_0002.a + 1` on another), and so may lengths
/// after a widening ALTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnShape {
    pub org_name: Vec<u8>,
    pub column_type: u8,
}

/// A column definition's name (its fifth string: after catalog, schema, table and
/// org_table); `None` when it is malformed.
pub fn name(payload: &[u8]) -> Option<String> {
    let mut pos = 0usize;
    for _ in 0..4 {
        let (len, n) = lenenc::read_int(payload.get(pos..)?)?;
        pos = pos
            .checked_add(n)?
            .checked_add(usize::try_from(len).ok()?)?;
    }
    let (len, n) = lenenc::read_int(payload.get(pos..)?)?;
    let start = pos.checked_add(n)?;
    let field = payload.get(start..start.checked_add(usize::try_from(len).ok()?)?)?;
    Some(String::from_utf8_lossy(field).into_owned())
}

/// The shape of a column definition; `None` when it is malformed.
pub fn shape(payload: &[u8]) -> Option<ColumnShape> {
    let mut pos = 0usize;
    let mut org_name = &[][..];
    for i in 0..6 {
        let (len, n) = lenenc::read_int(payload.get(pos..)?)?;
        let start = pos.checked_add(n)?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        let field = payload.get(start..end)?;
        if i == 5 {
            org_name = field;
        }
        pos = end;
    }
    // length of fixed fields (1), charset (2), column length (4), then the type.
    let column_type = *payload.get(pos.checked_add(7)?)?;
    Some(ColumnShape {
        org_name: org_name.to_vec(),
        column_type,
    })
}

/// A column definition's type and flags; `None` when it is malformed.
pub fn type_and_flags(payload: &[u8]) -> Option<(u8, u16)> {
    let mut pos = 0usize;
    for _ in 0..6 {
        let (len, n) = lenenc::read_int(payload.get(pos..)?)?;
        pos = pos
            .checked_add(n)?
            .checked_add(usize::try_from(len).ok()?)?;
    }
    // length of fixed fields (1), charset (2), column length (4), type (1), flags (2).
    let at = pos.checked_add(7)?;
    let t = *payload.get(at)?;
    let flags = payload.get(at + 1..at + 3)?;
    Some((t, u16::from_le_bytes([flags[0], flags[1]])))
}

/// Rewrites the schema and table fields through `rename_schema` / `rename_table`
/// (which return `None` to keep a name). `None` when the packet is not a well-formed
/// column definition.
pub fn rename<'n>(
    payload: &[u8],
    rename_schema: impl Fn(&[u8]) -> Option<&'n str>,
    rename_table: impl Fn(&[u8]) -> Option<&'n str>,
) -> Option<BytesMut> {
    let mut fields: [&[u8]; 6] = [&[]; 6];
    let mut pos = 0;
    for field in &mut fields {
        let (len, n) = lenenc::read_int(payload.get(pos..)?)?;
        let start = pos + n;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        *field = payload.get(start..end)?;
        pos = end;
    }
    let rest = &payload[pos..];
    let mut out = BytesMut::with_capacity(payload.len() + 16);
    for (i, f) in fields.iter().enumerate() {
        let renamed = match i {
            SCHEMA => rename_schema(f),
            TABLE | ORG_TABLE => rename_table(f),
            _ => None,
        };
        match renamed {
            Some(r) => lenenc::put_str(&mut out, r.as_bytes()),
            None => lenenc::put_str(&mut out, f),
        }
    }
    out.put_slice(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_schema_and_tables_only() {
        let mut p = BytesMut::new();
        for s in ["def", "shop_b", "o", "orders_0003", "id", "id"] {
            lenenc::put_str(&mut p, s.as_bytes());
        }
        p.put_slice(&[0x0c, 63, 0, 20, 0, 0, 0, 8, 3, 0x42, 0, 0, 0]);
        let out = rename(
            &p,
            |s| (s == b"shop_b").then_some("shop"),
            |t| (t == b"orders_0003").then_some("orders"),
        )
        .unwrap();
        let mut expected = BytesMut::new();
        for s in ["def", "shop", "o", "orders", "id", "id"] {
            lenenc::put_str(&mut expected, s.as_bytes());
        }
        expected.put_slice(&[0x0c, 63, 0, 20, 0, 0, 0, 8, 3, 0x42, 0, 0, 0]);
        assert_eq!(out, expected);
        assert!(rename(&[0x05, b'a'], |_| None, |_| None).is_none());
    }
}
