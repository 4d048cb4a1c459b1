//! Soak: mixed driver and sysbench traffic through shardgate while backends crash and
//! restart and replicas lag, then checks that nothing acknowledged was lost and that
//! shardgate's file descriptors, backend connections and memory came back down.
//!
//! `SOAK_SECONDS` sets the length (20 s in `scripts/test`; `scripts/soak` runs it for
//! minutes). Every write a client saw succeed is kept in a ledger; a write whose
//! answer was an error may or may not have happened, and either is accepted, but a
//! cross-shard transfer must have happened on both shards or on neither.

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::Conn;
use tests::rng::Rng;
use tests::{direct, Proxy, Sandbox, PASSWORD, USER};

const WORKERS: u64 = 6;
const DB: &str = "soak";

fn seconds() -> u64 {
    std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

/// What a worker knows of a row: its value for sure, or the values it may have.
#[derive(Debug, Clone)]
enum Known {
    Sure(i64),
    /// `None`: the row may not exist.
    Maybe(Vec<Option<i64>>),
}

/// A transfer whose COMMIT failed: both rows moved, or neither.
#[derive(Debug, Clone)]
struct Transfer {
    from: (i64, i64),
    to: (i64, i64),
}

#[derive(Default)]
struct Outcome {
    rows: HashMap<i64, Known>,
    transfers: Vec<Transfer>,
    acknowledged: u64,
    failed: u64,
    stale_reads: Vec<String>,
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// shardgate's connections to every server (the sandbox user's sessions).
fn backend_connections(s: &Sandbox) -> usize {
    let mut n = 0;
    for g in &s.groups {
        for i in std::iter::once(&g.primary).chain(&g.replicas) {
            if let Ok(out) = s.exec(
                i,
                &format!(
                    "SELECT COUNT(*) FROM information_schema.processlist WHERE user = '{USER}'"
                ),
            ) {
                n += out.trim().parse::<usize>().unwrap_or(0);
            }
        }
    }
    n
}

async fn connect(p: &Proxy) -> Option<Conn> {
    Conn::new(p.opts("app", "pw", Some(DB))).await.ok()
}

/// One client: inserts, updates, reads its own writes, moves amounts across shards.
async fn worker(p: Arc<Proxy>, w: u64, stop: Arc<AtomicBool>) -> Outcome {
    let mut out = Outcome::default();
    let mut rng = Rng(0x50A4 + w);
    let mut next_id = (w as i64 + 1) * 1_000_000;
    let mut conn = None;
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = conn.as_mut() else {
            conn = connect(&p).await;
            if conn.is_none() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            continue;
        };
        let sure: Vec<i64> = out
            .rows
            .iter()
            .filter_map(|(id, k)| matches!(k, Known::Sure(_)).then_some(*id))
            .collect();
        let roll = rng.below(10);
        let ok = if roll < 4 || sure.len() < 2 {
            let (id, v) = (next_id, rng.below(1000) as i64);
            next_id += 1;
            let r = c
                .query_drop(format!(
                    "INSERT INTO ledger (id, owner, v) VALUES ({id}, {w}, {v})"
                ))
                .await;
            out.rows.insert(
                id,
                match r {
                    Ok(()) => Known::Sure(v),
                    Err(_) => Known::Maybe(vec![None, Some(v)]),
                },
            );
            r.is_ok()
        } else if roll < 7 {
            let id = sure[rng.below(sure.len())];
            let Some(Known::Sure(old)) = out.rows.get(&id).cloned() else {
                continue;
            };
            let d = rng.below(100) as i64 + 1;
            let r = c
                .query_drop(format!("UPDATE ledger SET v = v + {d} WHERE id = {id}"))
                .await;
            out.rows.insert(
                id,
                match &r {
                    Ok(()) if c.affected_rows() == 1 => Known::Sure(old + d),
                    Ok(()) => {
                        out.stale_reads
                            .push(format!("UPDATE of {id} matched no row"));
                        Known::Maybe(vec![Some(old), Some(old + d)])
                    }
                    Err(_) => Known::Maybe(vec![Some(old), Some(old + d)]),
                },
            );
            r.is_ok()
        } else if roll < 9 {
            // Causal reads: the session sees its own acknowledged writes, replicas
            // lagging or not.
            let id = sure[rng.below(sure.len())];
            let Some(Known::Sure(v)) = out.rows.get(&id).cloned() else {
                continue;
            };
            match c
                .query_first::<i64, _>(format!("SELECT v FROM ledger WHERE id = {id}"))
                .await
            {
                Ok(Some(seen)) if seen == v => true,
                Ok(seen) => {
                    out.stale_reads
                        .push(format!("row {id}: read {seen:?}, wrote {v}"));
                    true
                }
                Err(_) => false,
            }
        } else {
            let (a, b) = (sure[rng.below(sure.len())], sure[rng.below(sure.len())]);
            if a == b {
                continue;
            }
            let (Some(Known::Sure(va)), Some(Known::Sure(vb))) =
                (out.rows.get(&a).cloned(), out.rows.get(&b).cloned())
            else {
                continue;
            };
            let mut tx = async {
                c.query_drop("BEGIN").await?;
                c.query_drop(format!("UPDATE ledger SET v = v - 1 WHERE id = {a}"))
                    .await?;
                c.query_drop(format!("UPDATE ledger SET v = v + 1 WHERE id = {b}"))
                    .await?;
                c.query_drop("COMMIT").await
            }
            .await;
            if tx.is_err() {
                // Whatever is left open is rolled back; the outcome is unknown.
                let _ = c.query_drop("ROLLBACK").await;
            }
            match &mut tx {
                Ok(()) => {
                    out.rows.insert(a, Known::Sure(va - 1));
                    out.rows.insert(b, Known::Sure(vb + 1));
                }
                Err(_) => {
                    out.rows
                        .insert(a, Known::Maybe(vec![Some(va), Some(va - 1)]));
                    out.rows
                        .insert(b, Known::Maybe(vec![Some(vb), Some(vb + 1)]));
                    out.transfers.push(Transfer {
                        from: (a, va),
                        to: (b, vb),
                    });
                }
            }
            tx.is_ok()
        };
        if ok {
            out.acknowledged += 1;
        } else {
            out.failed += 1;
            // The session may be gone with its backend: start a new one.
            if let Some(c) = conn.take() {
                drop(c);
            }
        }
    }
    out
}

/// Crashes and restarts servers and makes replicas lag, in turn, until `stop`.
fn chaos(
    mut s: Sandbox,
    stop: Arc<AtomicBool>,
    period: Duration,
    faults: Arc<AtomicU64>,
) -> Sandbox {
    let mut step = 0;
    let nap = |d: Duration| {
        let until = Instant::now() + d;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    nap(period / 2);
    while !stop.load(Ordering::Relaxed) {
        let g = step % 2;
        match step % 4 {
            0 => {
                let r = &mut s.groups[g].replicas[0];
                r.crash().expect("crash a replica");
                nap(Duration::from_millis(500));
                r.restart().expect("restart a replica");
            }
            1 => {
                let bins = s.binaries().clone();
                let r = &s.groups[g].replicas[0];
                let _ = r.exec(&bins, "STOP SLAVE SQL_THREAD");
                nap(Duration::from_secs(2));
                let _ = r.exec(&bins, "START SLAVE SQL_THREAD");
            }
            _ => {
                let p = &mut s.groups[g].primary;
                p.crash().expect("crash a primary");
                nap(Duration::from_millis(500));
                p.restart().expect("restart a primary");
            }
        }
        faults.fetch_add(1, Ordering::Relaxed);
        step += 1;
        nap(period);
    }
    s
}

fn sysbench(p: &Proxy, args: &[&str], limit: Duration) -> std::process::Output {
    // A client stuck retrying must end the test, not hang it.
    Command::new("timeout")
        .arg(limit.as_secs().to_string())
        .arg("sysbench")
        .arg("oltp_read_write")
        .args([
            "--mysql-host=127.0.0.1",
            &format!("--mysql-port={}", p.port),
            "--mysql-user=app",
            "--mysql-password=pw",
            &format!("--mysql-db={DB}"),
            "--tables=2",
            "--table-size=500",
            "--db-ps-mode=disable",
        ])
        .args(args)
        .output()
        .expect("run sysbench (scripts/test installs it)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_and_resources_come_back() {
    let secs = seconds();
    let s = Sandbox::start(&[1, 1]).expect("start the MariaDB sandbox");
    for g in &s.groups {
        let mut c = direct(&g.primary, None).await;
        c.query_drop(format!("CREATE DATABASE {DB}")).await.unwrap();
    }
    s.sync().unwrap();
    let (g1, g2) = (&s.groups[0], &s.groups[1]);
    let p = Arc::new(Proxy::with_config(&format!(
        "[[users]]\nname = \"app\"\npassword = \"pw\"\n\
         [nodes.dn1]\nprimary = \"{}\"\nreplicas = [\"{}\"]\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [nodes.dn2]\nprimary = \"{}\"\nreplicas = [\"{}\"]\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [rules.by_id]\nalgorithm = \"mod\"\nshards = 4\n\
         [schemas.{DB}]\nnode = \"dn1\"\n\
         [schemas.{DB}.tables.ledger]\nkind = \"sharded\"\ncolumn = \"id\"\nrule = \"by_id\"\nnodes = [\"dn1\", \"dn2\"]\ntables_per_node = 2\n\
         [pool]\nmax_size = 24\nidle_timeout_ms = 1000\nread_timeout_ms = 10000\nacquire_timeout_ms = 5000\nhealth_check_interval_ms = 300\n\
         [reads]\ncausal_wait_ms = 2000\n",
        g1.primary.address(),
        g1.replicas[0].address(),
        g2.primary.address(),
        g2.replicas[0].address(),
    )));
    let mut admin = connect(&p).await.expect("log in");
    admin
        .query_drop(
            "CREATE TABLE ledger (id BIGINT PRIMARY KEY, owner INT NOT NULL, v BIGINT NOT NULL)",
        )
        .await
        .unwrap();
    let prepared = sysbench(&p, &["prepare"], Duration::from_secs(120));
    assert!(
        prepared.status.success(),
        "{}",
        String::from_utf8_lossy(&prepared.stderr)
    );
    drop(admin);
    s.sync().unwrap();

    // The baseline: idle, after the pools have let their connections go.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let pid = p.pid();
    let base = (fds(pid), backend_connections(&s), rss_kib(pid));

    let stop = Arc::new(AtomicBool::new(false));
    let faults = Arc::new(AtomicU64::new(0));
    let period = Duration::from_secs((secs / 6).clamp(3, 30));
    let chaos_task = {
        let (stop, faults) = (stop.clone(), faults.clone());
        std::thread::spawn(move || chaos(s, stop, period, faults))
    };
    let sysbench_task = {
        let p = p.clone();
        let time = format!("--time={secs}");
        std::thread::spawn(move || {
            sysbench(
                &p,
                &[
                    "run",
                    &time,
                    "--threads=4",
                    "--mysql-ignore-errors=all",
                    "--report-interval=0",
                ],
                Duration::from_secs(secs + 60),
            )
        })
    };
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| tokio::spawn(worker(p.clone(), w, stop.clone())))
        .collect();
    let mut peak_rss = 0;
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        peak_rss = peak_rss.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for w in workers {
        outcomes.push(w.await.unwrap());
    }
    let s = tokio::task::spawn_blocking(move || chaos_task.join().expect("chaos"))
        .await
        .unwrap();
    let bench = tokio::task::spawn_blocking(move || sysbench_task.join().expect("sysbench"))
        .await
        .unwrap();
    let bench_out = String::from_utf8_lossy(&bench.stdout);
    let transactions = bench_out
        .lines()
        .find_map(|l| l.trim().strip_prefix("transactions:"))
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(transactions > 0, "sysbench ran: {bench_out}");

    // Every server back and caught up, then the ledger is read from each shard's
    // primary itself, and each replica must hold the same.
    s.sync().expect("replicas catch up");
    let mut actual: HashMap<i64, i64> = HashMap::new();
    for g in &s.groups {
        let mut d = direct(&g.primary, Some(DB)).await;
        let tables: Vec<String> = d.query("SHOW TABLES LIKE 'ledger%'").await.unwrap();
        for t in tables {
            let rows: Vec<(i64, i64)> = d.query(format!("SELECT id, v FROM {t}")).await.unwrap();
            actual.extend(rows);
            let sum = |i: &proxy::sandbox::Instance| {
                s.exec(i, &format!("CHECKSUM TABLE {DB}.{t}")).unwrap()
            };
            assert_eq!(
                sum(&g.primary),
                sum(&g.replicas[0]),
                "{t}: the replica differs"
            );
        }
    }
    let (mut sure, mut maybe, mut acknowledged, mut failed) = (0, 0, 0, 0);
    let mut stale = Vec::new();
    for o in &outcomes {
        acknowledged += o.acknowledged;
        failed += o.failed;
        stale.extend(o.stale_reads.iter().cloned());
        for (id, k) in &o.rows {
            let got = actual.get(id).copied();
            match k {
                Known::Sure(v) => {
                    sure += 1;
                    assert_eq!(got, Some(*v), "row {id}: an acknowledged write was lost");
                }
                Known::Maybe(options) => {
                    maybe += 1;
                    assert!(
                        options.contains(&got),
                        "row {id}: {got:?}, expected one of {options:?}"
                    );
                }
            }
        }
        for t in &o.transfers {
            let moved = (actual.get(&t.from.0), actual.get(&t.to.0));
            let both = (Some(&(t.from.1 - 1)), Some(&(t.to.1 + 1)));
            let neither = (Some(&t.from.1), Some(&t.to.1));
            // A later acknowledged write may have changed either row again: only
            // transfers whose rows nothing touched after are judged.
            let untouched = o
                .rows
                .get(&t.from.0)
                .is_some_and(|k| matches!(k, Known::Maybe(_)))
                && o.rows
                    .get(&t.to.0)
                    .is_some_and(|k| matches!(k, Known::Maybe(_)));
            if untouched {
                assert!(
                    moved == both || moved == neither,
                    "transfer {t:?}: half applied: {moved:?}"
                );
            }
        }
    }
    assert!(
        stale.is_empty(),
        "reads missed the session's own writes: {stale:?}"
    );
    assert!(
        acknowledged > 100,
        "the workers got work done: {acknowledged}"
    );

    // Resources back down once the clients are gone.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut after = (fds(pid), backend_connections(&s), rss_kib(pid));
    while (after.0 > base.0 + 2 || after.1 > base.1 + 2) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        after = (fds(pid), backend_connections(&s), rss_kib(pid));
    }
    let faults = faults.load(Ordering::Relaxed);
    eprintln!(
        "soak {secs}s: {faults} faults injected; {acknowledged} operations acknowledged, {failed} failed \
         during faults; {sure} rows verified exact, {maybe} rows of unknown outcome within their \
         possibilities; sysbench {transactions} transactions; fds {} -> {}, backend connections \
         {} -> {}, RSS {} KiB -> peak {peak_rss} KiB -> {} KiB",
        base.0, after.0, base.1, after.1, base.2, after.2
    );
    assert!(faults >= 2, "faults were injected: {faults}");
    assert!(
        after.0 <= base.0 + 2,
        "file descriptors {} -> {}",
        base.0,
        after.0
    );
    assert!(
        after.1 <= base.1 + 2,
        "backend connections {} -> {}",
        base.1,
        after.1
    );
    // Freed memory stays with the allocator; what must not happen is growth with the
    // work done.
    assert!(
        after.2 <= base.2 + 64 * 1024,
        "RSS {} KiB -> {} KiB",
        base.2,
        after.2
    );
    drop(s);
}
