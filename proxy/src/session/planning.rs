//! Long statements are planned off the runtime's thread. Analysis is linear in the
//! statement's size, but a 200,000-value IN list still takes about 0.15 s of CPU, and
//! on the I/O thread every other session would wait that long. Statements of
//! [`OFF_THREAD`] bytes or more are planned on tokio's blocking pool instead.

use std::sync::Arc;

use router::plan::Prepared;
use router::reading::Reading;
use router::{Plan, RouteError};
use rules::Runtime;

/// From this size on, a statement is planned on the blocking pool (about 5 ms of
/// analysis; shorter ones cost less than the hand-off).
pub(super) const OFF_THREAD: usize = 64 * 1024;

/// Plans `sql` against logical schema `schema` of `rt` on the blocking pool.
pub(super) async fn plan(
    sql: Vec<u8>,
    rt: Arc<Runtime>,
    schema: String,
    reading: Reading,
) -> Result<Option<Plan>, RouteError> {
    off_thread(move || {
        let s = rt.schemas.get(&schema).ok_or_else(|| gone(&schema))?;
        router::plan(&sql, s, &rt, reading)
    })
    .await
}

/// Plans `sql` for PREPARE against logical schema `schema` of `rt` on the blocking pool.
pub(super) async fn prepare(
    sql: Vec<u8>,
    rt: Arc<Runtime>,
    schema: String,
    reading: Reading,
) -> Result<Option<Prepared>, RouteError> {
    off_thread(move || {
        let s = rt.schemas.get(&schema).ok_or_else(|| gone(&schema))?;
        router::plan::prepare(&sql, s, &rt, reading)
    })
    .await
}

async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RouteError> + Send + 'static,
) -> Result<T, RouteError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(RouteError::Invalid(format!("planning failed: {e}"))))
}

fn gone(schema: &str) -> RouteError {
    RouteError::Invalid(format!(
        "logical schema `{schema}` is not in the rules any more"
    ))
}
