//! Where following "from now" starts: what `tail` and `GET /subscribe`
//! share.

use factos::{Cursor, Query};

use crate::error::CliError;
use crate::store::CliStore;

/// Events examined per read while walking to the end.
const SKIP_BATCH: usize = 10_000;

/// The cursor after everything that can be read now, found by walking the
/// log from `after` without keeping anything: a follower starting there
/// sees only events committed from now on (and, on PostgreSQL, events of
/// transactions still running now).
///
/// # Errors
///
/// When the store cannot be read.
pub async fn end_cursor<S: CliStore>(store: &S, query: &Query) -> Result<Option<Cursor>, CliError> {
    let mut after = None;
    loop {
        let batch = store
            .read_after(query, after, SKIP_BATCH)
            .await
            .map_err(CliError::store("cannot read the store"))?;
        after = batch.end.or(after);
        if batch.examined < SKIP_BATCH {
            return Ok(after);
        }
    }
}
