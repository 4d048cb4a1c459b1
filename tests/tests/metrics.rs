//! The HTTP endpoint: `/metrics` is valid Prometheus text whose counters move with
//! traffic, `/health` and `/ready` answer, and an address asked for that cannot be
//! had stops shardgate with a clear error. One sandbox (one group) for the binary.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::OnceLock;

use mysql_async::prelude::*;
use tests::{Proxy, Sandbox, PASSWORD, USER};

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[0]).expect("start the MariaDB sandbox"))
}

fn config(http: &str) -> String {
    format!(
        "passthrough_node = \"dn1\"\n[admin]\nhttp_listen = \"{http}\"\n\
         listen = \"127.0.0.1:0\"\nusers = [{{ name = \"dba\", password = \"dba\" }}]\n\
         [[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\nschemas = [\"*\"]\n\
         [nodes.dn1]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n",
        sandbox().groups[0].primary.address()
    )
}

/// (status, body) of `method path`, over a connection of its own.
fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to /metrics");
    write!(s, "{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    (status, body.to_string())
}

/// Samples by (name, sorted labels).
type Samples = HashMap<(String, Vec<(String, String)>), f64>;

/// Prometheus text exposition, parsed strictly: every sample as (name, labels) →
/// value. Any line that is not a comment, a blank or a well-formed sample fails.
fn parse(text: &str) -> Samples {
    let mut samples = HashMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let kind = rest.split(' ').nth(1).unwrap_or("");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "bad TYPE line: {line}"
                );
            }
            continue;
        }
        let name_end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(line.len());
        let name = &line[..name_end];
        assert!(
            !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()),
            "bad metric name: {line}"
        );
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '}' {
                    end = Some(i);
                    break;
                }
                if c == ',' {
                    continue;
                }
                let key_start = i;
                let mut key_end = i;
                for (j, k) in chars.by_ref() {
                    if k == '=' {
                        key_end = j;
                        break;
                    }
                }
                let key = &body[key_start..key_end];
                assert!(!key.is_empty(), "bad label in {line}");
                assert_eq!(
                    chars.next().map(|x| x.1),
                    Some('"'),
                    "unquoted label in {line}"
                );
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\\')) => value.push(chars.next().expect("escape").1),
                        Some((_, '"')) => break,
                        Some((_, c)) => value.push(c),
                        None => panic!("unterminated label value in {line}"),
                    }
                }
                labels.push((key.to_string(), value));
            }
            let end = end.unwrap_or_else(|| panic!("unclosed labels in {line}"));
            rest = &body[end + 1..];
        }
        let mut fields = rest.split_whitespace();
        let value = fields
            .next()
            .unwrap_or_else(|| panic!("no value in {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        if let Some(ts) = fields.next() {
            ts.parse::<i64>()
                .unwrap_or_else(|_| panic!("bad timestamp in {line}"));
        }
        assert!(fields.next().is_none(), "trailing fields in {line}");
        labels.sort();
        samples.insert((name.to_string(), labels), value);
    }
    samples
}

fn total(samples: &Samples, name: &str) -> f64 {
    samples
        .iter()
        .filter(|((n, _), _)| n == name)
        .map(|(_, v)| *v)
        .sum()
}

#[tokio::test]
async fn metrics_parse_and_move_with_traffic_and_health_answers() {
    let port = tests::free_port();
    let p = Proxy::with_config(&config(&format!("127.0.0.1:{port}")));
    let mut c = p.conn(None).await;
    c.query_drop("SELECT 1").await.unwrap();
    let (status, body) = http(port, "GET", "/metrics");
    assert_eq!(status, 200);
    let before = parse(&body);
    for _ in 0..20 {
        let _: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    }
    let (_, body) = http(port, "GET", "/metrics");
    let after = parse(&body);
    for name in [
        "shardgate_statements_total",
        "shardgate_command_seconds_count",
    ] {
        let (b, a) = (total(&before, name), total(&after, name));
        assert!(a >= b + 20.0, "{name}: {b} then {a}");
    }
    let up = (
        "shardgate_backend_up".to_string(),
        vec![
            ("node".to_string(), "dn1".to_string()),
            ("role".to_string(), "primary".to_string()),
        ],
    );
    assert_eq!(after.get(&up), Some(&1.0), "{body}");
    assert!(total(&after, "shardgate_pool_connections") >= 1.0);
    let selects = (
        "shardgate_statements_total".to_string(),
        vec![
            ("kind".to_string(), "select".to_string()),
            ("result".to_string(), "ok".to_string()),
        ],
    );
    let moved =
        after.get(&selects).copied().unwrap_or(0.0) - before.get(&selects).copied().unwrap_or(0.0);
    assert!(moved >= 20.0, "{moved} selects counted");
    let e = c.query_drop("SELECT * FROM no_such_db.t").await;
    assert!(e.is_err());
    let (_, body) = http(port, "GET", "/metrics");
    let last = parse(&body);
    let failed = (
        "shardgate_statements_total".to_string(),
        vec![
            ("kind".to_string(), "select".to_string()),
            ("result".to_string(), "error".to_string()),
        ],
    );
    assert!(last.get(&failed).copied().unwrap_or(0.0) >= 1.0, "{body}");
    for name in ["shardgate_client_bytes_total", "shardgate_config_version"] {
        assert!(total(&last, name) > 0.0, "{name} in {body}");
    }
    assert_eq!(http(port, "GET", "/health"), (200, "ok\n".to_string()));
    assert_eq!(http(port, "GET", "/ready").0, 200);
    assert_eq!(http(port, "GET", "/nope").0, 404);
    assert_eq!(http(port, "POST", "/metrics").0, 405);
}

#[test]
fn an_http_address_asked_for_and_taken_stops_shardgate() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shardgate.toml");
    let text = format!(
        "{}[server]\nlisten = \"127.0.0.1:0\"\n",
        config(&format!("127.0.0.1:{port}"))
    );
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(tests::shardgate_bin())
        .arg("--config")
        .arg(&path)
        .env("SHARDGATE_LOG", "warn")
        .output()
        .expect("run shardgate");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot serve HTTP on 127.0.0.1:{port}")),
        "{err}"
    );
    drop(taken);
}

#[tokio::test]
async fn ready_waits_for_every_primary() {
    let port = tests::free_port();
    // dn2's primary is a port where nothing listens.
    let dead = tests::free_port();
    let body = format!(
        "{}[nodes.dn2]\nprimary = \"127.0.0.1:{dead}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n",
        config(&format!("127.0.0.1:{port}"))
    );
    let _p = Proxy::with_config(&body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (status, text) = loop {
        let (status, text) = http(port, "GET", "/ready");
        // dn1 answers the first health round; dn2 never does.
        let settled = status == 503 && !text.contains("dn1");
        if settled || std::time::Instant::now() > deadline {
            break (status, text);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("dn2") && !text.contains("dn1"), "{text}");
    let (_, metrics) = http(port, "GET", "/metrics");
    assert!(
        metrics.contains("shardgate_backend_up{node=\"dn2\",role=\"primary\"} 0"),
        "{metrics}"
    );
}
