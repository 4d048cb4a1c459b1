#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| proxy::fuzzing::route_sql(data));
