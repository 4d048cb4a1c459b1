//! Many clients at once: thousands of connections held in bounded memory, a burst of
//! new ones, and the limits that keep one client from taking every place
//! (max_connections is answered with 1040, as MySQL does).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::Conn;
use tests::{error_code, Proxy, Sandbox, PASSWORD, USER};

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[0]).expect("start the MariaDB sandbox"))
}

fn proxy(max_connections: usize) -> Proxy {
    Proxy::with_config(&format!(
        "passthrough_node = \"dn1\"\n\
         [[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\nschemas = [\"*\"]\n\
         [nodes.dn1]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [pool]\nmax_size = 16\nacquire_timeout_ms = 30000\n\
         [server]\nmax_connections = {max_connections}\nmax_unauthenticated = {max_connections}\n",
        sandbox().groups[0].primary.address()
    ))
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// This test process holds a socket per client: its soft open-file limit goes up to
/// the hard one (shardgate raises its own).
fn raise_own_fd_limit(needed: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    let max = now.maximum.unwrap_or(u64::MAX);
    assert!(
        max >= needed,
        "the hard open-file limit ({max}) is below {needed}"
    );
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: now.maximum,
            maximum: now.maximum,
        },
    )
    .expect("raise the open-file limit");
}

const LOGIN_BOUND: std::time::Duration = std::time::Duration::from_secs(60);

/// Opens `n` clients, `at_once` logging in at a time.
async fn open(p: &Proxy, n: usize, at_once: usize) -> Vec<Conn> {
    let mut conns = Vec::with_capacity(n);
    while conns.len() < n {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..at_once.min(n - conns.len()) {
            let opts = p.opts(USER, PASSWORD, None);
            // A client the kernel dropped from a full accept queue waits for a
            // greeting forever: the bound makes that a failure, not a hang.
            set.spawn(async move { tokio::time::timeout(LOGIN_BOUND, Conn::new(opts)).await });
        }
        while let Some(c) = set.join_next().await {
            let c = c.expect("join").expect("a greeting within the bound");
            conns.push(c.expect("log in"));
        }
    }
    conns
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_clients_are_held_in_bounded_memory() {
    const CLIENTS: usize = 5000;
    raise_own_fd_limit(2 * CLIENTS as u64 + 200);
    let p = proxy(CLIENTS + 10);
    let mut first = p.conn(None).await;
    let _: Option<i64> = first.query_first("SELECT 1").await.unwrap();
    let before = rss_kib(p.pid());

    let started = Instant::now();
    let mut conns = open(&p, CLIENTS, 250).await;
    let opened_in = started.elapsed();
    let held = rss_kib(p.pid());
    // Every one of them is served.
    for (i, c) in conns.iter_mut().enumerate() {
        let v: Option<u64> = c.query_first(format!("SELECT {i}")).await.unwrap();
        assert_eq!(v, Some(i as u64));
    }
    let served = rss_kib(p.pid());
    let per_client = (served.saturating_sub(before)) as f64 / CLIENTS as f64;
    eprintln!(
        "{CLIENTS} clients: opened in {opened_in:?}; shardgate RSS {before} KiB before, {held} KiB holding them, {served} KiB after each ran a query ({per_client:.1} KiB per client)"
    );
    // A session's buffers are a few KiB; growing with the clients beyond that means
    // something is kept per client that should not be.
    assert!(per_client < 64.0, "{per_client:.1} KiB per client");
    drop(conns);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_new_clients_all_get_in() {
    raise_own_fd_limit(3000);
    let p = proxy(2000);
    let started = Instant::now();
    let mut conns = open(&p, 1500, 1500).await;
    eprintln!(
        "1500 clients at once: all logged in after {:?}",
        started.elapsed()
    );
    for c in conns.iter_mut().take(20) {
        let v: Option<i64> = c.query_first("SELECT 7").await.unwrap();
        assert_eq!(v, Some(7));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_clients_get_1040_and_the_others_go_on() {
    let p = proxy(50);
    let mut conns = open(&p, 50, 50).await;
    for _ in 0..3 {
        let e = Conn::new(p.opts(USER, PASSWORD, None)).await.unwrap_err();
        assert_eq!(error_code(&e), Some(1040), "{e}");
    }
    for c in conns.iter_mut() {
        let v: Option<i64> = c.query_first("SELECT 1").await.unwrap();
        assert_eq!(v, Some(1));
    }
    conns.pop().unwrap().disconnect().await.unwrap();
    // The place comes back once shardgate has seen the client go.
    let until = Instant::now() + std::time::Duration::from_secs(10);
    let mut again = loop {
        match Conn::new(p.opts(USER, PASSWORD, None)).await {
            Ok(c) => break c,
            Err(e) if Instant::now() < until && error_code(&e) == Some(1040) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    let v: Option<i64> = again.query_first("SELECT 2").await.unwrap();
    assert_eq!(v, Some(2));
}

/// Every command is timed into a histogram; unscraped, its samples must not pile up:
/// memory stays flat however many commands run (before, each kept ~16 bytes until a
/// scrape of /metrics).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_over_many_commands_unscraped() {
    let p = proxy(100);
    let mut clients = open(&p, 4, 4).await;
    // Warm: buffers, pools and the allocator's arenas reach their size, over
    // several of the recorder's upkeep periods.
    ping_all(&mut clients, 25_000).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let warm = rss_kib(p.pid());
    ping_all(&mut clients, 50_000).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(p.pid());
    eprintln!("200,000 pings after 100,000: RSS {warm} KiB -> {after} KiB");
    assert!(
        after <= warm + 1024,
        "RSS grew from {warm} KiB to {after} KiB over 200,000 commands"
    );
}

async fn ping_all(clients: &mut [Conn], rounds: usize) {
    let work = clients.iter_mut().map(|c| async move {
        for _ in 0..rounds {
            c.ping().await.unwrap();
        }
    });
    futures_util::future::join_all(work).await;
}
