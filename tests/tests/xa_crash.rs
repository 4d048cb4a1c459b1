//! Crashes during two-phase commit: shardgate killed before and after its decision,
//! a primary killed between PREPARE and COMMIT, and a bank whose clients keep moving
//! money while backends and shardgate are killed at random. After recovery every
//! acknowledged transaction is whole on every node, nothing unacknowledged is half
//! there, and no node holds a prepared branch. One sandbox (two groups) for the
//! binary; the tests take turns, since they kill its servers.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use tests::{direct, Proxy, Sandbox, PASSWORD, USER};
use tokio::sync::{Mutex, MutexGuard};

fn sandbox() -> &'static Mutex<Sandbox> {
    static SANDBOX: OnceLock<Mutex<Sandbox>> = OnceLock::new();
    SANDBOX.get_or_init(|| Mutex::new(Sandbox::start(&[0, 0]).expect("start the MariaDB sandbox")))
}

/// A shardgate's config for `db`, with a data directory and instance id that
/// survive its restarts: `acct` (accounts) and `transfers` sharded by id mod 2,
/// even ids on dn1, odd on dn2. Recovery runs every 200 ms.
struct Setup {
    db: String,
    data: tempfile::TempDir,
    port: u16,
    addresses: [String; 2],
}

impl Setup {
    fn config(&self) -> String {
        let db = &self.db;
        format!(
            "[[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\nprivileges = [\"read\", \"write\", \"ddl\", \"admin\"]\n\
             [server]\nlisten = \"127.0.0.1:{}\"\ninstance_id = \"crash_{db}\"\ndata_dir = \"{}\"\n\
             [pool]\nhealth_check_interval_ms = 200\nconnect_timeout_ms = 1000\n\
             [transactions]\nrecovery_interval_ms = 200\n\
             [nodes.dn1]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
             [nodes.dn2]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
             [rules.by_id]\nalgorithm = \"mod\"\nshards = 2\n\
             [schemas.{db}]\nnode = \"dn1\"\n\
             [schemas.{db}.tables.acct]\nkind = \"sharded\"\ncolumn = \"id\"\nrule = \"by_id\"\nnodes = [\"dn1\", \"dn2\"]\n\
             [schemas.{db}.tables.transfers]\nkind = \"sharded\"\ncolumn = \"id\"\nrule = \"by_id\"\nnodes = [\"dn1\", \"dn2\"]\n",
            self.port,
            self.data.path().display(),
            self.addresses[0],
            self.addresses[1],
        )
    }

    fn start(&self, failpoint: Option<&str>) -> Proxy {
        let env: Vec<(&str, &str)> = failpoint
            .map(|f| ("SHARDGATE_FAILPOINT", f))
            .into_iter()
            .collect();
        Proxy::with_config_env(&self.config(), &env)
    }
}

/// A new database with `accounts` accounts of 1000 each.
async fn setup(sb: &Sandbox, db: &str, accounts: i32) -> Setup {
    tests::recreate_db(sb, db).await;
    let s = Setup {
        db: db.to_string(),
        data: tempfile::tempdir().expect("a data directory"),
        port: tests::free_port(),
        addresses: [
            sb.groups[0].primary.address(),
            sb.groups[1].primary.address(),
        ],
    };
    let p = s.start(None);
    let mut c = p.conn(Some(db)).await;
    c.query_drop("CREATE TABLE acct (id INT PRIMARY KEY, balance INT NOT NULL)")
        .await
        .unwrap();
    c.query_drop(
        "CREATE TABLE transfers (id BIGINT PRIMARY KEY, src INT NOT NULL, dst INT NOT NULL, amount INT NOT NULL)",
    )
    .await
    .unwrap();
    let values: Vec<String> = (0..accounts).map(|i| format!("({i}, 1000)")).collect();
    c.query_drop(format!(
        "INSERT INTO acct (id, balance) VALUES {}",
        values.join(", ")
    ))
    .await
    .unwrap();
    s
}

/// Every account's balance and every transfer, read on the nodes themselves.
async fn state(sb: &Sandbox, db: &str) -> (Vec<(i32, i64)>, Vec<(i64, i32, i32, i64)>) {
    let (mut accounts, mut transfers) = (Vec::new(), Vec::new());
    for g in &sb.groups {
        let mut d = direct(&g.primary, Some(db)).await;
        let a: Vec<(i32, i64)> = d.query("SELECT id, balance FROM acct").await.unwrap();
        let t: Vec<(i64, i32, i32, i64)> = d
            .query("SELECT id, src, dst, amount FROM transfers")
            .await
            .unwrap();
        accounts.extend(a);
        transfers.extend(t);
    }
    accounts.sort();
    transfers.sort();
    (accounts, transfers)
}

/// Prepared XA branches on each node.
async fn prepared(sb: &Sandbox) -> Vec<usize> {
    let mut out = Vec::new();
    for g in &sb.groups {
        let mut d = direct(&g.primary, None).await;
        let rows: Vec<mysql_async::Row> = d.query("XA RECOVER").await.unwrap();
        out.push(rows.len());
    }
    out
}

/// Waits (up to 20 s) until no node holds a prepared branch.
async fn until_recovered(sb: &Sandbox) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = prepared(sb).await;
        if left.iter().all(|n| *n == 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "prepared branches left: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One transfer as a bank client makes it: both accounts and the transfer's record,
/// in one transaction over both nodes.
async fn transfer(
    c: &mut mysql_async::Conn,
    id: i64,
    src: i32,
    dst: i32,
    amount: i64,
) -> Result<(), mysql_async::Error> {
    c.query_drop("BEGIN").await?;
    c.query_drop(format!(
        "UPDATE acct SET balance = balance - {amount} WHERE id = {src}"
    ))
    .await?;
    c.query_drop(format!(
        "UPDATE acct SET balance = balance + {amount} WHERE id = {dst}"
    ))
    .await?;
    c.query_drop(format!(
        "INSERT INTO transfers (id, src, dst, amount) VALUES ({id}, {src}, {dst}, {amount})"
    ))
    .await?;
    c.query_drop("COMMIT").await
}

/// The books balance: the total is unchanged, every account is its opening balance
/// moved by exactly the transfers recorded, and every acknowledged transfer is
/// recorded.
fn check_books(
    accounts: &[(i32, i64)],
    transfers: &[(i64, i32, i32, i64)],
    opening: i64,
    acknowledged: &[i64],
) {
    let total: i64 = accounts.iter().map(|a| a.1).sum();
    assert_eq!(
        total,
        opening * accounts.len() as i64,
        "money appeared or vanished"
    );
    for (id, balance) in accounts {
        let moved: i64 = transfers
            .iter()
            .map(|t| {
                if t.1 == *id {
                    -t.3
                } else if t.2 == *id {
                    t.3
                } else {
                    0
                }
            })
            .sum();
        assert_eq!(
            *balance,
            opening + moved,
            "account {id}: its balance does not match the transfers recorded (a half-applied transfer)"
        );
    }
    let recorded: std::collections::HashSet<i64> = transfers.iter().map(|t| t.0).collect();
    for id in acknowledged {
        assert!(
            recorded.contains(id),
            "acknowledged transfer {id} is missing"
        );
    }
}

async fn serial() -> MutexGuard<'static, Sandbox> {
    sandbox().lock().await
}

/// Transfer 7 (10 from account 0 on dn1 to account 1 on dn2) through a shardgate
/// that aborts at `failpoint`: the client never hears back, and both branches are
/// left prepared, the accounts untouched. Then shardgate starts again on the same
/// data directory and recovery runs to its end.
async fn transfer_killed_at(sb: &Sandbox, db: &str, failpoint: &str) {
    let s = setup(sb, db, 2).await;
    let mut p = s.start(Some(failpoint));
    let mut c = p.conn(Some(&s.db)).await;
    assert!(transfer(&mut c, 7, 0, 1, 10).await.is_err());
    assert!(p.wait_exit(Duration::from_secs(10)).is_some());
    assert_eq!(prepared(sb).await, [1, 1]);
    let (accounts, _) = state(sb, &s.db).await;
    assert_eq!(accounts, [(0, 1000), (1, 1000)]);
    let _p = s.start(None);
    until_recovered(sb).await;
}

#[tokio::test]
async fn shardgate_killed_after_its_decision_commits_every_branch_on_restart() {
    let sb = serial().await;
    transfer_killed_at(&sb, "crash_after", "xa_after_decision").await;
    let (accounts, transfers) = state(&sb, "crash_after").await;
    assert_eq!(accounts, [(0, 990), (1, 1010)]);
    assert_eq!(transfers, [(7, 0, 1, 10)]);
}

#[tokio::test]
async fn shardgate_killed_before_its_decision_rolls_every_branch_back_on_restart() {
    let sb = serial().await;
    transfer_killed_at(&sb, "crash_before", "xa_before_decision").await;
    let (accounts, transfers) = state(&sb, "crash_before").await;
    assert_eq!(accounts, [(0, 1000), (1, 1000)]);
    assert!(transfers.is_empty());
}

#[tokio::test]
async fn a_multi_shard_write_outside_a_transaction_lands_whole_after_a_crash() {
    let sb = serial().await;
    let s = setup(&sb, "crash_autocommit", 4).await;
    // One statement over both nodes, in autocommit: its own XA transaction.
    let mut p = s.start(Some("xa_after_decision"));
    let mut c = p.conn(Some(&s.db)).await;
    assert!(c
        .query_drop("UPDATE acct SET balance = balance + 5")
        .await
        .is_err());
    assert!(p.wait_exit(Duration::from_secs(10)).is_some());
    assert_eq!(prepared(&sb).await, [1, 1]);
    let p = s.start(None);
    until_recovered(&sb).await;
    let (accounts, _) = state(&sb, &s.db).await;
    assert_eq!(accounts, [(0, 1005), (1, 1005), (2, 1005), (3, 1005)]);
    // A client's own XA (this user may run it on a server) would fight shardgate's.
    let mut c = p.conn(Some(&s.db)).await;
    let e = c.query_drop("XA START 'mine'").await.unwrap_err();
    assert_eq!(tests::error_code(&e), Some(1235), "{e}");
}

#[tokio::test]
async fn a_primary_killed_between_prepare_and_commit_gets_its_branch_committed() {
    let mut sb = serial().await;
    let s = setup(&sb, "crash_primary", 2).await;
    let p = s.start(Some("xa_after_decision=pause:3000"));
    let mut c = p.conn(Some(&s.db)).await;
    let commit = tokio::spawn(async move {
        let r = transfer(&mut c, 7, 0, 1, 10).await;
        (r, c)
    });
    // Both branches prepared, the decision taken: dn2's primary dies now, and comes
    // back with its branch still prepared.
    let deadline = Instant::now() + Duration::from_secs(10);
    while prepared(&sb).await != [1, 1] {
        assert!(
            Instant::now() < deadline,
            "the branches were never prepared"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // An operator sees them, and that a session is finishing them.
    let mut admin = p.conn(Some(&s.db)).await;
    let shown: Vec<(String, String, String)> = admin
        .query("SHOW SHARDGATE XA")
        .await
        .unwrap()
        .into_iter()
        .map(|r: mysql_async::Row| {
            let (node, gtrid, _bqual, recovery, _error): (
                String,
                String,
                String,
                String,
                Option<String>,
            ) = mysql_async::from_row(r);
            (node, gtrid, recovery)
        })
        .collect();
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert!(
        shown
            .iter()
            .all(|(_, g, r)| g.starts_with("sg:crash_crash_primary:") && r == "in flight"),
        "{shown:?}"
    );
    drop(admin);
    sb.groups[1].primary.crash().expect("kill dn2's primary");
    sb.groups[1]
        .primary
        .restart()
        .expect("restart dn2's primary");
    let (r, _c) = commit.await.expect("the client task");
    // Decided is committed: the client is told so, and recovery finishes dn2.
    r.expect("COMMIT is acknowledged once the decision is on disk");
    until_recovered(&sb).await;
    let (accounts, transfers) = state(&sb, &s.db).await;
    assert_eq!(accounts, [(0, 990), (1, 1010)]);
    assert_eq!(transfers, [(7, 0, 1, 10)]);
    drop(p);
}

/// How long the bank runs: `BANK_SECONDS`, 12 by default (scripts/xa-soak runs it
/// longer).
fn bank_seconds() -> u64 {
    std::env::var("BANK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12)
}

#[tokio::test]
async fn bank_transfers_survive_killed_backends_and_shardgate() {
    let mut sb = serial().await;
    let (accounts, clients) = (100, 6);
    let s = setup(&sb, "bank", accounts).await;
    let port = s.port;
    let mut proxy = Some(s.start(None));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (stop, db) = (stop.clone(), s.db.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = tests::rng::Rng(0x5eed + client as u64);
            let mut acknowledged = Vec::new();
            let mut conn: Option<mysql_async::Conn> = None;
            let mut n = 0i64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let c = match conn.as_mut() {
                    Some(c) => c,
                    None => {
                        let opts = tests::opts(port, USER, PASSWORD, Some(&db));
                        match mysql_async::Conn::new(opts).await {
                            Ok(mut c) => {
                                // A branch a crash left prepared holds its rows until
                                // recovery: wait for it briefly, then try other rows.
                                let _ = c
                                    .query_drop("SET SESSION innodb_lock_wait_timeout = 2")
                                    .await;
                                conn.insert(c)
                            }
                            Err(_) => {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                continue;
                            }
                        }
                    }
                };
                n += 1;
                let id = client as i64 * 1_000_000 + n;
                let src = rng.below(accounts as usize) as i32;
                let dst = (src + 1 + rng.below(accounts as usize - 1) as i32) % accounts;
                let amount = 1 + rng.below(50) as i64;
                match transfer(c, id, src, dst, amount).await {
                    Ok(()) => acknowledged.push(id),
                    // Whatever failed, a new connection starts clean (the old one's
                    // transaction is rolled back by shardgate when it closes).
                    Err(_) => conn = None,
                }
            }
            acknowledged
        }));
    }
    let mut rng = tests::rng::Rng(0xc4a05);
    let deadline = Instant::now() + Duration::from_secs(bank_seconds());
    let mut faults = Vec::new();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1000 + rng.below(2000) as u64)).await;
        match rng.below(3) {
            0 => {
                faults.push("shardgate");
                drop(proxy.take());
                proxy = Some(s.start(None));
            }
            g => {
                faults.push(if g == 1 { "dn1" } else { "dn2" });
                let primary = &mut sb.groups[g - 1].primary;
                primary.crash().expect("kill a primary");
                tokio::time::sleep(Duration::from_millis(rng.below(500) as u64)).await;
                primary.restart().expect("restart the primary");
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for t in tasks {
        acknowledged.extend(t.await.expect("a client task"));
    }
    until_recovered(&sb).await;
    let (accounts, transfers) = state(&sb, &s.db).await;
    eprintln!(
        "bank: {} transfers acknowledged, {} recorded, faults: {faults:?}",
        acknowledged.len(),
        transfers.len()
    );
    assert!(!acknowledged.is_empty(), "no transfer went through");
    check_books(&accounts, &transfers, 1000, &acknowledged);
    drop(proxy);
}
