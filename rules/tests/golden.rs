//! Golden vectors: value → shard, pinned for every algorithm so placement can never
//! drift with a compiler, crate or refactoring.
//!
//! - `golden/java.txt` comes from `rules/golden/Golden.java`, run on the JVM with Guava:
//!   Mycat's PartitionByMurmurHash ring, ShardingSphere's HASH_MOD and MOD, and our own
//!   hash_mod and jump (whose definitions use the same murmur3_32 and Guava's
//!   consistentHash, an independent implementation of jump hash).
//! - The calendar and range algorithms are checked below against dates and bounds a
//!   reader can verify by hand.

use std::collections::BTreeMap;
use std::ops::Bound;

use rules::{Algorithm, RuleConfig, Value};

fn rule(toml_text: &str) -> Algorithm {
    let cfg: RuleConfig = toml::from_str(toml_text).unwrap();
    cfg.build("rules.test").unwrap()
}

fn params(p: &str) -> BTreeMap<&str, &str> {
    p.split(',').filter_map(|kv| kv.split_once('=')).collect()
}

#[test]
fn java_golden_vectors() {
    let text = include_str!("golden/java.txt");
    let mut checked = 0;
    let mut cache: BTreeMap<String, Algorithm> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (alg, rest) = line.split_once(' ').unwrap();
        let (param_text, rest) = rest.split_once(' ').unwrap();
        let (value, shard) = rest.rsplit_once(' ').unwrap();
        let expected: u32 = shard.parse().unwrap();
        let value = match value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            Some(s) => Value::text(s),
            None => Value::Int(value.parse().unwrap()),
        };
        let key = format!("{alg} {param_text}");
        let algorithm = cache.entry(key).or_insert_with(|| {
            let p = params(param_text);
            let spec = match alg {
                "murmur" => {
                    let mut s = format!(
                        "algorithm = \"murmur\"\nshards = {}\nseed = {}\nvirtual_bucket_times = {}\n",
                        p["shards"], p["seed"], p["vbt"]
                    );
                    if let Some(w) = p.get("weights") {
                        s.push_str("[weights]\n");
                        for (i, w) in w.split(':').enumerate() {
                            s.push_str(&format!("\"{i}\" = {w}\n"));
                        }
                    }
                    s
                }
                "hash_mod" => format!("algorithm = \"hash_mod\"\nshards = {}\n", p["shards"]),
                "jump" => format!("algorithm = \"jump\"\nshards = {}\n", p["shards"]),
                "ss_mod" => format!("algorithm = \"ss_mod\"\nsharding_count = {}\n", p["count"]),
                "ss_hash_mod" => {
                    let java_type = param_text.split(',').next().unwrap();
                    format!("algorithm = \"ss_hash_mod\"\nsharding_count = {}\njava_type = \"{java_type}\"\n", p["count"])
                }
                other => panic!("unknown algorithm {other}"),
            };
            rule(&spec)
        });
        assert_eq!(algorithm.shard_of(&value).unwrap(), expected, "{line}");
        checked += 1;
    }
    assert!(checked > 500, "only {checked} vectors");
}

#[test]
fn mod_vectors() {
    let m = rule("algorithm = \"mod\"\nshards = 4");
    let cases: [(i128, u32); 7] = [
        (0, 0),
        (5, 1),
        (-1, 3),
        (-4, 0),
        (-5, 3),
        (u64::MAX as i128, 3),
        (i64::MIN as i128, 0),
    ];
    for (v, s) in cases {
        assert_eq!(m.shard_of(&Value::Int(v)).unwrap(), s, "{v}");
    }
    assert_eq!(m.shard_of(&Value::text("13")).unwrap(), 1);
    assert!(m.shard_of(&Value::text("13abc")).is_err());
    assert!(m.shard_of(&Value::number("1.5").unwrap()).is_err());
}

#[test]
fn range_vectors() {
    let closed = rule("algorithm = \"range\"\nboundaries = [0, 100, 1000, 10000]");
    let cases: [(i128, Option<u32>); 7] = [
        (-1, None),
        (0, Some(0)),
        (99, Some(0)),
        (100, Some(1)),
        (999, Some(1)),
        (9999, Some(2)),
        (10000, None),
    ];
    for (v, s) in cases {
        assert_eq!(closed.shard_of(&Value::Int(v)).ok(), s, "{v}");
    }
    let open = rule(
        "algorithm = \"range\"\nboundaries = [0, 100, 1000]\nopen_below = true\nopen_above = true",
    );
    assert_eq!(open.shard_of(&Value::Int(-5)).unwrap(), 0);
    assert_eq!(open.shard_of(&Value::Int(5000)).unwrap(), 1);
    let r = |lo: i128, hi: i128| {
        closed
            .shards_in(
                Bound::Included(&Value::Int(lo)),
                Bound::Included(&Value::Int(hi)),
            )
            .unwrap()
            .as_slice()
            .to_vec()
    };
    assert_eq!(r(50, 150), [0, 1]);
    assert_eq!(r(-500, 50), [0]);
    assert_eq!(r(100, 100), [1]);
    assert_eq!(r(20000, 30000), Vec::<u32>::new());
    let below = closed
        .shards_in(Bound::Unbounded, Bound::Excluded(&Value::Int(100)))
        .unwrap();
    assert_eq!(below.as_slice(), &[0]);
}

#[test]
fn list_vectors() {
    let l = rule(
        "algorithm = \"list\"\nshards = 3\ndefault = 2\ncase_insensitive = true\n[values]\nCN = 0\nUS = 1\n\"7\" = 1\n",
    );
    assert_eq!(l.shard_of(&Value::text("cn")).unwrap(), 0);
    assert_eq!(l.shard_of(&Value::text("US ")).unwrap(), 1);
    assert_eq!(l.shard_of(&Value::Int(7)).unwrap(), 1);
    assert_eq!(l.shard_of(&Value::text("FR")).unwrap(), 2);
    let strict = rule("algorithm = \"list\"\nshards = 2\n[values]\na = 0\nb = 1\n");
    assert!(strict.shard_of(&Value::text("c")).is_err());
}

fn d(s: &str) -> Value {
    Value::text(s)
}

#[test]
fn date_vectors_month_quarter_year_week_day() {
    let month = rule("algorithm = \"date\"\nunit = \"month\"\nstart = \"2024-01-01\"\ntime_zone = \"UTC\"\nshards = 24");
    for (v, s) in [
        ("2024-01-01", 0),
        ("2024-01-31 23:59:59.999999", 0),
        ("2024-02-01 00:00:00", 1),
        ("2024-02-29", 1),
        ("2024-12-31", 11),
        ("2025-01-01", 12),
        ("2025-12-31 23:59:59", 23),
        ("20250315", 14),
    ] {
        assert_eq!(month.shard_of(&d(v)).unwrap(), s, "{v}");
    }
    assert_eq!(month.shard_of(&Value::Int(20_240_315)).unwrap(), 2);
    assert!(
        month.shard_of(&d("2023-12-31")).is_err(),
        "before the start"
    );
    assert!(
        month.shard_of(&d("2026-01-01")).is_err(),
        "after the last shard"
    );

    let quarter = rule("algorithm = \"date\"\nunit = \"quarter\"\nstart = \"2024-04-01\"\ntime_zone = \"UTC\"\nshards = 8");
    for (v, s) in [
        ("2024-04-01", 0),
        ("2024-06-30", 0),
        ("2024-07-01", 1),
        ("2025-03-31", 3),
        ("2025-04-01", 4),
    ] {
        assert_eq!(quarter.shard_of(&d(v)).unwrap(), s, "{v}");
    }
    let year = rule("algorithm = \"date\"\nunit = \"year\"\nstart = \"2020-01-01\"\ntime_zone = \"UTC\"\nshards = 10");
    assert_eq!(year.shard_of(&d("2020-12-31 23:59:59")).unwrap(), 0);
    assert_eq!(year.shard_of(&d("2021-01-01")).unwrap(), 1);
    assert_eq!(year.shard_of(&d("2029-06-01")).unwrap(), 9);
    let week = rule("algorithm = \"date\"\nunit = \"week\"\nstart = \"2024-01-01\"\ntime_zone = \"UTC\"\nshards = 60");
    assert_eq!(week.shard_of(&d("2024-01-07")).unwrap(), 0);
    assert_eq!(week.shard_of(&d("2024-01-08")).unwrap(), 1);
    assert_eq!(week.shard_of(&d("2024-12-30")).unwrap(), 52);
    let day = rule("algorithm = \"date\"\nunit = \"day\"\nstart = \"2024-02-28\"\ntime_zone = \"UTC\"\nshards = 5");
    assert_eq!(day.shard_of(&d("2024-02-29")).unwrap(), 1);
    assert_eq!(day.shard_of(&d("2024-03-01")).unwrap(), 2);
}

#[test]
fn between_across_months_touches_exactly_those_months() {
    let month = rule("algorithm = \"date\"\nunit = \"month\"\nstart = \"2024-01-01\"\ntime_zone = \"UTC\"\nshards = 24");
    let between = |a: &str, b: &str| {
        month
            .shards_in(Bound::Included(&d(a)), Bound::Included(&d(b)))
            .unwrap()
            .as_slice()
            .to_vec()
    };
    assert_eq!(between("2024-01-15", "2024-03-02"), [0, 1, 2]);
    assert_eq!(
        between("2024-01-31 23:00:00", "2024-02-01 01:00:00"),
        [0, 1]
    );
    assert_eq!(between("2024-05-10", "2024-05-11"), [4]);
    assert_eq!(between("2023-06-01", "2024-02-01"), [0, 1]);
    assert_eq!(between("2025-11-01", "2027-01-01"), [22, 23]);
    // `< '2024-03-01'` stops before March; `<= '2024-03-01'` includes it.
    let lt = month
        .shards_in(
            Bound::Included(&d("2024-01-15")),
            Bound::Excluded(&d("2024-03-01")),
        )
        .unwrap();
    assert_eq!(lt.as_slice(), &[0, 1]);
    let le = month
        .shards_in(
            Bound::Included(&d("2024-01-15")),
            Bound::Included(&d("2024-03-01")),
        )
        .unwrap();
    assert_eq!(le.as_slice(), &[0, 1, 2]);
    let from = month
        .shards_in(Bound::Included(&d("2025-10-05")), Bound::Unbounded)
        .unwrap();
    assert_eq!(from.as_slice(), &[21, 22, 23]);
}

#[test]
fn time_zones_and_daylight_saving() {
    let berlin = rule("algorithm = \"date\"\nunit = \"day\"\nstart = \"2024-03-01\"\ntime_zone = \"Europe/Berlin\"\nshards = 400");
    // Wall-clock values are taken as written.
    assert_eq!(berlin.shard_of(&d("2024-03-31 02:30:00")).unwrap(), 30);
    // Instants are converted: 2024-03-30T23:30Z is 00:30 CET on the 31st (DST starts 02:00).
    assert_eq!(berlin.shard_of(&d("2024-03-30T23:30:00Z")).unwrap(), 30);
    // 2024-03-31T22:30Z is 00:30 CEST on April 1 (UTC+2 after the change).
    assert_eq!(berlin.shard_of(&d("2024-03-31T22:30:00Z")).unwrap(), 31);
    // The 25-hour day: 2024-10-27. 22:59Z on the 26th is 00:59 CEST on the 27th;
    // 22:59Z on the 27th is 23:59 CET, still the 27th.
    assert_eq!(berlin.shard_of(&d("2024-10-26T22:59:00Z")).unwrap(), 240);
    assert_eq!(berlin.shard_of(&d("2024-10-27T22:59:00Z")).unwrap(), 240);
    assert_eq!(berlin.shard_of(&d("2024-10-27T23:00:00Z")).unwrap(), 241);
    assert_eq!(
        berlin.shard_of(&d("2024-10-27 01:00:00+05:00")).unwrap(),
        239
    );

    let epoch = rule(
        "algorithm = \"date\"\nunit = \"month\"\nstart = \"2024-01-01\"\ntime_zone = \"America/New_York\"\nshards = 12\nintegers = \"epoch_seconds\"",
    );
    // 1706745600 = 2024-02-01T00:00:00Z = Jan 31, 19:00 in New York.
    assert_eq!(epoch.shard_of(&Value::Int(1_706_745_600)).unwrap(), 0);
    assert_eq!(
        epoch
            .shard_of(&Value::Int(1_706_745_600 + 5 * 3600))
            .unwrap(),
        1
    );
}

#[test]
fn wrap_around_like_mycat_partition_by_date() {
    // One-day buckets from Jan 1 to Jan 3: three shards, then it starts over.
    let wrap = rule(
        "algorithm = \"date\"\nunit = \"day\"\nstart = \"2024-01-01\"\nend = \"2024-01-03\"\ntime_zone = \"UTC\"\nshards = 3",
    );
    for (v, s) in [
        ("2024-01-01", 0),
        ("2024-01-03", 2),
        ("2024-01-04", 0),
        ("2024-01-08", 1),
        ("2025-01-01", 366 % 3),
    ] {
        assert_eq!(wrap.shard_of(&d(v)).unwrap(), s, "{v}");
    }
    let all = wrap
        .shards_in(
            Bound::Included(&d("2024-01-02")),
            Bound::Included(&d("2024-01-04")),
        )
        .unwrap();
    assert_eq!(all.as_slice(), &[0, 1, 2]);
    let two = wrap
        .shards_in(
            Bound::Included(&d("2024-01-03")),
            Bound::Included(&d("2024-01-04")),
        )
        .unwrap();
    assert_eq!(two.as_slice(), &[0, 2]);
}

#[test]
fn shardingsphere_interval_vectors() {
    let months = rule(
        "algorithm = \"ss_interval\"\ndatetime_lower = \"2024-01-01 00:00:00\"\ndatetime_upper = \"2024-12-31 23:59:59\"\n\
         datetime_interval_unit = \"MONTHS\"\nsharding_suffix_pattern = \"yyyyMM\"",
    );
    assert_eq!(months.shards(), 12);
    assert_eq!(months.shard_of(&d("2024-03-15 10:00:00")).unwrap(), 2);
    assert_eq!(months.suffix(2).as_deref(), Some("202403"));
    assert!(months.shard_of(&d("2025-01-01 00:00:00")).is_err());
    let days = rule(
        "algorithm = \"ss_interval\"\ndatetime_lower = \"2024-01-01 00:00:00\"\ndatetime_upper = \"2024-01-10 00:00:00\"\n\
         datetime_interval_unit = \"DAYS\"\ndatetime_interval_amount = 2\nsharding_suffix_pattern = \"yyyyMMdd\"",
    );
    assert_eq!(days.shards(), 5);
    assert_eq!(days.shard_of(&d("2024-01-04 23:00:00")).unwrap(), 1);
    assert_eq!(days.suffix(1).as_deref(), Some("20240103"));
    assert_eq!(days.shard_of(&d("2024-01-10 12:00:00")).unwrap(), 4);
}
