//! SQL predicates over the JSON payload, in SQLite's dialect.

use factos_conformance::cases::{
    PredicateSql, escaping_predicates_are_refused, predicates_narrow_reads_and_conditions,
};
use factos_sqlite::SqliteStore;

const SQL: PredicateSql = PredicateSql {
    day_equals: "json_extract(data, '$.day') = $1",
    note_equals: "json_extract(data, '$.note') = $1",
};

async fn fresh_store(dir: &tempfile::TempDir) -> Result<SqliteStore, Box<dyn std::error::Error + Send + Sync>> {
    let store = SqliteStore::open(dir.path().join("events.db"))?;
    store.migrate().await?;
    Ok(store)
}

#[tokio::test]
async fn predicates_narrow_reads_and_conditions_in_sqlite() -> factos_conformance::CaseResult {
    let dir = tempfile::tempdir()?;
    predicates_narrow_reads_and_conditions(&fresh_store(&dir).await?, SQL).await
}

#[tokio::test]
async fn escaping_predicates_are_refused_in_sqlite() -> factos_conformance::CaseResult {
    let dir = tempfile::tempdir()?;
    escaping_predicates_are_refused(&fresh_store(&dir).await?, SQL).await
}
