//! Backends that fail the way networks and servers fail: a reset in the middle of a
//! result, a path that swallows packets without closing, slow delivery, a node that
//! accepts connections and never answers, a pool with no connection free. Each time
//! the statement fails with a clear error in bounded time, the client's session
//! goes on, other nodes' sessions never wait, and no backend connection is left open.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::{Conn, Row};
use tests::fault_relay::{Fault, FaultRelay};
use tests::{direct, error_code, Proxy, Sandbox, PASSWORD, USER};

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[0, 0]).expect("start the MariaDB sandbox"))
}

/// A rows-without-end query: MariaDB's sequence engine streams it as fast as it is
/// read, so the relay's fault always lands in the middle of it.
const ENDLESS: &str =
    "/* shardgate:node=dn1 */ SELECT seq, REPEAT('x', 200) FROM seq_1_to_100000000";

/// shardgate with schema `db` on node dn2 (group 2's primary, table `t2` there), and
/// node dn1 at `dn1` (a relay to group 1's primary, or a listener of the test's),
/// reached with the hint `/* shardgate:node=dn1 */`.
async fn proxy(db: &str, dn1: &str, extra: &str) -> Proxy {
    let s = sandbox();
    for g in &s.groups {
        let mut c = direct(&g.primary, None).await;
        c.query_drop(format!("DROP DATABASE IF EXISTS {db}"))
            .await
            .unwrap();
        c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
        c.query_drop(format!("CREATE TABLE {db}.t2 (id INT PRIMARY KEY)"))
            .await
            .unwrap();
        c.query_drop(format!("INSERT INTO {db}.t2 VALUES (1), (2), (3)"))
            .await
            .unwrap();
    }
    Proxy::with_config(&format!(
        "[[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [nodes.dn1]\nprimary = \"{dn1}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [nodes.dn2]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [schemas.{db}]\nnode = \"dn2\"\n{extra}",
        s.groups[1].primary.address(),
    ))
}

/// Reads a result to its end, which must be an error.
async fn error_at_end<P: mysql_async::prelude::Protocol>(
    result: &mut mysql_async::QueryResult<'_, '_, P>,
) -> mysql_async::Error {
    loop {
        match result.next().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the result ended without an error"),
            Err(e) => return e,
        }
    }
}

/// Reads `n` rows of a result, then returns what the rest of it ends with.
async fn rows_then_end(
    c: &mut Conn,
    sql: &str,
    n: usize,
    fault: impl FnOnce(),
) -> mysql_async::Error {
    let mut result = c.query_iter(sql).await.unwrap();
    for _ in 0..n {
        let row: Option<Row> = result.next().await.unwrap();
        assert!(row.is_some(), "the result ended early");
    }
    fault();
    error_at_end(&mut result).await
}

/// The session answers on both nodes.
async fn still_works(c: &mut Conn, db: &str) {
    let sum: Option<i64> = c
        .query_first("/* shardgate:node=dn1 */ SELECT SUM(seq) FROM seq_1_to_10")
        .await
        .unwrap();
    assert_eq!(sum, Some(55));
    dn2_works(c, db).await;
}

async fn dn2_works(c: &mut Conn, db: &str) {
    let v: Option<i64> = c.query_first("SELECT 42").await.unwrap();
    assert_eq!(v, Some(42));
    let ids: Vec<i32> = c
        .query(format!("SELECT id FROM {db}.t2 ORDER BY id"))
        .await
        .unwrap();
    assert_eq!(ids, [1, 2, 3]);
}

#[tokio::test]
async fn a_reset_mid_result_ends_the_statement_and_the_session_goes_on() {
    let db = "rel_reset";
    let relay = FaultRelay::start(&sandbox().groups[0].primary.address()).await;
    let p = proxy(db, &relay.address(), "[pool]\nmax_size = 4\n").await;
    let mut c = p.conn(Some(db)).await;
    still_works(&mut c, db).await;
    let before = relay.live();

    let err = rows_then_end(&mut c, ENDLESS, 1000, || relay.reset_all()).await;
    assert_eq!(error_code(&err), Some(1430), "{err}");
    assert!(
        err.to_string().contains("lost the backend connection"),
        "{err}"
    );

    still_works(&mut c, db).await;
    let left = relay.settle_at_most(before, Duration::from_secs(5)).await;
    assert!(
        left <= before,
        "{left} connections through the relay, {before} before"
    );

    // Prepared statements (binary rows) end the same way.
    let stmt = c.prep(ENDLESS).await.unwrap();
    let mut result = c.exec_iter(&stmt, ()).await.unwrap();
    for _ in 0..1000 {
        assert!(result.next().await.unwrap().is_some());
    }
    relay.reset_all();
    let err = error_at_end(&mut result).await;
    drop(result);
    assert_eq!(error_code(&err), Some(1430), "{err}");
    still_works(&mut c, db).await;
}

#[tokio::test]
async fn a_half_open_backend_fails_the_statement_within_the_read_timeout() {
    let db = "rel_swallow";
    let relay = FaultRelay::start(&sandbox().groups[0].primary.address()).await;
    let p = proxy(db, &relay.address(), "[pool]\nread_timeout_ms = 1000\n").await;
    let mut c = p.conn(Some(db)).await;
    still_works(&mut c, db).await;
    let before = relay.live();

    // Mid-result: the rows stop coming and nothing closes.
    let started = Instant::now();
    let err = rows_then_end(&mut c, ENDLESS, 1000, || relay.set(Fault::Swallow)).await;
    assert_eq!(error_code(&err), Some(1430), "{err}");
    assert!(err.to_string().contains("read_timeout_ms"), "{err}");
    let took = started.elapsed();
    relay.set(Fault::None);
    still_works(&mut c, db).await;

    // Before any answer: the statement is sent and nothing ever comes back.
    relay.set(Fault::Swallow);
    let err = c
        .query_drop("/* shardgate:node=dn1 */ INSERT INTO seq_1_to_3 VALUES (1)")
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), Some(1430), "{err}");
    assert!(err.to_string().contains("may or may not"), "{err}");
    relay.set(Fault::None);
    still_works(&mut c, db).await;

    let left = relay.settle_at_most(before, Duration::from_secs(5)).await;
    assert!(
        left <= before,
        "{left} connections through the relay, {before} before"
    );
    eprintln!("half-open mid-result detected after {took:?}");
}

/// A backend that goes silent after a client's LOAD DATA LOCAL file: the error that
/// ends the statement follows the file's last packet (the client waits for that
/// sequence id, not the command's), and the session goes on.
#[tokio::test]
async fn a_backend_silent_after_a_local_file_fails_the_load_in_sequence() {
    let db = "rel_infile";
    let relay =
        std::sync::Arc::new(FaultRelay::start(&sandbox().groups[0].primary.address()).await);
    let p = proxy(db, &relay.address(), "[pool]\nread_timeout_ms = 1000\n").await;
    let mut c = p.conn(Some(db)).await;
    c.query_drop(format!(
        "/* shardgate:node=dn1 */ CREATE TABLE {db}.loaded (v INT)"
    ))
    .await
    .unwrap();
    // The backend asks for the file; as the client sends it, the path goes silent.
    let silence = relay.clone();
    c.set_infile_handler(async move {
        silence.set(Fault::Swallow);
        let lines = (0..5000).map(|i| Ok(bytes::Bytes::from(format!("{i}\n"))));
        Ok(Box::pin(futures_util::stream::iter(lines)) as mysql_async::InfileData)
    });
    let err = c
        .query_drop(format!(
            "/* shardgate:node=dn1 */ LOAD DATA LOCAL INFILE 'mem' INTO TABLE {db}.loaded"
        ))
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), Some(1430), "{err}");
    relay.set(Fault::None);
    still_works(&mut c, db).await;
}

#[tokio::test]
async fn slow_delivery_slows_answers_but_changes_none() {
    let db = "rel_delay";
    let relay = FaultRelay::start(&sandbox().groups[0].primary.address()).await;
    let p = proxy(db, &relay.address(), "[pool]\nread_timeout_ms = 5000\n").await;
    let mut c = p.conn(Some(db)).await;
    c.query_drop("/* shardgate:node=dn1 */ CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(100))")
        .await
        .unwrap();
    relay.set(Fault::Delay(Duration::from_millis(30)));
    let rows: Vec<(i64, String)> = c
        .query("/* shardgate:node=dn1 */ SELECT seq, REPEAT('y', seq % 90) FROM seq_1_to_20000")
        .await
        .unwrap();
    assert_eq!(rows.len(), 20000);
    assert!(rows
        .iter()
        .all(|(n, s)| s.len() as i64 == n % 90 && s.bytes().all(|b| b == b'y')));
    c.query_drop("/* shardgate:node=dn1 */ INSERT INTO t SELECT seq, 'z' FROM seq_1_to_500")
        .await
        .unwrap();
    relay.set(Fault::None);
    let n: Option<i64> = c
        .query_first("/* shardgate:node=dn1 */ SELECT COUNT(*) FROM t")
        .await
        .unwrap();
    assert_eq!(n, Some(500));
}

/// A node that accepts TCP connections and never says a word.
async fn mute_node() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_mute_node_never_stalls_sessions_on_other_nodes() {
    let db = "rel_mute";
    let (mute, _task) = mute_node().await;
    let p = proxy(db, &mute, "[pool]\nconnect_timeout_ms = 8000\n").await;
    let mut stuck = p.conn(Some(db)).await;
    let mut other = p.conn(Some(db)).await;

    let started = Instant::now();
    let blocked = async {
        let r = stuck.query_drop("/* shardgate:node=dn1 */ SELECT 1").await;
        (r, Instant::now())
    };
    let meanwhile = async {
        for _ in 0..20 {
            dn2_works(&mut other, db).await;
        }
        Instant::now()
    };
    let ((result, failed_at), others_done) = tokio::join!(blocked, meanwhile);
    let err = result.unwrap_err();
    assert!(
        matches!(error_code(&err), Some(1429 | 1430)),
        "the statement on the mute node: {err}"
    );
    assert!(
        others_done < failed_at,
        "sessions on dn2 finished {:?} after the start, the mute node's statement failed after {:?}",
        others_done - started,
        failed_at - started
    );
    // Both sessions go on.
    dn2_works(&mut stuck, db).await;
    dn2_works(&mut other, db).await;
}

#[tokio::test]
async fn a_node_stopping_mid_result_never_stalls_sessions_on_other_nodes() {
    let db = "rel_stop";
    let relay = FaultRelay::start(&sandbox().groups[0].primary.address()).await;
    let p = proxy(db, &relay.address(), "[pool]\nread_timeout_ms = 6000\n").await;
    let mut stuck = p.conn(Some(db)).await;
    let mut other = p.conn(Some(db)).await;
    still_works(&mut other, db).await;

    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let blocked = async {
        let e = rows_then_end(&mut stuck, ENDLESS, 100, || {
            relay.set(Fault::Swallow);
            let _ = tx.send(());
        })
        .await;
        (e, Instant::now())
    };
    let meanwhile = async {
        rx.await.unwrap();
        for _ in 0..20 {
            dn2_works(&mut other, db).await;
        }
        Instant::now()
    };
    let ((err, failed_at), others_done) = tokio::join!(blocked, meanwhile);
    assert_eq!(error_code(&err), Some(1430), "{err}");
    assert!(
        others_done < failed_at,
        "dn2's sessions waited for dn1's failure"
    );
    relay.set(Fault::None);
    still_works(&mut stuck, db).await;
}

#[tokio::test]
async fn a_full_pool_makes_statements_wait_no_longer_than_acquire_timeout() {
    let db = "rel_pool";
    let g1 = sandbox().groups[0].primary.address();
    let p = proxy(db, &g1, "[pool]\nmax_size = 1\nacquire_timeout_ms = 700\n").await;
    let mut holder = p.conn(Some(db)).await;
    let mut waiter = p.conn(Some(db)).await;
    holder
        .query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    // A transaction keeps dn1's only connection.
    holder.query_drop("BEGIN").await.unwrap();
    holder.query_drop("INSERT INTO t VALUES (1)").await.unwrap();

    let started = Instant::now();
    let err = waiter
        .query_drop("INSERT INTO t VALUES (2)")
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(error_code(&err), Some(1429), "{err}");
    assert!(err.to_string().contains("acquire_timeout_ms"), "{err}");
    assert!(
        waited >= Duration::from_millis(700),
        "gave up after {waited:?}"
    );
    // dn1 has its own pool: the waiter's statements there do not wait.
    let sum: Option<i64> = waiter
        .query_first("/* shardgate:node=dn1 */ SELECT SUM(seq) FROM seq_1_to_10")
        .await
        .unwrap();
    assert_eq!(sum, Some(55));

    holder.query_drop("COMMIT").await.unwrap();
    waiter.query_drop("INSERT INTO t VALUES (2)").await.unwrap();
    let ids: Vec<i32> = waiter.query("SELECT id FROM t ORDER BY id").await.unwrap();
    assert_eq!(ids, [1, 2]);
}

/// Found by the fault tests: a prepared statement's node hint was ignored, and it ran
/// on the schema's node.
#[tokio::test]
async fn a_prepared_statement_runs_on_its_hinted_node() {
    let db = "rel_hint";
    let p = proxy(db, &sandbox().groups[0].primary.address(), "").await;
    let mut c = p.conn(Some(db)).await;
    let ids = [0, 1].map(|g| sandbox().groups[g].primary.server_id);
    for (node, id) in [("dn1", ids[0]), ("dn2", ids[1])] {
        let sql = format!("/* shardgate:node={node} */ SELECT @@server_id");
        let text: Option<u32> = c.query_first(&sql).await.unwrap();
        let stmt = c.prep(&sql).await.unwrap();
        let prepared: Option<u32> = c.exec_first(&stmt, ()).await.unwrap();
        assert_eq!((text, prepared), (Some(id), Some(id)), "{node}");
    }
    let err = c
        .prep("/* shardgate:node=dn9 */ SELECT 1")
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), Some(1235), "{err}");
}

/// A batch that opened a transaction before its result was cut: the client was told
/// the transaction is open, so the session must not run its next statements outside
/// it (found by review: they ran autocommitted on a new connection).
#[tokio::test]
async fn a_cut_inside_a_batch_transaction_loses_the_transaction_loudly() {
    let db = "rel_batch_txn";
    let relay = FaultRelay::start(&sandbox().groups[0].primary.address()).await;
    let p = proxy(db, &relay.address(), "").await;
    let mut c = p.conn(Some(db)).await;
    c.query_drop("/* shardgate:node=dn1 */ CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let select = ENDLESS.trim_start_matches("/* shardgate:node=dn1 */ ");
    let batch = format!("/* shardgate:node=dn1 */ BEGIN; INSERT INTO t VALUES (1); {select}");
    let mut result = c.query_iter(batch).await.unwrap();
    let _: Vec<Row> = result.collect().await.unwrap();
    let _: Vec<Row> = result.collect().await.unwrap();
    for _ in 0..1000 {
        assert!(result.next().await.unwrap().is_some());
    }
    relay.reset_all();
    let err = error_at_end(&mut result).await;
    drop(result);
    assert_eq!(error_code(&err), Some(1430), "{err}");
    assert!(err.to_string().contains("ROLLBACK"), "{err}");
    // Until the client ends it, the lost transaction fails every statement.
    let e = c
        .query_drop("/* shardgate:node=dn1 */ INSERT INTO t VALUES (2)")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("backend connection was lost"), "{e}");
    // BEGIN ends it as COMMIT would, with the error (found by the soak: sysbench,
    // like drivers, retries a failed transaction from its BEGIN, and looped forever
    // while BEGIN was refused); the next BEGIN starts afresh.
    let e = c.query_drop("BEGIN").await.unwrap_err();
    assert!(e.to_string().contains("run it again"), "{e}");
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("/* shardgate:node=dn1 */ INSERT INTO t VALUES (3)")
        .await
        .unwrap();
    c.query_drop("COMMIT").await.unwrap();
    let mut d = direct(&sandbox().groups[0].primary, Some(db)).await;
    let ids: Vec<i32> = d.query("SELECT id FROM t ORDER BY id").await.unwrap();
    assert_eq!(ids, [3], "the batch's INSERT went with its transaction");
}

/// A read over every shard of a sharded table, one shard's connection reset while its
/// rows stream: the merged result ends with the error, the session goes on.
#[tokio::test]
async fn a_reset_mid_scatter_ends_the_merged_result_and_the_session_goes_on() {
    let db = "rel_scatter";
    let relay = FaultRelay::start(&sandbox().groups[0].primary.address()).await;
    let p = proxy(
        db,
        &relay.address(),
        &format!(
            "[rules.halves]\nalgorithm = \"mod\"\nshards = 2\n\
             [schemas.{db}.tables.big]\nkind = \"sharded\"\ncolumn = \"id\"\nrule = \"halves\"\nnodes = [\"dn1\", \"dn2\"]\n"
        ),
    )
    .await;
    // dn1's shard streams without end (a view over the sequence engine); dn2's is a
    // plain table.
    let mut d1 = direct(&sandbox().groups[0].primary, Some(db)).await;
    d1.query_drop(
        "CREATE VIEW big AS SELECT seq AS id, REPEAT('x', 200) AS pad FROM seq_0_to_100000000",
    )
    .await
    .unwrap();
    let mut d2 = direct(&sandbox().groups[1].primary, Some(db)).await;
    d2.query_drop("CREATE TABLE big (id BIGINT UNSIGNED NOT NULL, pad VARCHAR(200))")
        .await
        .unwrap();
    let mut c = p.conn(Some(db)).await;
    let before = relay.live();
    let err = rows_then_end(&mut c, "SELECT id, pad FROM big", 1000, || {
        relay.reset_all()
    })
    .await;
    assert_eq!(error_code(&err), Some(1430), "{err}");
    still_works(&mut c, db).await;
    let left = relay.settle_at_most(before, Duration::from_secs(5)).await;
    assert!(
        left <= before,
        "{left} connections through the relay, {before} before"
    );
}
