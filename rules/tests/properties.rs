//! Properties every algorithm keeps, over random rules and values:
//! each value lands on exactly one shard in range, and range answers never miss a
//! shard that a value inside the range lands on.

use std::ops::Bound;

use proptest::prelude::*;
use rules::{Algorithm, RuleConfig, Value};

fn build(spec: &str) -> Algorithm {
    let cfg: RuleConfig = toml::from_str(spec).unwrap();
    cfg.build("rules.p").unwrap()
}

fn integer_rules() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        (1u32..64).prop_map(|n| build(&format!("algorithm = \"mod\"\nshards = {n}"))),
        (1u32..64).prop_map(|n| build(&format!("algorithm = \"hash_mod\"\nshards = {n}"))),
        (1u32..64).prop_map(|n| build(&format!("algorithm = \"jump\"\nshards = {n}"))),
        (1u32..12, 0i32..5).prop_map(|(n, seed)| build(&format!(
            "algorithm = \"murmur\"\nshards = {n}\nseed = {seed}\nvirtual_bucket_times = 20"
        ))),
        (proptest::collection::btree_set(-10_000i64..10_000, 2..10), any::<bool>(), any::<bool>()).prop_map(
            |(b, below, above)| {
                let list: Vec<String> = b.iter().map(|x| x.to_string()).collect();
                build(&format!(
                    "algorithm = \"range\"\nboundaries = [{}]\nopen_below = {below}\nopen_above = {above}",
                    list.join(", ")
                ))
            }
        ),
        (1u32..8).prop_map(|n| build(&format!(
            "algorithm = \"list\"\nshards = {n}\ndefault = 0\n[values]\n\"1\" = {}\n\"2\" = {}\n\"-3\" = {}",
            n - 1,
            n / 2,
            n / 3
        ))),
        (1u32..64).prop_map(|n| build(&format!("algorithm = \"ss_mod\"\nsharding_count = {n}"))),
        (1u32..64).prop_map(|n| build(&format!("algorithm = \"ss_hash_mod\"\nsharding_count = {n}"))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_integer_has_one_shard_in_range(rule in integer_rules(), v in any::<i64>()) {
        if let Ok(s) = rule.shard_of(&Value::Int(v as i128)) {
            prop_assert!(s < rule.shards());
            // Deterministic: the same answer every time, and for the same value as text.
            prop_assert_eq!(rule.shard_of(&Value::Int(v as i128)).unwrap(), s);
            prop_assert_eq!(rule.shard_of(&Value::text(v.to_string())).unwrap(), s);
        }
    }

    #[test]
    fn integer_ranges_are_supersets(rule in integer_rules(), lo in -20_000i64..20_000, len in 0i64..600,
                                    lo_open in any::<bool>(), hi_open in any::<bool>()) {
        let hi = lo + len;
        let (a, b) = (Value::Int(lo as i128), Value::Int(hi as i128));
        let low = if lo_open { Bound::Excluded(&a) } else { Bound::Included(&a) };
        let high = if hi_open { Bound::Excluded(&b) } else { Bound::Included(&b) };
        let set = rule.shards_in(low, high).unwrap();
        let first = if lo_open { lo + 1 } else { lo };
        let last = if hi_open { hi - 1 } else { hi };
        for x in first..=last {
            if let Ok(s) = rule.shard_of(&Value::Int(x as i128)) {
                prop_assert!(set.contains(s), "{x} on shard {s} missing from {set:?}");
            }
        }
        for s in set.iter() {
            prop_assert!(s < rule.shards());
        }
    }

    #[test]
    fn open_ended_ranges_are_supersets(rule in integer_rules(), pivot in -20_000i64..20_000, probe in -25_000i64..25_000) {
        let p = Value::Int(pivot as i128);
        let above = rule.shards_in(Bound::Included(&p), Bound::Unbounded).unwrap();
        let below = rule.shards_in(Bound::Unbounded, Bound::Excluded(&p)).unwrap();
        if let Ok(s) = rule.shard_of(&Value::Int(probe as i128)) {
            if probe >= pivot {
                prop_assert!(above.contains(s));
            } else {
                prop_assert!(below.contains(s));
            }
        }
    }

    #[test]
    fn strings_have_one_shard(n in 1u32..50, s in ".{0,40}", ci in any::<bool>()) {
        for spec in [
            format!("algorithm = \"hash_mod\"\nshards = {n}\ncase_insensitive = {ci}"),
            format!("algorithm = \"jump\"\nshards = {n}\ncase_insensitive = {ci}"),
            format!("algorithm = \"murmur\"\nshards = {}\nvirtual_bucket_times = 10", n.min(10)),
            format!("algorithm = \"ss_hash_mod\"\nsharding_count = {n}\njava_type = \"string\""),
        ] {
            let rule = build(&spec);
            let shard = rule.shard_of(&Value::text(s.clone())).unwrap();
            prop_assert!(shard < rule.shards());
            if ci && !spec.contains("murmur") && !spec.contains("ss_hash") {
                prop_assert_eq!(rule.shard_of(&Value::text(s.to_uppercase())).unwrap(), shard);
            }
        }
    }

    #[test]
    fn ascii_case_and_trailing_spaces_do_not_move_ci_keys(n in 1u32..50, s in "[a-zA-Z0-9_]{0,30}",
                                                          flips in proptest::collection::vec(any::<bool>(), 30),
                                                          pad in 0usize..3) {
        let flipped: String = s.chars().zip(flips.iter().cycle()).map(|(c, f)| {
            if *f { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() }
        }).collect::<String>() + &" ".repeat(pad);
        for spec in [
            format!("algorithm = \"hash_mod\"\nshards = {n}\ncase_insensitive = true"),
            format!("algorithm = \"jump\"\nshards = {n}\ncase_insensitive = true"),
        ] {
            let rule = build(&spec);
            prop_assert_eq!(rule.shard_of(&Value::text(s.clone())).unwrap(), rule.shard_of(&Value::text(flipped.clone())).unwrap());
        }
    }

    #[test]
    fn date_ranges_are_supersets(unit in prop::sample::select(vec!["day", "week", "month", "quarter", "year"]),
                                 wrap in any::<bool>(),
                                 start_day in 0i64..3000, len_days in 0i64..900, probe in 0i64..900,
                                 tz in prop::sample::select(vec!["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])) {
        let start = match unit { "day" | "week" => "2020-01-01", "month" => "2020-01-01", "quarter" => "2020-04-01", _ => "2020-01-01" };
        let spec = if wrap {
            let end = match unit { "day" => "2020-01-10", "week" => "2020-02-11", "month" => "2020-06-01", "quarter" => "2021-01-01", _ => "2023-01-01" };
            let n = match unit { "day" => 10, "week" => 6, "month" => 6, "quarter" => 4, _ => 4 };
            format!("algorithm = \"date\"\nunit = \"{unit}\"\nstart = \"{start}\"\nend = \"{end}\"\ntime_zone = \"{tz}\"\nshards = {n}")
        } else {
            format!("algorithm = \"date\"\nunit = \"{unit}\"\nstart = \"{start}\"\ntime_zone = \"{tz}\"\nshards = 2000")
        };
        let rule = build(&spec);
        let day = |offset: i64| {
            let (y, m, d) = rules::algorithm::civil_from_days(18_262 + offset);
            format!("{y:04}-{m:02}-{d:02} 12:00:00")
        };
        let (a, b) = (Value::text(day(start_day)), Value::text(day(start_day + len_days)));
        let set = rule.shards_in(Bound::Included(&a), Bound::Included(&b)).unwrap();
        let x = start_day + probe.min(len_days);
        if let Ok(s) = rule.shard_of(&Value::text(day(x))) {
            prop_assert!(s < rule.shards());
            prop_assert!(set.contains(s), "{} on shard {s} missing from {set:?}", day(x));
        }
    }
}
