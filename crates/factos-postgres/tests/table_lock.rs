//! With `LockMode::TableLock` (the serialising baseline) followers get the
//! same guarantees as with the other modes.

use factos_postgres::{LockMode, PgStore, PoolOptions};
use factos_test_postgres::Cluster;

async fn fresh_store() -> PgStore {
    let cluster = Cluster::shared().expect("a PostgreSQL server for tests");
    let (config, _) = cluster.fresh_schema().await.expect("a fresh schema");
    let store = PgStore::connect_with(config, PoolOptions::new(24))
        .expect("a connection pool")
        .with_lock_mode(LockMode::TableLock);
    store.migrate().await.expect("migrate a fresh schema");
    store
}

factos_conformance::follow_tests!(fresh_store);
factos_conformance::retag_tests!(fresh_store);
factos_conformance::snapshot_tests!(fresh_store);
