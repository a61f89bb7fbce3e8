//! Effect runners on KurrentDB: checkpoints and parked effects live in the
//! database (streams of their own, hidden from the application's log), so
//! another client, as after a restart, goes on where the first stopped;
//! parked effects are retried or discarded on request.

mod support;

use factos_conformance::CaseResult;
use factos_kurrentdb::KurrentStore;
use support::fresh_target;

#[tokio::test]
async fn runners_go_on_from_their_stored_checkpoint() -> CaseResult {
    let (url, prefix) = fresh_target().await;
    let open = || -> Result<KurrentStore, factos_kurrentdb::KurrentError> {
        let store = KurrentStore::connect(&url)?;
        match &prefix {
            Some(prefix) => store.scoped(prefix),
            None => Ok(store),
        }
    };
    factos_conformance::effects::runners_go_on_from_their_stored_checkpoint(&open()?, &open()?).await
}

#[tokio::test]
async fn runners_decode_events_stored_by_older_code() -> CaseResult {
    let (url, prefix) = fresh_target().await;
    let store = KurrentStore::connect(&url)?;
    let store = match &prefix {
        Some(prefix) => store.scoped(prefix)?,
        None => store,
    };
    factos_conformance::effects::runners_decode_events_stored_by_older_code(&store).await
}

#[tokio::test]
async fn parked_effects_are_retried_or_discarded_on_request() -> CaseResult {
    let (url, prefix) = fresh_target().await;
    let store = KurrentStore::connect(&url)?;
    let store = match &prefix {
        Some(prefix) => store.scoped(prefix)?,
        None => store,
    };
    factos_conformance::effects::parked_effects_are_retried_or_discarded_on_request(&store).await
}
