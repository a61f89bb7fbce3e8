//! # factos-test-d1: factos-d1 against a real local D1
//!
//! Test support, not published. The `factos-d1` store only runs inside a
//! Cloudflare worker, so its tests run it in one: `factos-d1-test-worker`
//! is built with `worker-build` and served by miniflare (Cloudflare's
//! `workerd` runtime with its real local D1); [`D1Client`] is a native
//! store whose every contract call is one HTTP request to that worker's
//! `factos-d1` store ([`wire`] is the JSON both sides speak). The shared
//! conformance suite runs natively on `D1Client`, so each of its calls is
//! executed by `factos-d1` against D1 in `workerd`, and concurrent parties
//! are concurrent requests.
//!
//! [`D1Worker::shared`] builds and starts the worker once per test process;
//! when the toolchain is missing (no node, no `npm ci` in
//! `crates/factos-test-d1/js`, no `worker-build` or `wasm-bindgen`) it says
//! what is missing, and the tests skip with that message.
#![deny(missing_docs)]

pub mod wire;

#[cfg(not(target_arch = "wasm32"))]
mod client;
#[cfg(not(target_arch = "wasm32"))]
mod harness;

#[cfg(not(target_arch = "wasm32"))]
pub use client::{D1Client, D1Tally};
#[cfg(not(target_arch = "wasm32"))]
pub use harness::{D1Worker, Unavailable};
