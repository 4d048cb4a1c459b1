//! Reading a physical table's rows in a form that converts nothing, and writing them
//! into its temporary twin as multi-row INSERTs.

use super::quote_ident;

/// How a column's values travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Strings, binary strings, ENUM, SET, JSON, BIT, spatial and other types with
    /// a byte form: `HEX(c)` → `X'…'`, byte for byte.
    Hex,
    /// FLOAT prints with six digits; as a DOUBLE it is exact, and the DOUBLE goes
    /// back to the same FLOAT.
    Float,
    /// Seconds since the epoch, read and written with no time zone between them.
    Timestamp,
    /// Numbers, DECIMAL, DOUBLE (printed to round-trip), DATE, DATETIME, TIME,
    /// YEAR: their text form reads back to the same value.
    Text,
}

impl Kind {
    /// The kind of a column by its `information_schema.COLUMNS.DATA_TYPE`.
    pub fn of(data_type: &str) -> Kind {
        let t = data_type.to_ascii_lowercase();
        match t.as_str() {
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "decimal"
            | "numeric" | "double" | "double precision" | "real" | "date" | "datetime" | "time"
            | "year" => Kind::Text,
            "float" => Kind::Float,
            "timestamp" => Kind::Timestamp,
            _ => Kind::Hex,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
}

impl Column {
    /// The select-list item that reads this column of the table known as `alias`.
    pub fn read(&self, alias: &str) -> String {
        let c = format!("{}.{}", quote_ident(alias), quote_ident(&self.name));
        match self.kind {
            Kind::Hex => format!("HEX({c})"),
            Kind::Float => format!("CAST({c} AS DOUBLE)"),
            Kind::Timestamp => format!("UNIX_TIMESTAMP({c})"),
            Kind::Text => c,
        }
    }
}

/// Multi-row INSERTs into one temporary table, each at most about `limit` bytes.
pub struct RowsInsert {
    table: String,
    head: Vec<u8>,
    kinds: Vec<Kind>,
    buf: Vec<u8>,
    rows: usize,
}

impl RowsInsert {
    /// Values are written as they were read, with nothing the session's settings
    /// could change: no zero turned into the next AUTO_INCREMENT value, no CHECK
    /// judged again, TIMESTAMPs in UTC, every date the shard could hold (strict, so
    /// that nothing is changed quietly). (MariaDB's `SET STATEMENT`.) `encode` puts
    /// the statement's names into the connection's character set.
    pub fn new(
        db: &str,
        table: &str,
        columns: &[Column],
        encode: impl Fn(&str) -> Vec<u8>,
    ) -> RowsInsert {
        let names: Vec<String> = columns.iter().map(|c| quote_ident(&c.name)).collect();
        let head = format!(
            "SET STATEMENT sql_mode = 'STRICT_ALL_TABLES,ALLOW_INVALID_DATES,\
             NO_AUTO_VALUE_ON_ZERO', time_zone = '+00:00', check_constraint_checks = 0 \
             FOR INSERT INTO {}.{} ({}) VALUES ",
            quote_ident(db),
            quote_ident(table),
            names.join(", ")
        );
        RowsInsert {
            table: table.to_string(),
            head: encode(&head),
            kinds: columns.iter().map(|c| c.kind).collect(),
            buf: Vec::new(),
            rows: 0,
        }
    }

    /// Adds a row as read by the columns' [`Column::read`] items.
    pub fn push<'v>(
        &mut self,
        values: impl ExactSizeIterator<Item = Option<&'v [u8]>>,
    ) -> Result<(), String> {
        if values.len() != self.kinds.len() {
            return Err(format!(
                "a shard answered {} values for {} columns",
                values.len(),
                self.kinds.len()
            ));
        }
        self.buf
            .extend_from_slice(if self.rows == 0 { &self.head } else { b", " });
        self.buf.push(b'(');
        for (i, (v, kind)) in values.zip(&self.kinds).enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            match v {
                None => self.buf.extend_from_slice(b"NULL"),
                Some(v) => write_value(&mut self.buf, *kind, v)?,
            }
        }
        self.buf.push(b')');
        self.rows += 1;
        Ok(())
    }

    /// The table the rows go to.
    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The statement so far; the next row starts a new one.
    pub fn take(&mut self) -> Vec<u8> {
        self.rows = 0;
        std::mem::take(&mut self.buf)
    }
}

fn write_value(out: &mut Vec<u8>, kind: Kind, v: &[u8]) -> Result<(), String> {
    match kind {
        Kind::Hex => {
            if !v.iter().all(u8::is_ascii_hexdigit) {
                return Err("a shard answered HEX() with other than hex digits".into());
            }
            out.extend_from_slice(b"X'");
            // BIT values print without their leading zero.
            if v.len() % 2 == 1 {
                out.push(b'0');
            }
            out.extend_from_slice(v);
            out.push(b'\'');
        }
        Kind::Timestamp => {
            if !v.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
                return Err("a shard answered UNIX_TIMESTAMP() with other than a number".into());
            }
            out.extend_from_slice(b"FROM_UNIXTIME(");
            out.extend_from_slice(v);
            out.push(b')');
        }
        Kind::Float | Kind::Text => {
            // Numbers, dates and times print in these characters only: anything else
            // is a character set the copy cannot read (ucs2 results, say).
            if !v
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b" .:+-".contains(b))
            {
                return Err("a shard answered a number or date in an unreadable form".into());
            }
            out.push(b'\'');
            for &b in v {
                match b {
                    b'\'' => out.extend_from_slice(b"''"),
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    0 => out.extend_from_slice(b"\\0"),
                    b => out.push(b),
                }
            }
            out.push(b'\'');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_one_insert_with_exact_literals() {
        let cols = [
            Column {
                name: "id".into(),
                kind: Kind::of("bigint"),
            },
            Column {
                name: "note".into(),
                kind: Kind::of("varchar"),
            },
            Column {
                name: "f".into(),
                kind: Kind::of("FLOAT"),
            },
            Column {
                name: "at".into(),
                kind: Kind::of("timestamp"),
            },
            Column {
                name: "b".into(),
                kind: Kind::of("bit"),
            },
        ];
        assert_eq!(cols[2].read("o"), "CAST(`o`.`f` AS DOUBLE)");
        assert_eq!(cols[1].read("o"), "HEX(`o`.`note`)");
        let mut ins = RowsInsert::new("shop", "orders", &cols, |h| h.as_bytes().to_vec());
        let row: [Option<&[u8]>; 5] = [
            Some(b"-5"),
            Some(b"C3A9"),
            Some(b"1.0000001192092896"),
            Some(b"1709287200.123"),
            Some(b"5"),
        ];
        ins.push(row.into_iter()).unwrap();
        let nulls: [Option<&[u8]>; 5] = [Some(b"-0"), None, None, None, Some(b"")];
        ins.push(nulls.into_iter()).unwrap();
        let sql = String::from_utf8(ins.take()).unwrap();
        assert!(sql.ends_with(
            "INSERT INTO `shop`.`orders` (`id`, `note`, `f`, `at`, `b`) VALUES \
             ('-5',X'C3A9','1.0000001192092896',FROM_UNIXTIME(1709287200.123),X'05'), \
             ('-0',NULL,NULL,NULL,X'')"
        ));
        assert!(ins.is_empty());
        let short: [Option<&[u8]>; 1] = [None];
        assert!(ins.push(short.into_iter()).is_err());
        let bad: [Option<&[u8]>; 5] = [None, Some(b"zz"), None, None, None];
        assert!(ins.push(bad.into_iter()).is_err());
        let quoted: [Option<&[u8]>; 5] = [Some(b"1'"), None, None, None, None];
        assert!(ins.push(quoted.into_iter()).is_err());
    }
}
