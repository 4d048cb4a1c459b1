//! Background upkeep of every pool: health checks of backends marked down (so replicas
//! come back into rotation by themselves) and idle-connection maintenance.

use std::sync::Arc;
use std::time::Duration;

use super::{BackendConn, Flavor, Pool};

/// Runs forever; spawn it once. `pools` gives the pools in use at each round, so a
/// layout change is followed without telling this task.
pub async fn run(pools: impl Fn() -> Vec<Arc<Pool>>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for pool in pools() {
            if !pool.is_healthy() {
                let ok = match BackendConn::connect(
                    &pool.target,
                    Flavor::default(),
                    None,
                    pool.settings.connect_timeout,
                )
                .await
                {
                    Ok(mut c) => c.ping().await.is_ok(),
                    Err(_) => false,
                };
                pool.set_healthy(ok);
            }
            pool.learn_size().await;
            pool.maintain().await;
        }
    }
}
