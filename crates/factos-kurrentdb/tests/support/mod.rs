//! Where the tests find KurrentDB: a real server when
//! `FACTOS_KURRENTDB_URL` is set (each store scoped to streams of its own,
//! since the server is shared and never empty), otherwise an in-process
//! protocol-level fake per store (unscoped: the store sees the whole,
//! empty database, as an application would).

#![allow(dead_code)]

use factos_kurrentdb::KurrentStore;

/// A connection string for a fresh database, and the prefix that scopes a
/// store to a fresh part of it on a real server.
pub async fn fresh_target() -> (String, Option<String>) {
    factos_test_kurrentdb::fresh_target()
        .await
        .expect("an in-process KurrentDB server")
}

/// A store that sees an empty database.
pub async fn fresh_store() -> KurrentStore {
    let (url, prefix) = fresh_target().await;
    let store = KurrentStore::connect(&url).expect("a KurrentDB client");
    match prefix {
        Some(prefix) => store.scoped(&prefix).expect("a valid prefix"),
        None => store,
    }
}
