//! The D1 store passes the shared conformance suite, the model-based
//! property test and the follow cases inside a real worker on a real local D1 (miniflare's
//! `workerd`): every contract call of the suite is an HTTP request to the
//! test worker's `factos-d1` store (see `factos-test-d1`). Without the
//! toolchain (Node.js, `npm ci` in `crates/factos-test-d1/js`,
//! `worker-build`, `wasm-bindgen-cli`) every case says SKIPPED and why.
#![cfg(not(target_arch = "wasm32"))]

use factos_test_d1::{D1Client, D1Worker};

fn d1_available() -> Result<(), String> {
    D1Worker::shared().map(drop).map_err(|e| e.to_string())
}

async fn fresh_store() -> D1Client {
    let worker = D1Worker::shared().expect("checked by d1_available");
    D1Client::fresh(worker)
        .await
        .expect("a fresh D1 database in the worker")
}

factos_conformance::conformance_tests!(
    fresh_store,
    factos_conformance::Capabilities::ALL,
    unless_skipped: d1_available
);

factos_conformance::follow_tests!(fresh_store, unless_skipped: d1_available);
