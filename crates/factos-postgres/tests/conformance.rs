//! The PostgreSQL store passes the shared conformance suite and the
//! model-based property test on a real server, each case in its own schema.

use factos_postgres::{PgStore, PoolOptions};
use factos_test_postgres::Cluster;

async fn fresh_store() -> PgStore {
    let cluster = Cluster::shared().expect("a PostgreSQL server for tests");
    let (config, _) = cluster.fresh_schema().await.expect("a fresh schema");
    let store = PgStore::connect_with(config, PoolOptions::new(24)).expect("a connection pool");
    store.migrate().await.expect("migrate a fresh schema");
    store
}

factos_conformance::conformance_tests!(fresh_store);
factos_conformance::follow_tests!(fresh_store);
factos_conformance::admin_tests!(fresh_store);
factos_conformance::retag_tests!(fresh_store, with_admin);
factos_conformance::snapshot_tests!(fresh_store);
