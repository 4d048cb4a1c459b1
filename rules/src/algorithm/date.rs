//! `date`: day / week / month / quarter / year buckets counted from a start date.
//!
//! Buckets are calendar periods in the rule's time zone: DATE and DATETIME values (wall
//! clock, as MySQL stores them) are bucketed by their calendar date as written; instants
//! (an offset or `Z` in the text, or epoch integers) are first converted to the zone's
//! wall clock, so DST changes move no value to a wrong day. With an `end`, buckets wrap
//! around (bucket mod count), like Mycat's PartitionByDate with `sEndDate`.

use std::ops::Bound;

use super::{RuleError, ShardSet};
use crate::value::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateUnit {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

/// How integer values are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntDates {
    /// MySQL numeric dates: `20240131`, `20240131235959`.
    Numeric,
    EpochSeconds,
    EpochMillis,
}

/// A wall-clock time: days since 1970-01-01 and the time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Civil {
    pub days: i64,
    pub nanos_of_day: u64,
}

#[derive(Debug, Clone)]
pub struct DateRule {
    pub unit: DateUnit,
    pub start: Civil,
    pub shards: u32,
    /// One shard per period forever; `shards` are the periods in use now.
    pub open_ended: bool,
    /// Open-ended: periods after the current one that have tables.
    pub ahead: u32,
    /// Wrap buckets modulo `shards` (a rule with an end date).
    pub wrap: bool,
    pub tz: jiff::tz::TimeZone,
    pub ints: IntDates,
    /// e.g. `yyyyMM`: the physical-name suffix of each shard.
    pub suffix_pattern: Option<String>,
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `YYYY-MM-DD[( |T)hh:mm[:ss[.f]]][Z|±hh[:]mm]` or `YYYYMMDD[hhmmss]`.
/// Returns the wall clock and, when the text names an offset, that offset in seconds.
pub fn parse_datetime(text: &str) -> Option<(Civil, Option<i64>)> {
    let t = text.trim();
    // Every form is ASCII; anything else is no date (and the byte offsets below
    // would cut a character: found by fuzzing the config parser).
    if !t.is_ascii() {
        return None;
    }
    let (date, rest) = if t.len() >= 10 && t.as_bytes()[4] == b'-' {
        (&t[..10], &t[10..])
    } else if t.len() == 8 || t.len() == 14 {
        let d = &t[..8];
        let (y, m, dd) = (num(&d[..4])?, num(&d[4..6])?, num(&d[6..8])?);
        let time = if t.len() == 14 {
            let (h, mi, s) = (num(&t[8..10])?, num(&t[10..12])?, num(&t[12..14])?);
            (h < 24 && mi < 60 && s < 60)
                .then_some(((h * 3600 + mi * 60 + s) as u64) * 1_000_000_000)?
        } else {
            0
        };
        return civil(y as i64, m, dd, time).map(|c| (c, None));
    } else {
        return None;
    };
    let mut parts = date.split('-');
    let (y, m, d) = (
        num(parts.next()?)?,
        num(parts.next()?)?,
        num(parts.next()?)?,
    );
    let mut rest = rest;
    let mut nanos = 0u64;
    if let Some(r) = rest.strip_prefix([' ', 'T']) {
        let end = r
            .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
            .unwrap_or(r.len());
        let (time, after) = r.split_at(end);
        let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
        let mut f = hms.split(':');
        let h = num(f.next()?)?;
        let mi = num(f.next()?)?;
        let s = match f.next() {
            Some(s) => num(s)?,
            None => 0,
        };
        if f.next().is_some() || h > 23 || mi > 59 || s > 59 || frac.len() > 9 {
            return None;
        }
        let frac_nanos = if frac.is_empty() {
            0
        } else {
            num(frac)? as u64 * 10u64.pow(9 - frac.len() as u32)
        };
        nanos = (h as u64 * 3600 + mi as u64 * 60 + s as u64) * 1_000_000_000 + frac_nanos;
        rest = after;
    }
    let offset = match rest {
        "" => None,
        "Z" | "z" => Some(0),
        o if o.starts_with(['+', '-']) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let digits: String = o[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 {
                return None;
            }
            let (h, m) = (num(&digits[..2])?, num(&digits[2..])?);
            Some(sign * (h as i64 * 3600 + m as i64 * 60))
        }
        _ => return None,
    };
    civil(y as i64, m, d, nanos).map(|c| (c, offset))
}

fn civil(y: i64, m: u32, d: u32, nanos: u64) -> Option<Civil> {
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(Civil {
        days: days_from_civil(y, m, d),
        nanos_of_day: nanos,
    })
}

/// The wall clock in `tz` at an instant given as Unix seconds + nanos.
fn wall_clock(tz: &jiff::tz::TimeZone, secs: i64, nanos: i32) -> Option<Civil> {
    let ts = jiff::Timestamp::new(secs, nanos).ok()?;
    let dt = ts.to_zoned(tz.clone()).datetime();
    let days = days_from_civil(dt.year() as i64, dt.month() as u32, dt.day() as u32);
    let nanos = (dt.hour() as u64 * 3600 + dt.minute() as u64 * 60 + dt.second() as u64)
        * 1_000_000_000
        + dt.subsec_nanosecond() as u64;
    Some(Civil {
        days,
        nanos_of_day: nanos,
    })
}

impl DateRule {
    /// The wall clock of a value in this rule's zone.
    pub fn civil(&self, v: &Value) -> Result<Civil, RuleError> {
        let bad = |why: &str| RuleError::BadDate(v.java_text().into_owned(), why.to_string());
        match v {
            Value::Int(i) => match self.ints {
                IntDates::Numeric => parse_datetime(&i.to_string())
                    .map(|(c, _)| c)
                    .ok_or_else(|| bad("expected YYYYMMDD or YYYYMMDDhhmmss")),
                IntDates::EpochSeconds => {
                    let s = i64::try_from(*i).map_err(|_| bad("epoch seconds out of range"))?;
                    wall_clock(&self.tz, s, 0).ok_or_else(|| bad("epoch seconds out of range"))
                }
                IntDates::EpochMillis => {
                    let ms =
                        i64::try_from(*i).map_err(|_| bad("epoch milliseconds out of range"))?;
                    wall_clock(
                        &self.tz,
                        ms.div_euclid(1000),
                        (ms.rem_euclid(1000) * 1_000_000) as i32,
                    )
                    .ok_or_else(|| bad("epoch milliseconds out of range"))
                }
            },
            Value::Text(t) => {
                let (c, offset) = parse_datetime(t)
                    .ok_or_else(|| bad("expected YYYY-MM-DD[ hh:mm:ss[.ffffff]][±hh:mm]"))?;
                match offset {
                    None => Ok(c),
                    Some(off) => {
                        let secs = c.days * 86_400 + (c.nanos_of_day / 1_000_000_000) as i64 - off;
                        wall_clock(&self.tz, secs, (c.nanos_of_day % 1_000_000_000) as i32)
                            .ok_or_else(|| bad("instant out of range"))
                    }
                }
            }
            _ => Err(bad("not a date")),
        }
    }

    /// Bucket number counted from the start (negative before it).
    /// The period the instant `unix_secs` falls in, on this rule's wall clock.
    pub fn bucket_at(&self, unix_secs: i64) -> Option<i64> {
        wall_clock(&self.tz, unix_secs, 0).map(|c| self.bucket(c))
    }

    pub fn bucket(&self, c: Civil) -> i64 {
        let (y, m, _) = civil_from_days(c.days);
        let (sy, sm, _) = civil_from_days(self.start.days);
        let months = (y - sy) * 12 + m as i64 - sm as i64;
        match self.unit {
            DateUnit::Day => c.days - self.start.days,
            DateUnit::Week => (c.days - self.start.days).div_euclid(7),
            DateUnit::Month => months,
            DateUnit::Quarter => months.div_euclid(3),
            DateUnit::Year => y - sy,
        }
    }

    /// True when `c` is the first instant of its bucket.
    fn at_bucket_start(&self, c: Civil) -> bool {
        if c.nanos_of_day != 0 {
            return false;
        }
        let (_, m, d) = civil_from_days(c.days);
        let (_, sm, _) = civil_from_days(self.start.days);
        match self.unit {
            DateUnit::Day => true,
            DateUnit::Week => (c.days - self.start.days).rem_euclid(7) == 0,
            DateUnit::Month => d == 1,
            DateUnit::Quarter => d == 1 && (m as i64 - sm as i64).rem_euclid(3) == 0,
            DateUnit::Year => d == 1 && m == 1,
        }
    }

    fn shard_for_bucket(&self, b: i64) -> Option<u32> {
        if b < 0 {
            return None;
        }
        if self.wrap {
            return Some((b % self.shards as i64) as u32);
        }
        (b < self.shards as i64).then_some(b as u32)
    }

    pub fn shard_of(&self, v: &Value) -> Result<u32, RuleError> {
        let c = self.civil(v)?;
        let b = self.bucket(c);
        self.shard_for_bucket(b).ok_or_else(|| {
            let text = v.java_text().into_owned();
            if self.open_ended && b >= 0 {
                RuleError::NotYet(text, self.ahead)
            } else {
                RuleError::OutOfRange(text)
            }
        })
    }

    pub fn shards_in(
        &self,
        low: Bound<&Value>,
        high: Bound<&Value>,
    ) -> Result<ShardSet, RuleError> {
        let lo = match low {
            Bound::Included(v) | Bound::Excluded(v) => self.bucket(self.civil(v)?),
            Bound::Unbounded => 0,
        };
        let hi = match high {
            Bound::Included(v) => self.bucket(self.civil(v)?),
            Bound::Excluded(v) => {
                let c = self.civil(v)?;
                let b = self.bucket(c);
                if self.at_bucket_start(c) {
                    b - 1
                } else {
                    b
                }
            }
            Bound::Unbounded => i64::MAX,
        };
        let lo = lo.max(0);
        if hi < lo {
            return Ok(ShardSet::empty());
        }
        if self.wrap {
            if hi - lo + 1 >= self.shards as i64 {
                return Ok(ShardSet::all(self.shards));
            }
            return Ok((lo..=hi).filter_map(|b| self.shard_for_bucket(b)).collect());
        }
        let hi = hi.min(self.shards as i64 - 1);
        if hi < lo {
            return Ok(ShardSet::empty());
        }
        Ok((lo as u32..=hi as u32).collect())
    }

    /// The first day of shard `i`'s (first) bucket, formatted with the suffix pattern.
    pub fn suffix(&self, shard: u32) -> Option<String> {
        let pattern = self.suffix_pattern.as_ref()?;
        let (sy, sm, _) = civil_from_days(self.start.days);
        let b = shard as i64;
        let (y, m, d) = match self.unit {
            DateUnit::Day => civil_from_days(self.start.days + b),
            DateUnit::Week => civil_from_days(self.start.days + 7 * b),
            DateUnit::Month | DateUnit::Quarter | DateUnit::Year => {
                let step = match self.unit {
                    DateUnit::Month => 1,
                    DateUnit::Quarter => 3,
                    _ => 12,
                };
                let months = sy * 12 + (sm as i64 - 1) + b * step;
                (months.div_euclid(12), (months.rem_euclid(12) + 1) as u32, 1)
            }
        };
        Some(format_date(pattern, y, m, d, 0))
    }
}

/// Formats `yyyy`, `yy`, `MM`, `dd`, `HH` in a Java-style pattern; other characters stay.
pub fn format_date(pattern: &str, y: i64, m: u32, d: u32, h: u32) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("yyyy") {
            out.push_str(&format!("{y:04}"));
            rest = r;
        } else if let Some(r) = rest.strip_prefix("yy") {
            out.push_str(&format!("{:02}", y.rem_euclid(100)));
            rest = r;
        } else if let Some(r) = rest.strip_prefix("MM") {
            out.push_str(&format!("{m:02}"));
            rest = r;
        } else if let Some(r) = rest.strip_prefix("dd") {
            out.push_str(&format!("{d:02}"));
            rest = r;
        } else if let Some(r) = rest.strip_prefix("HH") {
            out.push_str(&format!("{h:02}"));
            rest = r;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_roundtrip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for z in [-800_000i64, -1, 0, 59, 11_016, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    /// Found by fuzzing: a non-ASCII character where the date's byte offsets fall
    /// panicked (a config's `start`, or a client's literal for a date-sharded key).
    #[test]
    fn text_with_non_ascii_characters_is_no_date() {
        for t in [
            "2024-\u{fffd}\u{fffd}1",
            "2024-01-0\u{e9}",
            "2024010\u{e9}",
            "\u{e9}2024-01-01 10:00:00",
        ] {
            assert_eq!(parse_datetime(t), None, "{t}");
        }
    }

    #[test]
    fn parses_mysql_date_forms() {
        let p = |s: &str| parse_datetime(s);
        let d = days_from_civil(2024, 2, 29);
        assert_eq!(
            p("2024-02-29"),
            Some((
                Civil {
                    days: d,
                    nanos_of_day: 0
                },
                None
            ))
        );
        assert_eq!(
            p("20240229"),
            Some((
                Civil {
                    days: d,
                    nanos_of_day: 0
                },
                None
            ))
        );
        assert_eq!(
            p("2024-02-29 01:02:03.5"),
            Some((
                Civil {
                    days: d,
                    nanos_of_day: 3_723_500_000_000
                },
                None
            ))
        );
        assert_eq!(p("2024-02-29T01:02Z").map(|x| x.1), Some(Some(0)));
        assert_eq!(
            p("2024-02-29 01:02:03+05:30").map(|x| x.1),
            Some(Some(19_800))
        );
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-01-01 24:00:00",
            "yesterday",
            "2024-01-01 1:2:3:4",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_suffixes() {
        assert_eq!(format_date("yyyyMM", 2024, 3, 1, 0), "202403");
        assert_eq!(format_date("_yy_MM_dd", 2009, 12, 5, 0), "_09_12_05");
    }
}
