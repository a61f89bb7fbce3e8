//! SQL predicates over the JSON payload, in SQLite's dialect.

use factos_conformance::cases::{PredicateSql, predicates_narrow_reads_and_conditions};
use factos_sqlite::SqliteStore;

#[tokio::test]
async fn predicates_narrow_reads_and_conditions_in_sqlite() -> factos_conformance::CaseResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path().join("events.db"))?;
    store.migrate().await?;
    let sql = PredicateSql {
        day_equals: "json_extract(data, '$.day') = $1",
        note_equals: "json_extract(data, '$.note') = $1",
    };
    predicates_narrow_reads_and_conditions(&store, sql).await
}
