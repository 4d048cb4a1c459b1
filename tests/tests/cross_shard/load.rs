//! LOAD DATA LOCAL over the shop: split over shards, copied to every copy of a
//! broadcast table, one statement whatever happens.

use mysql_async::prelude::*;
use mysql_async::Conn;
use tests::{direct, PASSWORD, USER};

use super::{sandbox, shop, Shop};

/// LOAD DATA LOCAL: into a table that lives whole on the schema's node it is
/// relayed there; into a sharded table each line goes to its key's shard (a CSV with
/// enclosed fields, CRLF lines, a header skipped, keys negative and 64-bit, NULLs),
/// so that one MariaDB loading the same file holds the same rows and every row is
/// found by its key; into a broadcast table every copy gets every line. A load that
/// fails on one shard is rolled back on all; a SET of the shard column, and a load
/// inside a transaction, are refused.
#[tokio::test]
async fn load_data_splits_the_file_over_shards_and_copies() {
    // Plain transactions, one per shard, committed when all succeeded.
    load_data_case("xs_load", "[transactions]\nmode = \"best_effort\"").await;
}

/// The same in xa mode: each shard's part is an XA branch, prepared and committed
/// together (or rolled back together); none is left behind.
#[tokio::test]
async fn load_data_in_xa_mode_commits_or_rolls_back_every_branch() {
    let db = "xs_load_xa";
    load_data_case(
        db,
        &format!("instance_id = \"{db}\"\n[transactions]\nmode = \"xa\""),
    )
    .await;
    for g in &sandbox().groups {
        let mut d = direct(&g.primary, None).await;
        let rows: Vec<(u32, u32, u32, Vec<u8>)> = d.query("XA RECOVER").await.unwrap();
        let prefix = format!("sg:{db}:");
        assert!(
            !rows.iter().any(|r| r.3.starts_with(prefix.as_bytes())),
            "{rows:?}"
        );
    }
}

async fn load_data_case(db: &str, server: &str) {
    let Shop {
        proxy, mut oracle, ..
    } = shop(db, (USER, PASSWORD), server).await;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let users: [i64; 7] = [
        -9_223_372_036_854_775_808,
        -5,
        0,
        3,
        999,
        4_294_967_296,
        9_223_372_036_854_775_807,
    ];
    let mut csv = String::from("id,user_id,product_id,qty,amount,status,ratio,created\r\n");
    for i in 0..300i64 {
        let product = if i % 9 == 0 {
            "\\N".to_string()
        } else {
            (i % 8 + 1).to_string()
        };
        csv.push_str(&format!(
            "{},{},{product},{},\"{}.{:02}\",{},{},\"2024-{:02}-{:02} 10:00:00\"\r\n",
            10_000 + i,
            users[i as usize % users.len()],
            i % 11 - 3,
            i * 3,
            i % 100,
            ["new", "paid", "sent"][i as usize % 3],
            if i % 7 == 0 {
                "NULL".to_string()
            } else {
                format!("{}.25", i)
            },
            i % 12 + 1,
            i % 28 + 1
        ));
    }
    std::fs::write(path("orders.csv"), &csv).unwrap();
    std::fs::write(path("tags.csv"), "7,gold\n8,silver\n").unwrap();
    std::fs::write(
        path("products.tsv"),
        "901\tlamp\thome\t19.99\n902\tmug\\tcup\t\\N\t3.50\n",
    )
    .unwrap();
    std::fs::write(path("bad.csv"), "20001,3,1,1,1,new,1,2024-01-01\n1,-5,1,1,1,new,1,2024-01-01\n20002,999,1,1,1,new,1,2024-01-01\n").unwrap();
    let files = ["orders.csv", "tags.csv", "products.tsv", "bad.csv"].map(path);
    let opts = |db: &str, o: mysql_async::Opts| {
        mysql_async::OptsBuilder::from_opts(o)
            .db_name(Some(db))
            .local_infile_handler(Some(mysql_async::WhiteListFsHandler::new(&files)))
    };
    let mut c = Conn::new(opts(db, proxy.opts(USER, PASSWORD, None)))
        .await
        .unwrap();
    let oracle_port = sandbox().groups[0].primary.port;
    let mut o = Conn::new(opts(
        &format!("{db}_oracle"),
        tests::opts(oracle_port, USER, PASSWORD, None),
    ))
    .await
    .unwrap();
    let load = |file: &str, rest: &str| {
        format!(
            "LOAD DATA LOCAL INFILE '{}' INTO TABLE {rest}",
            path(file).display()
        )
    };
    // Unconfigured: relayed.
    c.query_drop(load("tags.csv", "tags FIELDS TERMINATED BY ','"))
        .await
        .unwrap();
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM tags WHERE tag IN ('gold', 'silver')")
        .await
        .unwrap();
    assert_eq!(n, Some(2));
    // Sharded: split by key, as one MariaDB loads it.
    let sql = load(
        "orders.csv",
        "orders CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' \
         LINES TERMINATED BY '\\r\\n' IGNORE 1 LINES \
         (id, user_id, product_id, qty, amount, status, @ratio, created) \
         SET ratio = NULLIF(@ratio, 'NULL')",
    );
    c.query_drop(&sql).await.unwrap();
    assert_eq!(c.affected_rows(), 300);
    o.query_drop(&sql).await.unwrap();
    let all = "SELECT id, user_id, product_id, qty, amount, status, ratio, created FROM orders ORDER BY id";
    type Order = (
        i64,
        i64,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<f64>,
        Option<String>,
    );
    let got: Vec<Order> = c.query(all).await.unwrap();
    let want: Vec<Order> = oracle.query(all).await.unwrap();
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    for user in users {
        // Read by the key: one shard answers, so a misplaced row would be missing.
        let by_key = format!("SELECT COUNT(*) FROM orders WHERE user_id = {user} AND id >= 10000");
        let got: Option<i64> = c.query_first(&by_key).await.unwrap();
        let want: Option<i64> = oracle.query_first(&by_key).await.unwrap();
        assert_eq!((user, got), (user, want));
    }
    // Without a column list the table's own columns are taken.
    std::fs::write(
        path("bad.csv"),
        "30001,3,1,1,1,new,1,2024-01-01\n30002,999,2,1,1,paid,1,2024-01-01\n",
    )
    .unwrap();
    c.query_drop(load("bad.csv", "orders FIELDS TERMINATED BY ','"))
        .await
        .unwrap();
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM orders WHERE user_id = 999 AND id = 30002")
        .await
        .unwrap();
    assert_eq!(n, Some(1));
    // Broadcast: every copy gets every line.
    c.query_drop(load("products.tsv", "products"))
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 2);
    for group in &sandbox().groups {
        let mut node = direct(&group.primary, Some(db)).await;
        let rows: Vec<(i64, String, Option<String>)> = node
            .query("SELECT id, name, category FROM products WHERE id > 900 ORDER BY id")
            .await
            .unwrap();
        assert_eq!(
            rows,
            [
                (901, "lamp".into(), Some("home".into())),
                (902, "mug\tcup".into(), None)
            ]
        );
    }
    // A line without a shard key after lines already sent to their shards: every
    // shard's part is rolled back.
    // So does a key the server would store changed (a LOCAL load only warns): it
    // would sit where a read by its stored value does not look.
    let before: Option<i64> = c.query_first("SELECT COUNT(*) FROM orders").await.unwrap();
    for (bad, why) in [
        (
            "40003",
            "line 3 of the file: no value for shard column `user_id`",
        ),
        (
            "40003,12abc,1",
            "line 3 of the file: '12abc', which is not an integer",
        ),
        (
            "40003,\\N,1",
            "line 3 of the file: NULL (the column is NOT NULL",
        ),
    ] {
        std::fs::write(
            path("bad.csv"),
            format!(
                "40001,3,1,1,1,new,1,2024-01-01\n40002,999,1,1,1,new,1,2024-01-01\n{bad}\n\
                 40004,-5,1,1,1,new,1,2024-01-01\n"
            ),
        )
        .unwrap();
        let e = c
            .query_drop(load("bad.csv", "orders FIELDS TERMINATED BY ','"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains(why), "{e}");
        assert!(e.to_string().contains("rolled back"), "{e}");
        let after: Option<i64> = c.query_first("SELECT COUNT(*) FROM orders").await.unwrap();
        assert_eq!(after, before, "nothing of the failed load stays");
    }
    // The shard column may not come from SET; inside a transaction: refused.
    let e = c
        .query_drop(load(
            "bad.csv",
            "orders FIELDS TERMINATED BY ',' (id, @u) SET user_id = @u",
        ))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("shard column `user_id`"), "{e}");
    c.query_drop("BEGIN").await.unwrap();
    let e = c
        .query_drop(load("bad.csv", "orders FIELDS TERMINATED BY ','"))
        .await
        .unwrap_err();
    assert_eq!(tests::error_code(&e), Some(1235), "{e}");
    c.query_drop("ROLLBACK").await.unwrap();
    // Lines longer than a packet shardgate sends: cut between packets, whole rows.
    c.query_drop("ALTER TABLE orders ADD COLUMN note MEDIUMTEXT")
        .await
        .unwrap();
    let long = "x".repeat(300_000);
    std::fs::write(
        path("bad.csv"),
        format!("50001,3,{long}\n50002,999,short\n50003,-5,{long}y\n"),
    )
    .unwrap();
    c.query_drop(load(
        "bad.csv",
        "orders FIELDS TERMINATED BY ',' (id, user_id, note)",
    ))
    .await
    .unwrap();
    for (id, user, len) in [(50001, 3, 300_000), (50002, 999, 5), (50003, -5, 300_001)] {
        let got: Option<i64> = c
            .query_first(format!(
                "SELECT LENGTH(note) FROM orders WHERE user_id = {user} AND id = {id}"
            ))
            .await
            .unwrap();
        assert_eq!(got, Some(len), "{id}");
    }
}
