//! Shard-key values as the router extracts them from SQL, and their canonical forms.
//!
//! Values that SQL compares as equal must land on the same shard: `2`, `2.0` and `'2'`
//! in an integer column are one key, so hashing works on a canonical text form.

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    Null,
    /// Any SQL integer; `i128` holds BIGINT and BIGINT UNSIGNED alike.
    Int(i128),
    /// A decimal literal, normalised: no leading `+`, no trailing fractional zeros,
    /// no `-0` (so `1.50` and `1.5` are equal).
    Decimal(String),
    /// A string literal (dates arrive as text too).
    Text(String),
}

impl Value {
    /// Parses a numeric literal as the router sees it (`42`, `-7`, `3.140`, `1e3`).
    pub fn number(text: &str) -> Option<Value> {
        let t = text.trim();
        if let Ok(i) = t.parse::<i128>() {
            return Some(Value::Int(i));
        }
        normalize_decimal(t).map(|d| match d.parse::<i128>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Decimal(d),
        })
    }

    /// A number literal as SQL reads it: with an exponent it is a DOUBLE (approximate:
    /// `5.99999999999999999999e0` is 6), without one an exact value.
    pub fn literal(text: &str) -> Option<Value> {
        if text.contains(['e', 'E']) && !text.starts_with("0x") && !text.starts_with("0X") {
            let f: f64 = text.trim().parse().ok()?;
            return f
                .is_finite()
                .then(|| Value::number(&format!("{f}")))
                .flatten();
        }
        Value::number(text)
    }

    pub fn text(s: impl Into<String>) -> Value {
        Value::Text(s.into())
    }

    /// The value as an integer, where SQL would compare it as one without loss.
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Text(t) => match Value::number(t)? {
                Value::Int(i) => Some(i),
                _ => None,
            },
            _ => None,
        }
    }

    /// The canonical bytes hashed for placement. `fold_case` applies the comparison of
    /// case-insensitive, PAD SPACE collations (`'Abc '` = `'abc'`) by full Unicode
    /// uppercasing; collations with other equalities (general_ci's `'ß'` = `'s'`) are
    /// not modelled.
    pub fn canonical(&self, fold_case: bool) -> Cow<'_, [u8]> {
        let mut buf = [0u8; 40];
        match self.canonical_in(fold_case, &mut buf) {
            Cow::Borrowed(b) => Cow::Owned(b.to_vec()),
            Cow::Owned(o) => Cow::Owned(o),
        }
    }

    /// [`canonical`](Self::canonical) without allocating for integers: their decimal
    /// text is written into `buf`.
    pub fn canonical_in<'a>(&'a self, fold_case: bool, buf: &'a mut [u8; 40]) -> Cow<'a, [u8]> {
        match self {
            Value::Null => Cow::Borrowed(b"\0null"),
            Value::Int(i) => Cow::Borrowed(write_int(*i, buf)),
            Value::Decimal(d) => Cow::Borrowed(d.as_bytes()),
            Value::Text(t) => {
                if let Some(Value::Int(i)) = Value::number(t).filter(|_| looks_numeric(t)) {
                    return Cow::Borrowed(write_int(i, buf));
                }
                let trimmed = t.trim_end_matches(' ');
                if fold_case {
                    // Full Unicode uppercase: 'ß' = 'SS' and 'µ' = 'Μ', as MySQL's
                    // unicode/0900 case-insensitive collations compare them.
                    Cow::Owned(trimmed.to_uppercase().into_bytes())
                } else {
                    Cow::Borrowed(trimmed.as_bytes())
                }
            }
        }
    }

    /// The text Java code would see for this value (`String.valueOf`), for the
    /// Mycat- and ShardingSphere-compatible algorithms.
    pub fn java_text(&self) -> Cow<'_, str> {
        match self {
            Value::Null => Cow::Borrowed("null"),
            Value::Int(i) => Cow::Owned(i.to_string()),
            Value::Decimal(d) => Cow::Borrowed(d),
            Value::Text(t) => Cow::Borrowed(t),
        }
    }
}

/// Decimal text of `i` in `buf`.
fn write_int(i: i128, buf: &mut [u8; 40]) -> &[u8] {
    let mut pos = buf.len();
    let mut n = i.unsigned_abs();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    &buf[pos..]
}

/// True for text that is a plain integer literal (`'42'`, `' -7'`), which an integer
/// column stores as that integer.
fn looks_numeric(t: &str) -> bool {
    let t = t.trim();
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `[-]digits[.digits][e[-]digits]` → normalised plain decimal text, or `None`.
fn normalize_decimal(t: &str) -> Option<String> {
    let (neg, rest) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part
        .bytes()
        .chain(frac_part.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    if exp.unsigned_abs() > 400 {
        return None;
    }
    // Shift the decimal point by the exponent.
    let mut digits: String = format!("{int_part}{frac_part}");
    let mut point = int_part.len() as i64 + exp as i64;
    if point < 0 {
        digits = "0".repeat((-point) as usize) + &digits;
        point = 0;
    }
    let point = point as usize;
    if point > digits.len() {
        digits.push_str(&"0".repeat(point - digits.len()));
    }
    let (i, f) = digits.split_at(point);
    let i = i.trim_start_matches('0');
    let f = f.trim_end_matches('0');
    let mut out = String::new();
    if neg && !(i.is_empty() && f.is_empty()) {
        out.push('-');
    }
    out.push_str(if i.is_empty() { "0" } else { i });
    if !f.is_empty() {
        out.push('.');
        out.push_str(f);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_normalise() {
        assert_eq!(Value::number("42"), Some(Value::Int(42)));
        assert_eq!(Value::number("2.0"), Some(Value::Int(2)));
        assert_eq!(Value::number("1e3"), Some(Value::Int(1000)));
        assert_eq!(Value::number("1.50"), Some(Value::Decimal("1.5".into())));
        assert_eq!(Value::number("-0.0"), Some(Value::Int(0)));
        assert_eq!(Value::number("-.5"), Some(Value::Decimal("-0.5".into())));
        assert_eq!(
            Value::number("12.5e-1"),
            Some(Value::Decimal("1.25".into()))
        );
        assert_eq!(
            Value::number("18446744073709551615"),
            Some(Value::Int(u64::MAX as i128))
        );
        assert_eq!(Value::number("abc"), None);
        assert_eq!(Value::number("."), None);
    }

    #[test]
    fn integers_format_without_allocating() {
        let mut buf = [0u8; 40];
        for i in [
            0i128,
            7,
            -7,
            1234567890,
            i128::MIN,
            i128::MAX,
            u64::MAX as i128,
        ] {
            assert_eq!(write_int(i, &mut buf), i.to_string().as_bytes());
        }
    }

    #[test]
    fn equal_sql_values_share_a_canonical_form() {
        let c = |v: &Value| v.canonical(false).into_owned();
        assert_eq!(c(&Value::Int(7)), c(&Value::text("7")));
        assert_eq!(c(&Value::Int(7)), c(&Value::number("7.00").unwrap()));
        assert_eq!(c(&Value::text("ab  ")), c(&Value::text("ab")));
        assert_ne!(c(&Value::text("AB")), c(&Value::text("ab")));
        assert_eq!(
            Value::text("AB").canonical(true),
            Value::text("ab").canonical(true)
        );
        assert_eq!(
            Value::text("Straße").canonical(true),
            Value::text("STRASSE").canonical(true)
        );
        assert_eq!(
            Value::text("µ").canonical(true),
            Value::text("Μ").canonical(true)
        );
    }
}
