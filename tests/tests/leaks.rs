//! The session-state leak test: many clients run random sequences of statements that
//! leave state on their connection (open transactions, session variables, user
//! variables, temporary tables, named locks, prepared statements, one-shot
//! transaction settings), then vanish at random points: after a result, in the middle
//! of a statement, or with COM_QUIT. Fresh clients then compare a fingerprint of their
//! session with a fresh direct MariaDB session, on every pooled connection, and
//! nothing the vanished clients left uncommitted may ever be committed.
//!
//! `scripts/test` runs a short seeded form; `scripts/leak-test` runs it longer
//! (`SHARDGATE_LEAK_ROUNDS`, `SHARDGATE_LEAK_SEED`).

use mysql_async::prelude::*;
use mysql_async::{Conn, Row};
use std::sync::OnceLock;
use tests::raw::{ok_status, RawClient};
use tests::rng::Rng;
use tests::{direct, error_code, Proxy, Sandbox, PASSWORD, USER};

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[1]).expect("start the MariaDB sandbox"))
}

/// Connections per backend: few, so that every session reuses what others left.
const POOL: usize = 3;

/// Statements that leave state behind. Rows are committed only the ways MariaDB
/// commits them for this client: an INSERT in autocommit mode, or a BEGIN that ends
/// the transaction before it. Never by anything another client does.
fn state_changes(row: u64) -> Vec<String> {
    vec![
        "BEGIN".into(),
        "START TRANSACTION".into(),
        "SET autocommit = 0".into(),
        format!("INSERT INTO leak VALUES ({row})"),
        "SET SESSION sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES'".into(),
        "SET SESSION wait_timeout = 1234".into(),
        "SET NAMES latin1".into(),
        "SET time_zone = '+05:00'".into(),
        "SET @u = 42".into(),
        "SELECT @v := 7".into(),
        "CREATE TEMPORARY TABLE tmp_leak (a INT)".into(),
        "SELECT GET_LOCK('leak_lock', 0)".into(),
        "PREPARE leak_stmt FROM 'SELECT 1'".into(),
        "HANDLER probe OPEN AS leak_handler".into(),
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE".into(),
        "SET TRANSACTION READ ONLY".into(),
        "SAVEPOINT sp".into(),
        "SELECT 1".into(),
        "SELECT * FROM probe".into(),
        "/* shardgate:primary */ SELECT COUNT(*) FROM leak".into(),
    ]
}

const IN_TRANS: u16 = 1;

/// One client's life: log in, run up to seven random statements, vanish. Returns the
/// rows that MariaDB committed for it (the server's own status flags say which).
fn random_client(addr: &str, db: &str, rng: &mut Rng, row: &mut u64) -> Vec<u64> {
    let mut committed = Vec::new();
    let mut uncommitted = Vec::new();
    let Ok((mut c, _)) = RawClient::connect(addr, USER, PASSWORD) else {
        panic!("login through shardgate failed");
    };
    let mut init = vec![0x02];
    init.extend_from_slice(db.as_bytes());
    let (ok, _) = c.command(&init).expect("COM_INIT_DB");
    assert_eq!(<[u8]>::first(&ok), Some(&0x00), "COM_INIT_DB failed");
    let steps = 1 + rng.below(7);
    for _ in 0..steps {
        *row += 1;
        let all = state_changes(*row);
        let sql = &all[rng.below(all.len())];
        let mut p = vec![0x03];
        p.extend_from_slice(sql.as_bytes());
        // Errors are fine (a READ ONLY transaction refuses the INSERT ...); only the
        // state left behind matters.
        let Ok((answer, _)) = c.command(&p) else {
            return committed;
        };
        let Some(status) = ok_status(&answer) else {
            continue;
        };
        if sql.starts_with("INSERT") {
            if status & IN_TRANS != 0 {
                uncommitted.push(*row);
            } else {
                committed.push(*row);
            }
        } else if sql.starts_with("BEGIN") || sql.starts_with("START") {
            committed.append(&mut uncommitted);
        }
    }
    match rng.below(3) {
        // Mid-statement: sent, never read.
        0 => {
            let _ = c.write_packet(0, b"\x03SELECT SLEEP(0.2) FROM probe");
        }
        // COM_QUIT.
        1 => {
            let _ = c.write_packet(0, &[0x01]);
        }
        // Just gone, after a complete answer.
        _ => {}
    }
    committed
}

const FINGERPRINT: &str = "SELECT @@autocommit, @@sql_mode, @@wait_timeout, @@tx_isolation, \
     @@tx_read_only, @@character_set_client, @@time_zone, @u, @v, IS_USED_LOCK('leak_lock') IS NULL";

async fn fingerprint(c: &mut Conn, hint: &str) -> Vec<String> {
    let row: Row = c
        .query_first(format!("{hint}{FINGERPRINT}"))
        .await
        .unwrap()
        .unwrap();
    (0..row.len())
        .map(|i| format!("{:?}", row.as_ref(i).unwrap()))
        .collect()
}

/// What a fresh session sees that must not be there: a temporary table or a
/// prepared statement of another client's.
async fn foreign_objects(c: &mut Conn, hint: &str) -> Vec<String> {
    let mut found = Vec::new();
    match c.query_drop(format!("{hint}SELECT * FROM tmp_leak")).await {
        Err(e) if error_code(&e) == Some(1146) => {}
        other => found.push(format!("tmp_leak: {other:?}")),
    }
    match c
        .query_drop(format!("{hint}HANDLER leak_handler READ FIRST"))
        .await
    {
        Err(e) if error_code(&e) == Some(1109) => {}
        other => found.push(format!("leak_handler: {other:?}")),
    }
    match c.query_drop("EXECUTE leak_stmt").await {
        Err(e) if error_code(&e) == Some(1243) => {}
        other => found.push(format!("leak_stmt: {other:?}")),
    }
    found
}

/// Waits until the vanished clients' sessions have ended in shardgate, and the
/// backend threads of connections it closed have ended too (a closed connection
/// releases its named lock when its server thread notices). A connection that went
/// back to a pool with state on it keeps that state however long this waits.
async fn settle(p: &Proxy, d: &mut Conn) {
    let mut me = p.conn(None).await;
    for _ in 0..100 {
        let sessions: Vec<Row> = me.query("SHOW SHARDGATE SESSIONS").await.unwrap();
        if sessions.len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for _ in 0..100 {
        let free: i64 = d
            .query_first("SELECT IS_USED_LOCK('leak_lock') IS NULL")
            .await
            .unwrap()
            .unwrap();
        if free == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn no_session_state_reaches_another_client() {
    let db = "leak_db";
    let rounds: usize = std::env::var("SHARDGATE_LEAK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let seed: u64 = std::env::var("SHARDGATE_LEAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_1EAC);
    let g = &sandbox().groups[0];
    let mut d = direct(&g.primary, None).await;
    d.query_drop(format!("DROP DATABASE IF EXISTS {db}"))
        .await
        .unwrap();
    d.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    d.query_drop(format!("CREATE TABLE {db}.leak (id BIGINT PRIMARY KEY)"))
        .await
        .unwrap();
    d.query_drop(format!("CREATE TABLE {db}.probe (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    d.query_drop(format!("INSERT INTO {db}.probe VALUES (1)"))
        .await
        .unwrap();
    sandbox().sync().unwrap();
    let p = Proxy::with_config(&format!(
        "[[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [nodes.dn1]\nprimary = \"{}\"\nreplicas = [\"{}\"]\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [schemas.{db}]\nnode = \"dn1\"\n\
         [pool]\nmax_size = {POOL}\nacquire_timeout_ms = 10000\n",
        g.primary.address(),
        g.replicas[0].address(),
    ));

    // What a fresh session looks like, straight from MariaDB.
    let mut fresh = direct(&g.primary, Some(db)).await;
    let expected = fingerprint(&mut fresh, "").await;

    let mut rng = Rng(seed);
    let mut row = 0u64;
    let mut expected_rows: Vec<u64> = Vec::new();
    for round in 0..rounds {
        // A few clients at a time, so that sessions share and hand over connections.
        let mut threads = Vec::new();
        for t in 0..4 {
            let addr = p.addr();
            let mut rng = Rng(rng.next_u64() | 1);
            let mut row = row + (t as u64 + 1) * 1_000_000;
            threads.push(std::thread::spawn(move || {
                let mut committed = Vec::new();
                for _ in 0..4 {
                    committed.extend(random_client(&addr, db, &mut rng, &mut row));
                }
                committed
            }));
        }
        for t in threads {
            expected_rows.extend(t.join().expect("a random client panicked"));
        }
        expected_rows.sort();
        row += 10_000_000;

        settle(&p, &mut d).await;

        // Every pooled connection, primary and replica: fresh sessions that each hold
        // one (a transaction holds its connection) compare their fingerprint.
        let mut holders = Vec::new();
        for _ in 0..POOL {
            let mut c = p.conn(Some(db)).await;
            let trx: i64 = c
                .query_first("/* shardgate:primary */ SELECT @@in_transaction")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(trx, 0, "round {round}: a fresh session is in a transaction");
            c.query_drop("BEGIN").await.unwrap();
            c.query_drop("SELECT * FROM probe").await.unwrap();
            let got = fingerprint(&mut c, "").await;
            assert_eq!(
                got, expected,
                "round {round} (seed {seed}): primary session differs"
            );
            let objects = foreign_objects(&mut c, "").await;
            assert!(objects.is_empty(), "round {round}: {objects:?}");
            holders.push(c);
        }
        for mut c in holders {
            c.query_drop("ROLLBACK").await.unwrap();
        }
        for _ in 0..POOL {
            let mut c = p.conn(Some(db)).await;
            let got = fingerprint(&mut c, "").await;
            assert_eq!(
                got, expected,
                "round {round} (seed {seed}): replica session differs"
            );
        }

        // Exactly what MariaDB told each client it committed is committed: nothing a
        // vanished client left open, nothing lost.
        let committed: Vec<u64> = d
            .query(format!("SELECT id FROM {db}.leak ORDER BY id"))
            .await
            .unwrap();
        assert_eq!(
            committed, expected_rows,
            "round {round} (seed {seed}): committed rows differ"
        );
    }
}
