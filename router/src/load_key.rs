//! Which keys of a LOAD DATA file shardgate may place: those the server stores
//! unchanged (see [`KeyType`]).

use crate::load_format::Field;

/// The shard column's type, read from the table: a key is placed only when the server
/// will store exactly the value shardgate places it by. A LOCAL load turns conversion
/// errors into warnings (the server cannot stop the client's file), so a key the
/// server would change (`12abc` into an INT, a string cut to the column's length,
/// NULL into NOT NULL, a date out of range, digits past a DECIMAL's scale) would land
/// on a shard where a read by its stored value does not look: such a line is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyType {
    pub class: KeyClass,
    pub nullable: bool,
    /// AUTO_INCREMENT: the server makes up a value for 0 and NULL.
    pub generated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClass {
    /// An integer type of `bits` bits.
    Integer {
        bits: u32,
        unsigned: bool,
    },
    /// A character or binary string of at most `max` characters (bytes).
    Text {
        max: u64,
        binary: bool,
    },
    Date,
    /// DATETIME or TIMESTAMP with `fraction` fractional digits.
    DateTime {
        fraction: usize,
    },
    Decimal {
        precision: u64,
        scale: u64,
    },
    /// A type whose stored values shardgate does not model (ENUM, SET, FLOAT, YEAR,
    /// TIME, BIT…): loads into it are refused.
    Unchecked(String),
}

/// A column's row of information_schema.COLUMNS, as far as [`KeyType`] reads it.
#[derive(Debug, Default)]
pub struct ColumnFacts {
    pub data_type: String,
    pub column_type: String,
    pub max_chars: Option<u64>,
    pub nullable: bool,
    pub numeric_precision: Option<u64>,
    pub numeric_scale: Option<u64>,
    pub datetime_precision: Option<u64>,
    pub extra: String,
}

impl KeyType {
    pub fn from_columns(c: &ColumnFacts) -> KeyType {
        let unsigned = c.column_type.to_ascii_lowercase().contains("unsigned");
        let class = match c.data_type.to_ascii_lowercase().as_str() {
            "tinyint" => KeyClass::Integer { bits: 8, unsigned },
            "smallint" => KeyClass::Integer { bits: 16, unsigned },
            "mediumint" => KeyClass::Integer { bits: 24, unsigned },
            "int" | "integer" => KeyClass::Integer { bits: 32, unsigned },
            "bigint" => KeyClass::Integer { bits: 64, unsigned },
            t @ ("char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext"
            | "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob") => {
                KeyClass::Text {
                    max: c.max_chars.unwrap_or(u64::MAX),
                    binary: t.contains("binary") || t.contains("blob"),
                }
            }
            "date" => KeyClass::Date,
            "datetime" | "timestamp" => KeyClass::DateTime {
                fraction: c.datetime_precision.unwrap_or(0) as usize,
            },
            "decimal" | "numeric" => KeyClass::Decimal {
                precision: c.numeric_precision.unwrap_or(10),
                scale: c.numeric_scale.unwrap_or(0),
            },
            _ => KeyClass::Unchecked(c.column_type.clone()),
        };
        KeyType {
            class,
            nullable: c.nullable,
            generated: c.extra.to_ascii_lowercase().contains("auto_increment"),
        }
    }

    /// Why no line can be placed by this column, if none can.
    pub fn unchecked(&self) -> Option<&str> {
        match &self.class {
            KeyClass::Unchecked(t) => Some(t),
            _ => None,
        }
    }

    /// The value the server stores for field `key`, as the rules read it; the error
    /// says why the server would store something else.
    pub fn value(&self, key: &Field) -> Result<rules::Value, String> {
        let bytes = match key {
            Field::Missing => return Err("no value".into()),
            Field::Null if self.generated => {
                return Err(
                    "NULL (the column is AUTO_INCREMENT: the server would make one up)".into(),
                )
            }
            Field::Null if self.nullable => return Ok(rules::Value::Null),
            Field::Null => {
                return Err(
                    "NULL (the column is NOT NULL: the server would store a default)".into(),
                )
            }
            Field::Bytes(b) => b,
        };
        let text = std::str::from_utf8(bytes)
            .map_err(|_| "a value that is not valid UTF-8".to_string())?;
        let shown = || {
            text.chars()
                .take(40)
                .collect::<String>()
                .escape_debug()
                .to_string()
        };
        match &self.class {
            KeyClass::Integer { bits, unsigned } => {
                let (low, high) = match unsigned {
                    true => (0, (1i128 << bits) - 1),
                    false => (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1),
                };
                match integer(text) {
                    Some(0) if self.generated => {
                        Err("0 (the column is AUTO_INCREMENT: the server would make one up)".into())
                    }
                    Some(n) if (low..=high).contains(&n) => Ok(rules::Value::Int(n)),
                    _ => Err(format!(
                        "'{}', which is not an integer the column holds",
                        shown()
                    )),
                }
            }
            KeyClass::Text { max, binary } => {
                let len = match binary {
                    true => bytes.len() as u64,
                    false => text.chars().count() as u64,
                };
                if len > *max {
                    return Err(format!("'{}…', longer than the column's {max}", shown()));
                }
                Ok(rules::Value::text(text))
            }
            KeyClass::Date => match valid_date(text) && text.len() == 10 {
                true => Ok(rules::Value::text(text)),
                false => Err(format!(
                    "'{}', which is not a date written YYYY-MM-DD",
                    shown()
                )),
            },
            KeyClass::DateTime { fraction } => match valid_datetime(text, *fraction) {
                true => Ok(rules::Value::text(text)),
                false => Err(format!(
                    "'{}', which is not written YYYY-MM-DD hh:mm:ss (with at most {fraction} \
                     fractional digits)",
                    shown()
                )),
            },
            KeyClass::Decimal { precision, scale } => {
                let (whole, part) = text.split_once('.').unwrap_or((text, ""));
                let fits = plain_digits(whole)
                    && part.bytes().all(|b| b.is_ascii_digit())
                    && whole.trim_start_matches('-').trim_start_matches('0').len() as u64
                        <= precision.saturating_sub(*scale)
                    && part.len() as u64 <= *scale;
                match fits.then(|| rules::Value::number(text)).flatten() {
                    Some(v) => Ok(v),
                    None => Err(format!(
                        "'{}', which the column would round or clip",
                        shown()
                    )),
                }
            }
            KeyClass::Unchecked(t) => Err(format!("a column of type {t}")),
        }
    }
}

/// The integer the server stores, without a warning, for `text`: leading spaces, a
/// sign, `5.0`, `5e0` are the integer 5; anything it would round or cut is `None`.
fn integer(text: &str) -> Option<i128> {
    let t = text.trim_start_matches(' ');
    let t = t.strip_prefix('+').unwrap_or(t);
    if plain_digits(t) {
        return t.parse().ok();
    }
    if let Some((whole, zeros)) = t.split_once('.') {
        let exact = !zeros.is_empty() && zeros.bytes().all(|b| b == b'0');
        return (exact && plain_digits(whole))
            .then(|| whole.parse().ok())
            .flatten();
    }
    if t.contains(['e', 'E']) {
        // A DOUBLE: exact only while it holds every digit.
        return match rules::Value::literal(t)? {
            rules::Value::Int(n) if n.abs() < 1 << 53 => Some(n),
            _ => None,
        };
    }
    None
}

/// An optional minus sign and at least one digit, nothing else.
fn plain_digits(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn number(text: &str, at: std::ops::Range<usize>) -> Option<u32> {
    let part = text.get(at)?;
    part.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| part.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD` at the start of `text`, a day that exists.
fn valid_date(text: &str) -> bool {
    let b = text.as_bytes();
    let (Some(y), Some(m), Some(d)) = (number(text, 0..4), number(text, 5..7), number(text, 8..10))
    else {
        return false;
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    };
    b.get(4) == Some(&b'-') && b.get(7) == Some(&b'-') && y > 0 && (1..=days).contains(&d)
}

/// `YYYY-MM-DD hh:mm:ss[.f…]`, at most `fraction` fractional digits.
fn valid_datetime(text: &str, fraction: usize) -> bool {
    let b = text.as_bytes();
    let time = b.get(10) == Some(&b' ')
        && number(text, 11..13).is_some_and(|h| h < 24)
        && b.get(13) == Some(&b':')
        && number(text, 14..16).is_some_and(|m| m < 60)
        && b.get(16) == Some(&b':')
        && number(text, 17..19).is_some_and(|s| s < 60);
    let fits = match text.get(19..) {
        Some("") => true,
        Some(f) => f.strip_prefix('.').is_some_and(|d| {
            !d.is_empty() && d.len() <= fraction && d.bytes().all(|c| c.is_ascii_digit())
        }),
        None => false,
    };
    valid_date(text) && time && fits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_the_server_would_change_are_refused() {
        let column = |data_type: &str, column_type: &str, nullable: bool| {
            KeyType::from_columns(&ColumnFacts {
                data_type: data_type.into(),
                column_type: column_type.into(),
                max_chars: Some(3),
                nullable,
                numeric_precision: Some(5),
                numeric_scale: Some(2),
                datetime_precision: Some(0),
                extra: String::new(),
            })
        };
        let v = |t: &KeyType, b: &[u8]| t.value(&Field::Bytes(b.to_vec()));
        let int = column("bigint", "bigint(20)", false);
        assert_eq!(v(&int, b"-42"), Ok(rules::Value::Int(-42)));
        assert_eq!(v(&int, b"007"), Ok(rules::Value::Int(7)));
        for good in [&b" 5"[..], b"+5", b"5.0", b"5e0", b"50e-1"] {
            assert_eq!(v(&int, good), Ok(rules::Value::Int(5)), "{good:?}");
        }
        assert_eq!(v(&int, b"  -0"), Ok(rules::Value::Int(0)));
        for bad in [
            &b"12abc"[..],
            b"1.5",
            b"5 ",
            b"",
            b"5.",
            b"9223372036854775808",
            b"1e300",
        ] {
            assert!(v(&int, bad).is_err(), "{bad:?}");
        }
        assert!(int.value(&Field::Null).is_err());
        assert!(int.value(&Field::Missing).is_err());
        let small = column("tinyint", "tinyint(3) unsigned", true);
        assert!(v(&small, b"256").is_err() && v(&small, b"-1").is_err());
        assert_eq!(small.value(&Field::Null), Ok(rules::Value::Null));
        let text = column("varchar", "varchar(3)", false);
        assert_eq!(v(&text, "äöü".as_bytes()), Ok(rules::Value::text("äöü")));
        assert!(v(&text, b"abcd").is_err());
        let date = column("date", "date", false);
        assert!(v(&date, b"2024-02-29").is_ok());
        for bad in [
            &b"2023-02-29"[..],
            b"2024-3-5",
            b"2024-03-05 10:00:00",
            b"2024-13-01",
        ] {
            assert!(v(&date, bad).is_err(), "{bad:?}");
        }
        let when = column("datetime", "datetime", false);
        assert!(v(&when, b"2024-03-05 10:00:00").is_ok());
        for bad in [
            &b"2024-03-05"[..],
            b"2024-03-05 10:00",
            b"2024-03-05 24:00:00",
            b"2024-03-05 10:00:00.5",
        ] {
            assert!(v(&when, bad).is_err(), "{bad:?}");
        }
        let money = column("decimal", "decimal(5,2)", false);
        assert_eq!(
            v(&money, b"123.45"),
            Ok(rules::Value::number("123.45").unwrap())
        );
        assert!(v(&money, b"1.234").is_err() && v(&money, b"1234.5").is_err());
        assert!(column("enum", "enum('a','b')", false).unchecked().is_some());
        let generated = KeyType {
            generated: true,
            ..int.clone()
        };
        assert!(v(&generated, b"0").is_err() && v(&generated, b"5").is_ok());
    }
}
