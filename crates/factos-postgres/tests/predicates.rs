//! SQL predicates over the JSON payload, in PostgreSQL's dialect.

use factos_conformance::cases::{PredicateSql, predicates_narrow_reads_and_conditions};
use factos_postgres::PgStore;
use factos_test_postgres::Cluster;

#[tokio::test]
async fn predicates_narrow_reads_and_conditions_in_postgres() -> factos_conformance::CaseResult {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let store = PgStore::connect(config, 4)?;
    store.migrate().await?;
    let sql = PredicateSql {
        day_equals: "(convert_from(data, 'UTF8')::jsonb ->> 'day')::int8 = $1",
        note_equals: "(convert_from(data, 'UTF8')::jsonb ->> 'note') = $1",
    };
    predicates_narrow_reads_and_conditions(&store, sql).await
}
