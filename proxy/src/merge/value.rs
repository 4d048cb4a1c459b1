//! Text-protocol values as the server compares and adds them.
//!
//! Rows stay in the text form the server sent; a value is parsed only when the merge
//! compares or combines it. Exact types (integers, DECIMAL) are added exactly; a sum
//! that no longer fits is an error, never a rounded answer.

use std::cmp::Ordering;

use crate::wire::coltype as ty;

/// How a column's values compare, from its column definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Integers and DECIMAL: exact numbers.
    Exact,
    /// FLOAT and DOUBLE.
    Float,
    /// TIME, which may be negative or exceed 24 hours.
    Time,
    /// Bytes compare as bytes: binary strings, dates, datetimes, timestamps, JSON.
    Bytes,
    /// Strings with a collation: compared by their weight column.
    Collated,
    /// ENUM and SET sort by their internal numbers, which the text does not carry.
    Enum,
}

const BINARY_CHARSET: u16 = 63;
const ENUM_FLAG: u16 = 0x0100;
const SET_FLAG: u16 = 0x0800;

/// The parts of a column definition the merge needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnInfo {
    pub kind: Kind,
    /// Digits after the point, for DECIMAL results.
    pub decimals: u8,
}

impl ColumnInfo {
    /// Reads a ColumnDefinition41 payload: six strings, then the fixed fields.
    pub fn parse(def: &[u8]) -> Option<ColumnInfo> {
        let mut pos = 0;
        for _ in 0..6 {
            let (len, n) = crate::wire::lenenc::read_int(def.get(pos..)?)?;
            pos += n + usize::try_from(len).ok()?;
        }
        // length of fixed fields (0x0c), charset(2), column length(4), type(1), flags(2), decimals(1)
        let fixed = def.get(pos + 1..pos + 11)?;
        let charset = u16::from_le_bytes([fixed[0], fixed[1]]);
        let column_type = fixed[6];
        let flags = u16::from_le_bytes([fixed[7], fixed[8]]);
        let decimals = fixed[9];
        let kind = match column_type {
            ty::DECIMAL
            | ty::NEWDECIMAL
            | ty::TINY
            | ty::SHORT
            | ty::LONG
            | ty::LONGLONG
            | ty::INT24
            | ty::YEAR => Kind::Exact,
            ty::FLOAT | ty::DOUBLE => Kind::Float,
            ty::TIME => Kind::Time,
            ty::DATE | ty::NEWDATE | ty::DATETIME | ty::TIMESTAMP => Kind::Bytes,
            ty::ENUM | ty::SET => Kind::Enum,
            _ if flags & (ENUM_FLAG | SET_FLAG) != 0 => Kind::Enum,
            _ if charset == BINARY_CHARSET => Kind::Bytes,
            _ => Kind::Collated,
        };
        Some(ColumnInfo { kind, decimals })
    }
}

/// Compares two values of one column; `None` (SQL NULL) sorts first, as in MySQL.
/// `Collated` values are compared as bytes: callers pass the weights.
pub fn compare(kind: Kind, a: Option<&[u8]>, b: Option<&[u8]>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => match kind {
            Kind::Exact => compare_exact(a, b),
            Kind::Float => parse_f64(a).total_cmp(&parse_f64(b)),
            Kind::Time => time_micros(a).cmp(&time_micros(b)),
            Kind::Bytes | Kind::Collated | Kind::Enum => a.cmp(b),
        },
    }
}

pub fn parse_f64(v: &[u8]) -> f64 {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0.0)
}

/// `[-]HHH:MM:SS[.ffffff]` → microseconds.
fn time_micros(v: &[u8]) -> i128 {
    let s = std::str::from_utf8(v).unwrap_or("");
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut secs: i128 = 0;
    for part in whole.split(':') {
        secs = secs * 60 + part.parse::<i128>().unwrap_or(0);
    }
    let mut micros: i128 = 0;
    for d in frac.bytes().chain(std::iter::repeat(b'0')).take(6) {
        micros = micros * 10 + i128::from(d.wrapping_sub(b'0') % 10);
    }
    let t = secs * 1_000_000 + micros;
    if neg {
        -t
    } else {
        t
    }
}

/// Compares decimal numbers in text (`-12.50`, `7`) without converting them.
fn compare_exact(a: &[u8], b: &[u8]) -> Ordering {
    let (na, ia, fa) = split_number(a);
    let (nb, ib, fb) = split_number(b);
    let zero = |i: &[u8], f: &[u8]| i.is_empty() && f.iter().all(|d| *d == b'0');
    let (za, zb) = (zero(ia, fa), zero(ib, fb));
    let sign = |neg: bool, z: bool| {
        if z {
            0
        } else if neg {
            -1
        } else {
            1
        }
    };
    let (sa, sb) = (sign(na, za), sign(nb, zb));
    if sa != sb {
        return sa.cmp(&sb);
    }
    let magnitude = ia
        .len()
        .cmp(&ib.len())
        .then_with(|| ia.cmp(ib))
        .then_with(|| {
            let n = fa.len().max(fb.len());
            let digit = |f: &[u8], i: usize| f.get(i).copied().unwrap_or(b'0');
            (0..n)
                .map(|i| digit(fa, i).cmp(&digit(fb, i)))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        });
    if sa < 0 {
        magnitude.reverse()
    } else {
        magnitude
    }
}

/// Sign, integer digits without leading zeros, fraction digits.
fn split_number(v: &[u8]) -> (bool, &[u8], &[u8]) {
    let v = v.trim_ascii();
    let (neg, v) = match v.first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    let (int, frac) = match v.iter().position(|c| *c == b'.') {
        Some(p) => (&v[..p], &v[p + 1..]),
        None => (v, &v[v.len()..]),
    };
    let first = int.iter().position(|c| *c != b'0').unwrap_or(int.len());
    (neg, &int[first..], frac)
}

/// An exact decimal: `mantissa / 10^scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    pub mantissa: i128,
    pub scale: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArithError {
    #[error("a merged value does not fit shardgate's 38-digit arithmetic")]
    Overflow,
    #[error("a shard sent a number shardgate could not read: {0}")]
    NotANumber(String),
}

impl Decimal {
    pub fn parse(v: &[u8]) -> Result<Decimal, ArithError> {
        let bad = || ArithError::NotANumber(String::from_utf8_lossy(v).into_owned());
        let (neg, int, frac) = split_number(v);
        if !int.iter().chain(frac).all(u8::is_ascii_digit) {
            return Err(bad());
        }
        let mut m: i128 = 0;
        for d in int.iter().chain(frac) {
            m = m
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(d - b'0')))
                .ok_or(ArithError::Overflow)?;
        }
        Ok(Decimal {
            mantissa: if neg { -m } else { m },
            scale: u32::try_from(frac.len()).map_err(|_| bad())?,
        })
    }

    fn rescale(self, scale: u32) -> Result<i128, ArithError> {
        let factor = 10i128
            .checked_pow(scale - self.scale)
            .ok_or(ArithError::Overflow)?;
        self.mantissa
            .checked_mul(factor)
            .ok_or(ArithError::Overflow)
    }

    pub fn checked_add(self, other: Decimal) -> Result<Decimal, ArithError> {
        let scale = self.scale.max(other.scale);
        let m = self
            .rescale(scale)?
            .checked_add(other.rescale(scale)?)
            .ok_or(ArithError::Overflow)?;
        Ok(Decimal { mantissa: m, scale })
    }

    /// `self / count` rounded half away from zero to `scale` digits, as MySQL does.
    pub fn div(self, count: i128, scale: u32) -> Result<Decimal, ArithError> {
        if count == 0 {
            return Err(ArithError::Overflow);
        }
        // numerator scaled so the quotient has one extra digit for rounding
        let target = scale + 1;
        let num = if target >= self.scale {
            self.mantissa
                .checked_mul(
                    10i128
                        .checked_pow(target - self.scale)
                        .ok_or(ArithError::Overflow)?,
                )
                .ok_or(ArithError::Overflow)?
        } else {
            self.mantissa
                / 10i128
                    .checked_pow(self.scale - target)
                    .ok_or(ArithError::Overflow)?
        };
        let q = num / count;
        let rounded = if q >= 0 { (q + 5) / 10 } else { (q - 5) / 10 };
        Ok(Decimal {
            mantissa: rounded,
            scale,
        })
    }

    pub fn to_text(self) -> String {
        let digits = self.mantissa.unsigned_abs().to_string();
        let scale = self.scale as usize;
        let sign = if self.mantissa < 0 { "-" } else { "" };
        if scale == 0 {
            return format!("{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (i, f) = padded.split_at(padded.len() - scale);
        format!("{sign}{i}.{f}")
    }
}

/// A double as the server prints it: shortest round-trip digits, exponent form for
/// very large and very small magnitudes.
pub fn format_f64(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e15).contains(&a) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_numbers_compare_by_value() {
        let c = |a: &str, b: &str| compare(Kind::Exact, Some(a.as_bytes()), Some(b.as_bytes()));
        assert_eq!(c("10", "9"), Ordering::Greater);
        assert_eq!(c("-10", "-9"), Ordering::Less);
        assert_eq!(c("1.50", "1.5"), Ordering::Equal);
        assert_eq!(c("-0.00", "0"), Ordering::Equal);
        assert_eq!(c("0.001", "-5"), Ordering::Greater);
        assert_eq!(c("007", "7"), Ordering::Equal);
        assert_eq!(
            compare(Kind::Exact, None, Some(b"-1000")),
            Ordering::Less,
            "NULL first"
        );
    }

    #[test]
    fn times_compare_past_a_day_and_below_zero() {
        let c = |a: &str, b: &str| compare(Kind::Time, Some(a.as_bytes()), Some(b.as_bytes()));
        assert_eq!(c("100:00:00", "99:59:59"), Ordering::Greater);
        assert_eq!(c("-01:00:00", "00:00:00"), Ordering::Less);
        assert_eq!(c("00:00:00.5", "00:00:00.499999"), Ordering::Greater);
    }

    #[test]
    fn decimals_add_and_divide_exactly() {
        let d = |s: &str| Decimal::parse(s.as_bytes()).unwrap();
        assert_eq!(d("1.25").checked_add(d("-3")).unwrap().to_text(), "-1.75");
        assert_eq!(d("0.1").checked_add(d("0.2")).unwrap().to_text(), "0.3");
        assert_eq!(d("10").div(3, 4).unwrap().to_text(), "3.3333");
        assert_eq!(d("2").div(3, 4).unwrap().to_text(), "0.6667");
        assert_eq!(d("-2").div(3, 4).unwrap().to_text(), "-0.6667");
        assert_eq!(d("0.005").div(1, 2).unwrap().to_text(), "0.01");
        assert_eq!(
            d("170141183460469231731687303715884105727")
                .checked_add(d("1"))
                .unwrap_err(),
            ArithError::Overflow
        );
        assert!(Decimal::parse(b"1e5").is_err());
    }

    #[test]
    fn doubles_print_like_the_server() {
        assert_eq!(format_f64(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(format_f64(3.0), "3");
        assert_eq!(format_f64(1e20), "1e20");
        assert_eq!(format_f64(-2.5), "-2.5");
    }
}
