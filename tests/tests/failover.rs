//! A replica that dies while clients read: reads move to what is left, without errors.

use mysql_async::prelude::*;
use tests::{Proxy, Sandbox};

#[tokio::test]
async fn reads_fall_back_to_the_primary_when_the_replica_dies() {
    let mut sandbox = Sandbox::start(&[1]).expect("start the MariaDB sandbox");
    let g = &sandbox.groups[0];
    let (primary_id, replica_id) = (g.primary.server_id, g.replicas[0].server_id);
    let proxy = Proxy::passthrough(&g.primary.address(), &[g.replicas[0].address()]);
    let mut c = proxy.conn(None).await;
    let mut other = proxy.conn(None).await;

    for _ in 0..5 {
        let id: Option<u32> = c.query_first("SELECT @@server_id").await.unwrap();
        assert_eq!(id, Some(replica_id));
    }
    // Warm pooled connections to the replica, then kill it like a crash would.
    let id: Option<u32> = other.query_first("SELECT @@server_id").await.unwrap();
    assert_eq!(id, Some(replica_id));
    sandbox.groups[0].replicas[0].kill();

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
