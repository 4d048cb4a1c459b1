//! Causal reads and lag-aware routing, against a replica made to lag on purpose:
//! delayed replication (`MASTER_DELAY`), so that its SQL thread runs but applies each
//! transaction seconds late, and a stopped SQL thread. Every client must read its own
//! writes; `global` mode also other sessions' of the same user; `none` reads stale
//! rows (which shows the lag is real, so the other checks can fail).
//!
//! The tests change the one replica's replication, so they take turns (`REPLICA`).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use tests::{python_env, run_checks, run_node_checks, Proxy, Sandbox, PASSWORD, USER};

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[1]).expect("start the MariaDB sandbox"))
}

/// One test at a time changes the replica.
static REPLICA: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A proxy in front of the sandbox's group: users `app` (the default mode), `stale`
/// (`none`) and `shared` (`global`), all with the sandbox account's password.
fn proxy(reads: &str) -> Proxy {
    let g = &sandbox().groups[0];
    let users: String = [("app", ""), ("stale", "none"), ("shared", "global")]
        .iter()
        .map(|(name, mode)| {
            let mode = if mode.is_empty() {
                String::new()
            } else {
                format!("causal_reads = \"{mode}\"\n")
            };
            format!("[[users]]\nname = \"{name}\"\npassword = \"{PASSWORD}\"\nschemas = [\"*\"]\nprivileges = [\"read\", \"write\", \"ddl\", \"admin\"]\n{mode}")
        })
        .collect();
    Proxy::with_config(&format!(
        "passthrough_node = \"dn1\"\n{users}\n\
         [nodes.dn1]\nprimary = \"{}\"\nreplicas = [\"{}\"]\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [pool]\nhealth_check_interval_ms = 200\n\
         [reads]\n{reads}\n",
        g.primary.address(),
        g.replicas[0].address(),
    ))
}

async fn conn(p: &Proxy, user: &str, db: &str) -> mysql_async::Conn {
    mysql_async::Conn::new(p.opts(user, PASSWORD, Some(db)))
        .await
        .expect("connect through shardgate")
}

fn on_replica(sql: &str) {
    let s = sandbox();
    s.exec(&s.groups[0].replicas[0], sql)
        .unwrap_or_else(|e| panic!("{sql} on the replica: {e}"));
}

/// A test's turn with the replica: it holds the lock, and puts the replica back as
/// the other tests expect it however the test ends (a test that fails with the SQL
/// thread stopped must not fail the next ones).
struct Turn {
    _lock: tokio::sync::MutexGuard<'static, ()>,
}

/// Waits for the turn, then makes `db` afresh with table `t`.
async fn turn(db: &str) -> Turn {
    let turn = Turn {
        _lock: REPLICA.lock().await,
    };
    fresh(db).await;
    turn
}

impl Drop for Turn {
    fn drop(&mut self) {
        let s = sandbox();
        let _ = s.exec(
            &s.groups[0].replicas[0],
            "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 0; START SLAVE",
        );
    }
}

/// Replication delayed by `seconds` (0: as usual), its threads running again when
/// this returns. Make the proxy after it: a proxy that probes the replica while it
/// restarts takes it out of the read rotation for a health round, as it should.
fn delay(seconds: u32) {
    on_replica(&format!(
        "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = {seconds}; START SLAVE"
    ));
    let s = sandbox();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // ON when both the IO and the SQL thread run.
        let status = s
            .exec(
                &s.groups[0].replicas[0],
                "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                 WHERE VARIABLE_NAME = 'SLAVE_RUNNING'",
            )
            .unwrap_or_default();
        if status.trim() == "ON" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replication did not restart:\n{status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fresh database `db` with table `t` (one column), on the replica too.
async fn fresh(db: &str) {
    tests::recreate_db(sandbox(), db).await;
    let mut c = tests::direct(&sandbox().groups[0].primary, Some(db)).await;
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    sandbox().sync().unwrap();
}

/// Which server answered, and how many rows `t` has there.
async fn read(c: &mut mysql_async::Conn) -> (u32, u64) {
    c.query_first("SELECT @@server_id, COUNT(*) FROM t")
        .await
        .expect("read")
        .expect("a row")
}

/// The replica's row of `SHOW SHARDGATE NODES`.
#[derive(Debug)]
struct ReplicaRow {
    serves_reads: String,
    excluded_because: Option<String>,
    gtid_position: Option<String>,
    lag_ms: Option<u64>,
}

async fn replica_row(c: &mut mysql_async::Conn) -> ReplicaRow {
    let rows: Vec<(String, ReplicaRow)> = c
        .query_map("SHOW SHARDGATE NODES", |row: mysql_async::Row| {
            let role: String = row.get("Role").unwrap();
            let r = ReplicaRow {
                serves_reads: row.get("Serves_reads").unwrap(),
                excluded_because: row.get("Excluded_because").unwrap(),
                gtid_position: row.get("Gtid_position").unwrap(),
                lag_ms: row.get("Lag_ms").unwrap(),
            };
            (role, r)
        })
        .await
        .expect("SHOW SHARDGATE NODES");
    rows.into_iter()
        .find(|(role, _)| role == "replica[0]")
        .map(|(_, r)| r)
        .expect("the replica's row")
}

#[tokio::test]
async fn writes_are_read_back_through_a_delayed_replica() {
    let db = "causal_delayed";
    let _turn = turn(db).await;
    delay(2);
    let p = proxy("causal_wait_ms = 5000");
    let replica = sandbox().groups[0].replicas[0].server_id;
    let mut app = conn(&p, "app", db).await;
    let mut stale = conn(&p, "stale", db).await;
    let mut app_other = conn(&p, "app", db).await;
    let mut shared = conn(&p, "shared", db).await;
    let mut shared_other = conn(&p, "shared", db).await;
    // With nothing written, reads go to the replica.
    assert_eq!(read(&mut app).await, (replica, 0));

    // `none`: the replica has not applied the write; the read says so.
    stale.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    assert_eq!(
        read(&mut stale).await,
        (replica, 0),
        "none mode reads the replica as it is"
    );

    // `session`: the read waits on the replica until it has the write.
    let started = Instant::now();
    app.query_drop("INSERT INTO t VALUES (2)").await.unwrap();
    assert_eq!(read(&mut app).await, (replica, 2));
    // MASTER_DELAY counts from the event's timestamp, in whole seconds: 2 s of
    // delay is at least 1 s of waiting.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the read waited for the delayed replica: {:?}",
        started.elapsed()
    );
    // Applied now and known so: the next read does not wait.
    let started = Instant::now();
    assert_eq!(read(&mut app).await, (replica, 2));
    assert!(started.elapsed() < Duration::from_millis(1000));

    // The OK of a tracked write reaches the client as MariaDB would send it to a
    // client without session tracking: its info string, nothing after it.
    app.query_drop("UPDATE t SET id = 20 WHERE id = 2")
        .await
        .unwrap();
    assert_eq!(app.info(), "Rows matched: 1  Changed: 1  Warnings: 0");
    assert_eq!(app.affected_rows(), 1);
    app.query_drop("UPDATE t SET id = 2 WHERE id = 20")
        .await
        .unwrap();

    // A write in a transaction is seen after its COMMIT.
    app.query_drop("BEGIN").await.unwrap();
    app.query_drop("INSERT INTO t VALUES (3)").await.unwrap();
    app.query_drop("COMMIT").await.unwrap();
    assert_eq!(read(&mut app).await, (replica, 3));

    // `session` is the session's own writes: another session of the same user reads
    // the replica as it is.
    app.query_drop("INSERT INTO t VALUES (4)").await.unwrap();
    let (_, other_count) = read(&mut app_other).await;
    assert_eq!(
        other_count, 3,
        "another session does not wait for this one's writes"
    );
    assert_eq!(read(&mut app).await.1, 4);

    // `global`: every session of the user reads what any of them wrote.
    shared.query_drop("INSERT INTO t VALUES (5)").await.unwrap();
    assert_eq!(read(&mut shared_other).await, (replica, 5));

    // A client that sets the tracking variables itself cannot stop the GTID reports
    // (it is never offered session tracking, so the setting changes nothing it sees).
    app.query_drop("SET session_track_system_variables = ''")
        .await
        .unwrap();
    app.query_drop("INSERT INTO t VALUES (6)").await.unwrap();
    assert_eq!(read(&mut app).await, (replica, 6));
}

#[tokio::test]
async fn a_replica_that_cannot_catch_up_in_time_leaves_reads_to_the_primary() {
    let db = "causal_timeout";
    let _turn = turn(db).await;
    delay(3);
    let p = proxy("causal_wait_ms = 300");
    let g = &sandbox().groups[0];
    let (primary, replica) = (g.primary.server_id, g.replicas[0].server_id);
    let mut app = conn(&p, "app", db).await;
    app.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    let started = Instant::now();
    assert_eq!(
        read(&mut app).await,
        (primary, 1),
        "after 300 ms the primary answers"
    );
    assert!(started.elapsed() < Duration::from_millis(2500));
    // The replica is known to be behind now: the next read does not wait again.
    let started = Instant::now();
    assert_eq!(read(&mut app).await, (primary, 1));
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "waited again: {:?}",
        started.elapsed()
    );
    delay(0);
    sandbox().sync().unwrap();
    // Caught up (and probed): reads are the replica's again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (id, n) = read(&mut app).await;
        assert_eq!(n, 1);
        if id == replica {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reads never went back to the replica"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Waiting off (0): a read that the replica cannot answer goes to the primary at once.
    delay(3);
    let p = proxy("causal_wait_ms = 0");
    let mut app = conn(&p, "app", db).await;
    app.query_drop("INSERT INTO t VALUES (2)").await.unwrap();
    assert_eq!(read(&mut app).await, (primary, 2));
}

#[tokio::test]
async fn a_stopped_replica_leaves_the_rotation_and_comes_back() {
    let db = "causal_stopped";
    let _turn = turn(db).await;
    let p = proxy("max_replica_lag_ms = 60000");
    let g = &sandbox().groups[0];
    let (primary, replica) = (g.primary.server_id, g.replicas[0].server_id);
    let mut stale = conn(&p, "stale", db).await;
    assert_eq!(read(&mut stale).await.0, replica);
    // Probed: at the primary's position, and a lag of about nothing (for a proxy that
    // misread the position, the lag would be the time since it started).
    let primary_pos = sandbox()
        .exec(&g.primary, "SELECT @@gtid_binlog_pos")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let row = replica_row(&mut stale).await;
        let (pos, lag) = (row.gtid_position, row.lag_ms);
        if pos.as_deref() == Some(primary_pos.trim())
            && Instant::now() > deadline - Duration::from_secs(8)
        {
            assert!(
                lag.is_some_and(|l| l < 1000),
                "lag {lag:?} ms of a replica that is up to date"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replica position {pos:?}, primary {primary_pos}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    on_replica("STOP SLAVE SQL_THREAD");
    // Within a few health rounds (200 ms each) the replica is out, and says why.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = replica_row(&mut stale).await;
        if r.serves_reads == "No" {
            let why = r.excluded_because.as_deref().unwrap_or("");
            assert!(why.contains("Slave_SQL_Running"), "{r:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stopped replica stayed in rotation: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Even `none` reads the primary now, and sees what it wrote.
    stale.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    assert_eq!(read(&mut stale).await, (primary, 1));
    on_replica("START SLAVE SQL_THREAD");
    sandbox().sync().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while read(&mut stale).await != (replica, 1) {
        assert!(Instant::now() < deadline, "the replica never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn python_node_and_the_mysql_cli_read_their_own_writes() {
    let python = python_env();
    tests::node_modules();
    let db = "causal_clients";
    let _turn = turn(db).await;
    delay(1);
    let p = proxy("causal_wait_ms = 5000");
    let replica = sandbox().groups[0].replicas[0].server_id;
    let port = p.port.to_string();
    let replica_id = replica.to_string();
    let args = ["127.0.0.1", &port, "app", PASSWORD, db, &replica_id];
    run_checks(&python, "causal.py", &args);
    run_node_checks("causal.js", &args);
    // The mysql CLI, one script: write, then read in the same session.
    let out = std::process::Command::new("mariadb")
        .args([
            "--no-defaults",
            "-h127.0.0.1",
            &format!("-P{port}"),
            "-uapp",
        ])
        .arg(format!("-p{PASSWORD}"))
        .args(["-N", "-B", db, "-e"])
        .arg("INSERT INTO t VALUES (100); SELECT @@server_id, COUNT(*) FROM t WHERE id = 100")
        .output()
        .expect("run the mariadb client");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.trim(), format!("{replica}\t1"));
}
