//! The TOML form of shard rules (`[rules.NAME]`) and its validation into an
//! [`Algorithm`].

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::algorithm::{
    parse_datetime, Algorithm, DateRule, DateUnit, HashMod, IntDates, IntervalUnit, JavaType, Jump,
    ListRule, Modulo, MycatMurmur, RangeRule, SsHashMod, SsInterval,
};
use crate::error::ConfigError;
use crate::value::Value;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "algorithm", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleConfig {
    /// Integer modulo.
    Mod { shards: u32 },
    /// murmur3_32 of the canonical key mod shards; any key type.
    HashMod {
        shards: u32,
        #[serde(default, skip_serializing_if = "crate::config::is_false")]
        case_insensitive: bool,
    },
    /// Jump consistent hash; any key type.
    Jump {
        shards: u32,
        #[serde(default, skip_serializing_if = "crate::config::is_false")]
        case_insensitive: bool,
    },
    /// Mycat PartitionByMurmurHash.
    Murmur {
        shards: u32,
        #[serde(default)]
        seed: i32,
        #[serde(default = "default_virtual_buckets")]
        virtual_bucket_times: u32,
        /// Shard index (as text) → weight.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        weights: BTreeMap<String, u32>,
    },
    /// Integer ranges: shard i holds [boundaries[i], boundaries[i+1]).
    Range {
        boundaries: Vec<i64>,
        /// Values below the first boundary go to shard 0 (else they are refused).
        #[serde(default, skip_serializing_if = "crate::config::is_false")]
        open_below: bool,
        /// Values at or above the last boundary go to the last shard (else refused).
        #[serde(default, skip_serializing_if = "crate::config::is_false")]
        open_above: bool,
    },
    /// Value → shard map.
    List {
        shards: u32,
        values: BTreeMap<String, u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<u32>,
        #[serde(default, skip_serializing_if = "crate::config::is_false")]
        case_insensitive: bool,
    },
    /// Calendar buckets from a start date.
    Date {
        unit: String,
        start: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time_zone: Option<String>,
        /// Required unless `open_ended`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shards: Option<u32>,
        /// How integer values read: `numeric` (20240131), `epoch_seconds`, `epoch_millis`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        integers: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        suffix_pattern: Option<String>,
        /// One shard (one table, named by `suffix_pattern`) per period from `start`,
        /// forever: no shard count, and the tables of the coming periods are created
        /// ahead of time.
        #[serde(default, skip_serializing_if = "crate::config::is_false")]
        open_ended: bool,
        /// Open-ended: how many periods after the current one have their tables
        /// already (default 3).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ahead: Option<u32>,
        /// Open-ended: the periods in use now, from `start` to the current one plus
        /// `ahead`. Not configured: set from the clock by [`ClusterConfig::materialize`]
        /// whenever a layout is built, so the rules stay free of clocks.
        ///
        /// [`ClusterConfig::materialize`]: crate::ClusterConfig::materialize
        #[serde(skip)]
        horizon: Option<u32>,
    },
    /// ShardingSphere MOD.
    SsMod { sharding_count: u32 },
    /// ShardingSphere HASH_MOD.
    SsHashMod {
        sharding_count: u32,
        /// `long` (default), `integer` or `string`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        java_type: Option<String>,
    },
    /// ShardingSphere INTERVAL.
    SsInterval {
        datetime_lower: String,
        datetime_upper: String,
        datetime_interval_unit: String,
        #[serde(default = "one")]
        datetime_interval_amount: u32,
        sharding_suffix_pattern: String,
    },
}

fn default_virtual_buckets() -> u32 {
    160
}

fn one() -> u32 {
    1
}

/// Most shards a rule may have: plans list shards, and sets of them must stay small.
pub const MAX_SHARDS: u32 = 65_536;

impl RuleConfig {
    /// Validates and builds the algorithm; every problem becomes an error under `key`.
    pub fn build(&self, key: &str) -> Result<Algorithm, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let err = |field: &str, msg: String| ConfigError::new(format!("{key}.{field}"), msg);
        let check_shards = |field: &str, n: u32, errors: &mut Vec<ConfigError>| {
            if n == 0 || n > MAX_SHARDS {
                errors.push(err(field, format!("must be between 1 and {MAX_SHARDS}")));
            }
        };
        let algorithm = match self {
            RuleConfig::Mod { shards } => {
                check_shards("shards", *shards, &mut errors);
                Algorithm::Mod(Modulo { shards: *shards })
            }
            RuleConfig::SsMod { sharding_count } => {
                check_shards("sharding_count", *sharding_count, &mut errors);
                Algorithm::SsMod(Modulo {
                    shards: *sharding_count,
                })
            }
            RuleConfig::HashMod {
                shards,
                case_insensitive,
            } => {
                check_shards("shards", *shards, &mut errors);
                Algorithm::HashMod(HashMod {
                    shards: *shards,
                    case_insensitive: *case_insensitive,
                })
            }
            RuleConfig::Jump {
                shards,
                case_insensitive,
            } => {
                check_shards("shards", *shards, &mut errors);
                Algorithm::Jump(Jump {
                    shards: *shards,
                    case_insensitive: *case_insensitive,
                })
            }
            RuleConfig::Murmur {
                shards,
                seed,
                virtual_bucket_times,
                weights,
            } => {
                check_shards("shards", *shards, &mut errors);
                if *virtual_bucket_times == 0 || *virtual_bucket_times > 10_000 {
                    errors.push(err(
                        "virtual_bucket_times",
                        "must be between 1 and 10000".into(),
                    ));
                }
                let mut w = vec![1u32; (*shards).min(MAX_SHARDS) as usize];
                for (idx, weight) in weights {
                    match idx.parse::<u32>() {
                        Ok(i) if i < *shards => {
                            if *weight == 0 || *weight > 100 {
                                errors.push(err(
                                    &format!("weights.{idx}"),
                                    "weight must be between 1 and 100".into(),
                                ));
                            }
                            w[i as usize] = *weight;
                        }
                        _ => errors.push(err(
                            &format!("weights.{idx}"),
                            format!("`{idx}` is not a shard index below {shards}"),
                        )),
                    }
                }
                if !errors.is_empty() {
                    return Err(errors);
                }
                Algorithm::Murmur(MycatMurmur::new(*shards, *seed, *virtual_bucket_times, &w))
            }
            RuleConfig::Range {
                boundaries,
                open_below,
                open_above,
            } => {
                if boundaries.len() < 2 {
                    errors.push(err(
                        "boundaries",
                        "needs at least two boundaries (one shard)".into(),
                    ));
                } else if boundaries.len() as u64 - 1 > MAX_SHARDS as u64 {
                    errors.push(err("boundaries", format!("at most {MAX_SHARDS} shards")));
                }
                for pair in boundaries.windows(2) {
                    if pair[1] <= pair[0] {
                        errors.push(err(
                            "boundaries",
                            format!(
                                "must be strictly increasing: {} is followed by {} (ranges would overlap or be empty)",
                                pair[0], pair[1]
                            ),
                        ));
                        break;
                    }
                }
                Algorithm::Range(RangeRule {
                    boundaries: boundaries.iter().map(|b| *b as i128).collect(),
                    open_below: *open_below,
                    open_above: *open_above,
                })
            }
            RuleConfig::List {
                shards,
                values,
                default,
                case_insensitive,
            } => {
                check_shards("shards", *shards, &mut errors);
                let mut map = HashMap::new();
                let mut seen: HashMap<Vec<u8>, &str> = HashMap::new();
                for (k, s) in values {
                    if *s >= *shards {
                        errors.push(err(
                            &format!("values.{k}"),
                            format!("shard {s} is not below shards = {shards}"),
                        ));
                    }
                    let v = Value::number(k).unwrap_or_else(|| Value::text(k.clone()));
                    let canon = v.canonical(*case_insensitive).into_owned();
                    if let Some(other) = seen.insert(canon.clone(), k) {
                        errors.push(err(
                            &format!("values.{k}"),
                            format!("`{k}` and `{other}` are the same key"),
                        ));
                    }
                    map.insert(canon, *s);
                }
                if let Some(d) = default {
                    if *d >= *shards {
                        errors.push(err(
                            "default",
                            format!("shard {d} is not below shards = {shards}"),
                        ));
                    }
                }
                Algorithm::List(ListRule {
                    shards: *shards,
                    map,
                    default: *default,
                    case_insensitive: *case_insensitive,
                })
            }
            RuleConfig::Date {
                unit,
                start,
                end,
                time_zone,
                shards,
                integers,
                suffix_pattern,
                open_ended,
                ahead,
                horizon,
            } => {
                let shards = if *open_ended {
                    if shards.is_some() {
                        errors.push(err(
                            "shards",
                            "an open-ended rule has one shard per period; remove shards".into(),
                        ));
                    }
                    if end.is_some() {
                        errors.push(err(
                            "end",
                            "an open-ended rule has no end; remove end".into(),
                        ));
                    }
                    if suffix_pattern.is_none() {
                        errors.push(err(
                            "suffix_pattern",
                            "required with open_ended: each period's table is named by it, e.g. \"yyyyMM\"".into(),
                        ));
                    }
                    if horizon.is_some_and(|h| h > MAX_SHARDS) {
                        errors.push(err(
                            "start",
                            format!(
                                "more than {MAX_SHARDS} periods from start to now; start later"
                            ),
                        ));
                    }
                    horizon.unwrap_or(1).min(MAX_SHARDS)
                } else {
                    if ahead.is_some() {
                        errors.push(err("ahead", "only for open_ended rules".into()));
                    }
                    match shards {
                        Some(n) => {
                            check_shards("shards", *n, &mut errors);
                            *n
                        }
                        None => {
                            errors.push(err(
                                "shards",
                                "required (or open_ended = true for one shard per period, forever)"
                                    .into(),
                            ));
                            1
                        }
                    }
                };
                let unit = match unit.as_str() {
                    "day" => DateUnit::Day,
                    "week" => DateUnit::Week,
                    "month" => DateUnit::Month,
                    "quarter" => DateUnit::Quarter,
                    "year" => DateUnit::Year,
                    other => {
                        errors.push(err(
                            "unit",
                            format!("`{other}`: use day, week, month, quarter or year"),
                        ));
                        DateUnit::Day
                    }
                };
                let tz = match time_zone {
                    None => {
                        errors.push(err(
                            "time_zone",
                            "required: buckets are calendar periods in a time zone; e.g. \"UTC\" or \"Europe/Berlin\"".into(),
                        ));
                        jiff::tz::TimeZone::UTC
                    }
                    Some(name) => jiff::tz::TimeZone::get(name).unwrap_or_else(|_| {
                        errors.push(err("time_zone", format!("unknown time zone `{name}`")));
                        jiff::tz::TimeZone::UTC
                    }),
                };
                let ints = match integers.as_deref() {
                    None | Some("numeric") => IntDates::Numeric,
                    Some("epoch_seconds") => IntDates::EpochSeconds,
                    Some("epoch_millis") => IntDates::EpochMillis,
                    Some(other) => {
                        errors.push(err(
                            "integers",
                            format!("`{other}`: use numeric, epoch_seconds or epoch_millis"),
                        ));
                        IntDates::Numeric
                    }
                };
                let start_c = match parse_datetime(start) {
                    Some((c, None)) if c.nanos_of_day == 0 => c,
                    _ => {
                        errors.push(err(
                            "start",
                            format!("`{start}`: write a date as YYYY-MM-DD"),
                        ));
                        crate::algorithm::Civil {
                            days: 0,
                            nanos_of_day: 0,
                        }
                    }
                };
                let mut rule = DateRule {
                    unit,
                    start: start_c,
                    shards,
                    open_ended: *open_ended,
                    ahead: ahead.unwrap_or(DEFAULT_AHEAD),
                    wrap: end.is_some(),
                    tz,
                    ints,
                    suffix_pattern: suffix_pattern.clone(),
                };
                let (_, m, d) = crate::algorithm::civil_from_days(start_c.days);
                let aligned = match unit {
                    DateUnit::Day | DateUnit::Week => true,
                    DateUnit::Month => d == 1,
                    DateUnit::Quarter => d == 1 && (m - 1) % 3 == 0,
                    DateUnit::Year => d == 1 && m == 1,
                };
                if !aligned {
                    errors.push(err(
                        "start",
                        format!("`{start}` is not the first day of a {}", unit_name(unit)),
                    ));
                }
                if let Some(end) = end.as_ref().filter(|_| !*open_ended) {
                    match parse_datetime(end) {
                        Some((c, None)) if c.nanos_of_day == 0 && c.days >= start_c.days => {
                            let count = rule.bucket(c) + 1;
                            if count != shards as i64 {
                                errors.push(err(
                                    "shards",
                                    format!("{start} to {end} spans {count} {}s, so shards must be {count}", unit_name(unit)),
                                ));
                            }
                        }
                        _ => errors.push(err(
                            "end",
                            format!("`{end}`: write a date (YYYY-MM-DD) not before start"),
                        )),
                    }
                }
                rule.wrap = end.is_some();
                if *open_ended {
                    // Periods yet to come must get tables of their own: the pattern
                    // tells every period apart (a `yyyy` for months would not).
                    let mut seen = std::collections::HashSet::new();
                    let repeated = (0..OPEN_ENDED_CHECKED)
                        .filter_map(|p| rule.suffix(p))
                        .find(|sfx| !seen.insert(sfx.clone()));
                    if let (Some(sfx), Some(pattern)) = (repeated, suffix_pattern) {
                        errors.push(err(
                            "suffix_pattern",
                            format!(
                                "`{pattern}` names two periods `{sfx}`: an open-ended rule needs one \
                                 name per {}, e.g. yyyyMMdd for days, yyyyMM for months",
                                unit_name(unit)
                            ),
                        ));
                    }
                }
                Algorithm::Date(rule)
            }
            RuleConfig::SsHashMod {
                sharding_count,
                java_type,
            } => {
                check_shards("sharding_count", *sharding_count, &mut errors);
                let java_type = match java_type.as_deref() {
                    None | Some("long") => JavaType::Long,
                    Some("integer") => JavaType::Integer,
                    Some("string") => JavaType::String,
                    Some(other) => {
                        errors.push(err(
                            "java_type",
                            format!("`{other}`: use long, integer or string"),
                        ));
                        JavaType::Long
                    }
                };
                Algorithm::SsHashMod(SsHashMod {
                    shards: *sharding_count,
                    java_type,
                })
            }
            RuleConfig::SsInterval {
                datetime_lower,
                datetime_upper,
                datetime_interval_unit,
                datetime_interval_amount,
                sharding_suffix_pattern,
            } => {
                let unit = match datetime_interval_unit.to_ascii_uppercase().as_str() {
                    "HOURS" => IntervalUnit::Hours,
                    "DAYS" => IntervalUnit::Days,
                    "MONTHS" => IntervalUnit::Months,
                    "YEARS" => IntervalUnit::Years,
                    other => {
                        errors.push(err(
                            "datetime_interval_unit",
                            format!("`{other}`: use HOURS, DAYS, MONTHS or YEARS"),
                        ));
                        IntervalUnit::Days
                    }
                };
                let parse =
                    |field: &str, text: &str, errors: &mut Vec<ConfigError>| match parse_datetime(
                        text,
                    ) {
                        Some((c, None)) => c,
                        _ => {
                            errors.push(err(field, format!("`{text}`: write yyyy-MM-dd HH:mm:ss")));
                            crate::algorithm::Civil {
                                days: 0,
                                nanos_of_day: 0,
                            }
                        }
                    };
                let lower = parse("datetime_lower", datetime_lower, &mut errors);
                let upper = parse("datetime_upper", datetime_upper, &mut errors);
                if upper < lower {
                    errors.push(err("datetime_upper", "is before datetime_lower".into()));
                }
                if *datetime_interval_amount == 0 {
                    errors.push(err("datetime_interval_amount", "must be at least 1".into()));
                }
                let (_, _, d) = crate::algorithm::civil_from_days(lower.days);
                if matches!(unit, IntervalUnit::Months | IntervalUnit::Years)
                    && (d != 1 || lower.nanos_of_day != 0)
                {
                    errors.push(err(
                        "datetime_lower",
                        "with MONTHS or YEARS, start at the first instant of a month (yyyy-MM-01 00:00:00)".into(),
                    ));
                }
                let rule = SsInterval::new(
                    lower,
                    upper,
                    unit,
                    *datetime_interval_amount,
                    sharding_suffix_pattern.clone(),
                );
                if errors.is_empty() && rule.shards() > MAX_SHARDS {
                    errors.push(err(
                        "datetime_upper",
                        format!("more than {MAX_SHARDS} intervals"),
                    ));
                }
                Algorithm::SsInterval(rule)
            }
        };
        if errors.is_empty() {
            Ok(algorithm)
        } else {
            Err(errors)
        }
    }
}

fn unit_name(u: DateUnit) -> &'static str {
    match u {
        DateUnit::Day => "day",
        DateUnit::Week => "week",
        DateUnit::Month => "month",
        DateUnit::Quarter => "quarter",
        DateUnit::Year => "year",
    }
}

/// Periods of an open-ended rule whose table names are checked to differ.
const OPEN_ENDED_CHECKED: u32 = 1000;

/// Periods open-ended rules have tables for ahead of the current one, by default.
pub const DEFAULT_AHEAD: u32 = 3;

impl RuleConfig {
    /// An open-ended date rule's periods in use at `now_unix` (seconds): from its
    /// start to the current period plus `ahead`. `None` for other rules, or when the
    /// rule does not build (its errors are reported by [`RuleConfig::build`]).
    pub fn periods_at(&self, now_unix: i64) -> Option<u32> {
        let RuleConfig::Date {
            open_ended: true,
            ahead,
            ..
        } = self
        else {
            return None;
        };
        let Ok(Algorithm::Date(rule)) = self.build("") else {
            return None;
        };
        let current = rule.bucket_at(now_unix)?.max(0);
        let periods = current + 1 + i64::from(ahead.unwrap_or(DEFAULT_AHEAD));
        Some(u32::try_from(periods).unwrap_or(u32::MAX))
    }

    /// Sets an open-ended rule's periods in use (see [`RuleConfig::periods_at`]);
    /// `None`: the rule as configured.
    pub fn set_horizon(&mut self, periods: Option<u32>) {
        if let RuleConfig::Date { horizon, .. } = self {
            *horizon = periods;
        }
    }

    /// The rule as far as it places keys: an open-ended rule's periods in use and
    /// `ahead` only say how many tables exist, not where a key goes.
    pub fn placing(&self) -> RuleConfig {
        let mut r = self.clone();
        if let RuleConfig::Date { horizon, ahead, .. } = &mut r {
            *horizon = None;
            *ahead = None;
        }
        r
    }

    /// The rule's periods in use, when it is open-ended and they were set.
    pub fn horizon(&self) -> Option<u32> {
        match self {
            RuleConfig::Date { horizon, .. } => *horizon,
            _ => None,
        }
    }
}
