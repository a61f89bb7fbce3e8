//! The in-memory reference store passes the conformance suite.

use factos::MemoryStore;

async fn fresh_store() -> MemoryStore {
    MemoryStore::new()
}

factos_conformance::conformance_tests!(fresh_store);
factos_conformance::follow_tests!(fresh_store);
factos_conformance::retag_tests!(fresh_store);
factos_conformance::snapshot_tests!(fresh_store);
