//! An effect runner on D1: its checkpoint and parked effects live in the
//! D1 database (the SQLite backend's tables), so a second runner goes on
//! where the first stopped, and parked effects are retried or discarded on
//! request. Skipped, saying why, without the toolchain.
#![cfg(not(target_arch = "wasm32"))]

use factos_conformance::CaseResult;
use factos_test_d1::{D1Client, D1Worker};

#[tokio::test]
async fn runners_go_on_from_their_stored_checkpoint() -> CaseResult {
    let worker = match D1Worker::shared() {
        Ok(worker) => worker,
        Err(why) => {
            eprintln!("SKIPPED runners_go_on_from_their_stored_checkpoint: {why}");
            return Ok(());
        }
    };
    let store = D1Client::fresh(worker).await?;
    factos_conformance::effects::runners_go_on_from_their_stored_checkpoint(&store, &store.clone()).await
}

#[tokio::test]
async fn runners_decode_events_stored_by_older_code() -> CaseResult {
    let worker = match D1Worker::shared() {
        Ok(worker) => worker,
        Err(why) => {
            eprintln!("SKIPPED runners_decode_events_stored_by_older_code: {why}");
            return Ok(());
        }
    };
    let store = D1Client::fresh(worker).await?;
    factos_conformance::effects::runners_decode_events_stored_by_older_code(&store).await
}

#[tokio::test]
async fn parked_effects_are_retried_or_discarded_on_request() -> CaseResult {
    let worker = match D1Worker::shared() {
        Ok(worker) => worker,
        Err(why) => {
            eprintln!("SKIPPED parked_effects_are_retried_or_discarded_on_request: {why}");
            return Ok(());
        }
    };
    let store = D1Client::fresh(worker).await?;
    factos_conformance::effects::parked_effects_are_retried_or_discarded_on_request(&store).await
}
