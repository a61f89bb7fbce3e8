//! Read models on D1 pass the projection cases inside a real worker on a
//! real local D1 (miniflare's `workerd`): each batch of the tally is one
//! D1 `batch([...])` run by the worker's `factos-d1` store, opened by the
//! checkpoint's compare-and-set, so a second projector (another worker)
//! never applies a batch twice. Skipped, saying why, without the toolchain
//! (see `conformance.rs`).
//!
//! Child processes are this test binary run again with `--ignored --exact
//! child_process`; the environment names the worker and the database.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;

use factos::BoxError;
use factos_conformance::projections::{ProjectionFixture, run_projector};
use factos_test_d1::{D1Client, D1Tally, D1Worker};

fn d1_available() -> Result<(), String> {
    D1Worker::shared().map(drop).map_err(|e| e.to_string())
}

/// Events and the tally in one fresh D1 database.
struct OneDatabase(D1Client);

async fn fresh_database() -> Result<OneDatabase, BoxError> {
    Ok(OneDatabase(D1Client::fresh(D1Worker::shared()?).await?))
}

impl ProjectionFixture for OneDatabase {
    type Source = D1Client;
    type ReadModels = D1Client;
    type Tally = D1Tally;

    fn source(&self) -> &D1Client {
        &self.0
    }
    fn read_models(&self) -> &D1Client {
        &self.0
    }
    async fn reopen(&self) -> Result<D1Client, BoxError> {
        Ok(D1Client::attach(self.0.url(), self.0.db()))
    }
    fn tally(&self, refuse_poison: bool) -> D1Tally {
        D1Tally { refuse_poison }
    }
    async fn tallies(&self) -> Result<BTreeMap<String, i64>, BoxError> {
        Ok(self.0.tallies().await?)
    }
    fn spawn_projector(&self) -> std::io::Result<std::process::Child> {
        factos_conformance::child::spawn_child_process(&[
            ("FACTOS_PROJECTION_D1_URL", self.0.url()),
            ("FACTOS_PROJECTION_D1_DB", &self.0.db().to_string()),
        ])
    }
}

factos_conformance::projection_tests!(fresh_database, unless_skipped: d1_available);

/// The entry point of child processes; does nothing unless started by a
/// projection case.
#[test]
#[ignore = "run as a child process by the projection cases"]
fn child_process() -> Result<(), BoxError> {
    let (Ok(url), Ok(db)) = (
        std::env::var("FACTOS_PROJECTION_D1_URL"),
        std::env::var("FACTOS_PROJECTION_D1_DB"),
    ) else {
        return Ok(());
    };
    tokio::runtime::Runtime::new()?.block_on(async {
        let store = D1Client::attach(&url, db.parse()?);
        run_projector(&store, &store, D1Tally { refuse_poison: false }).await?;
        Ok(())
    })
}
