//! Backends that die or change roles while clients work: a replica under a read loop
//! (reads move to what is left, without errors), a primary under a write loop (writes
//! fail fast with a clear error, reads go on), a promotion made outside shardgate
//! (writes follow it). One sandbox of three groups: each test has its own.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use tests::{error_code, Proxy, Sandbox};

fn sandbox() -> &'static Mutex<Sandbox> {
    static SANDBOX: OnceLock<Mutex<Sandbox>> = OnceLock::new();
    SANDBOX
        .get_or_init(|| Mutex::new(Sandbox::start(&[1, 1, 1]).expect("start the MariaDB sandbox")))
}

/// (primary address, replica address, primary server id, replica server id) of group `g`.
fn group(g: usize) -> (String, String, u32, u32) {
    let s = sandbox().lock().unwrap_or_else(|e| e.into_inner());
    let g = &s.groups[g];
    (
        g.primary.address(),
        g.replicas[0].address(),
        g.primary.server_id,
        g.replicas[0].server_id,
    )
}

#[tokio::test]
async fn reads_fall_back_to_the_primary_when_the_replica_dies() {
    let (primary, replica, primary_id, replica_id) = group(0);
    let proxy = Proxy::passthrough(&primary, &[replica]);
    let mut c = proxy.conn(None).await;
    let mut other = proxy.conn(None).await;

    for _ in 0..5 {
        let id: Option<u32> = c.query_first("SELECT @@server_id").await.unwrap();
        assert_eq!(id, Some(replica_id));
    }
    // Warm pooled connections to the replica, then kill it like a crash would.
    let id: Option<u32> = other.query_first("SELECT @@server_id").await.unwrap();
    assert_eq!(id, Some(replica_id));
    sandbox().lock().unwrap_or_else(|e| e.into_inner()).groups[0].replicas[0].kill();

    for i in 0..20 {
        let id: Option<u32> = c
            .query_first("SELECT @@server_id")
            .await
            .unwrap_or_else(|e| panic!("read {i} after the replica died failed: {e}"));
        assert_eq!(id, Some(primary_id));
    }
    let id: Option<u32> = other.query_first("SELECT @@server_id").await.unwrap();
    assert_eq!(id, Some(primary_id));
    // Writes were never affected.
    c.query_drop("CREATE DATABASE IF NOT EXISTS t_failover")
        .await
        .unwrap();
}

#[tokio::test]
async fn writes_fail_fast_and_reads_go_on_when_the_primary_dies() {
    let (primary, replica, _, replica_id) = group(1);
    let proxy = Proxy::passthrough(&primary, &[replica]);
    let mut setup = proxy.conn(None).await;
    setup
        .query_drop("CREATE DATABASE fo_primary")
        .await
        .unwrap();
    setup
        .query_drop("CREATE TABLE fo_primary.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    sandbox()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .sync()
        .unwrap();

    // A writer and a reader, each in a loop of its own, until told to stop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, mut c) = (stop.clone(), proxy.conn(None).await);
        tokio::spawn(async move {
            // (acknowledged, errors, slowest failure)
            let (mut ok, mut errors, mut slowest) = (0u32, Vec::new(), Duration::ZERO);
            let mut id = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                id += 1;
                let started = Instant::now();
                match c
                    .query_drop(format!("INSERT INTO fo_primary.t VALUES ({id})"))
                    .await
                {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        slowest = slowest.max(started.elapsed());
                        errors.push(error_code(&e));
                        if !matches!(e, mysql_async::Error::Server(_)) {
                            // The client's own connection is gone: reconnect.
                            break;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (ok, errors, slowest)
        })
    };
    let reader = {
        let (stop, mut c) = (stop.clone(), proxy.conn(None).await);
        tokio::spawn(async move {
            let (mut ok, mut servers) = (0u32, std::collections::BTreeSet::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let id: Option<u32> = c
                    .query_first("SELECT @@server_id")
                    .await
                    .expect("a read while the primary dies");
                servers.insert(id);
                ok += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (ok, servers)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    sandbox().lock().unwrap_or_else(|e| e.into_inner()).groups[1]
        .primary
        .kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, errors, slowest) = writer.await.unwrap();
    let (reads, servers) = reader.await.unwrap();

    let codes: std::collections::BTreeSet<_> = errors.iter().collect();
    eprintln!(
        "primary killed: {ok} writes acknowledged, {} failed (codes {codes:?}), slowest failure {slowest:?}; {reads} reads, all on {servers:?}",
        errors.len()
    );
    assert!(ok > 0, "no write went through before the primary died");
    assert!(
        !errors.is_empty(),
        "writes after the primary died did not fail"
    );
    // Every failed write says the backend is unavailable (1429) or was lost while it
    // ran (1430): a clear error, never a hang.
    assert!(
        errors.iter().all(|c| matches!(c, Some(1429) | Some(1430))),
        "{errors:?}"
    );
    assert!(
        slowest < Duration::from_secs(3),
        "a write took {slowest:?} to fail (connect_timeout_ms is 3000)"
    );
    assert!(reads > 50, "reads stopped: {reads}");
    assert_eq!(
        servers,
        [Some(replica_id)].into(),
        "reads stayed on the replica"
    );
    // Rows acknowledged before the crash are on the replica (async replication may
    // miss the last ones: the README says so); none are there that were not.
    let mut r = proxy.conn(None).await;
    let max: Option<i64> = r
        .query_first("SELECT MAX(id) FROM fo_primary.t")
        .await
        .unwrap();
    assert!(max.unwrap_or(0) <= i64::from(ok) + 1, "{max:?} of {ok}");
}

#[tokio::test]
async fn writes_follow_a_promotion_made_outside_shardgate() {
    let (primary, replica, primary_id, replica_id) = group(2);
    let proxy = Proxy::with_config(&format!(
        "passthrough_node = \"dn1\"\n\
         [[users]]\nname = \"{u}\"\npassword = \"{p}\"\nschemas = [\"*\"]\n\
         privileges = [\"read\", \"write\", \"ddl\", \"admin\"]\n\
         [nodes.dn1]\nprimary = \"{primary}\"\nreplicas = [\"{replica}\"]\n\
         user = \"{u}\"\npassword = \"{p}\"\nauto_detect_primary = true\n\
         [pool]\nhealth_check_interval_ms = 200\n",
        u = tests::USER,
        p = tests::PASSWORD,
    ));
    let mut c = proxy.conn(None).await;
    c.query_drop("CREATE DATABASE fo_promote").await.unwrap();
    c.query_drop("CREATE TABLE fo_promote.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO fo_promote.t VALUES (1)")
        .await
        .unwrap();
    assert_eq!(writes_on(&mut c).await, Some(primary_id));
    {
        let s = sandbox().lock().unwrap_or_else(|e| e.into_inner());
        s.sync().unwrap();
        // What an operator (or an orchestrator) does to promote the replica.
        let g = &s.groups[2];
        s.exec(&g.primary, "SET GLOBAL read_only = 1").unwrap();
        s.exec(
            &g.replicas[0],
            "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0",
        )
        .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while writes_on(&mut c).await != Some(replica_id) {
        assert!(
            Instant::now() < deadline,
            "writes never moved to the promoted replica"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.query_drop("INSERT INTO fo_promote.t VALUES (2)")
        .await
        .unwrap();
    // The row is on the promoted server, and reads see it (the old primary, which
    // replicates from nothing now, serves no reads).
    let on_new: Option<i64> = {
        let s = sandbox().lock().unwrap_or_else(|e| e.into_inner());
        let out = s
            .exec(
                &s.groups[2].replicas[0],
                "SELECT COUNT(*) FROM fo_promote.t",
            )
            .unwrap();
        out.trim().parse().ok()
    };
    assert_eq!(on_new, Some(2));
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM fo_promote.t")
        .await
        .unwrap();
    assert_eq!(n, Some(2));
    let roles: Vec<(String, String)> = c
        .query_map("SHOW SHARDGATE NODES", |row: mysql_async::Row| {
            (row.get("Role").unwrap(), row.get("Address").unwrap())
        })
        .await
        .unwrap();
    assert_eq!(
        roles[0],
        ("primary".to_string(), replica.clone()),
        "{roles:?}"
    );
}

/// The server that takes the session's writes now.
async fn writes_on(c: &mut mysql_async::Conn) -> Option<u32> {
    c.query_first("/* shardgate:primary */ SELECT @@server_id")
        .await
        .expect("ask the primary")
}
