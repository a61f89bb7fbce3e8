//! SQL predicates over the JSON payload, in PostgreSQL's dialect.

use factos_conformance::cases::{
    PredicateSql, escaping_predicates_are_refused, predicates_narrow_reads_and_conditions,
};
use factos_postgres::{PgStore, PoolOptions};
use factos_test_postgres::Cluster;

const SQL: PredicateSql = PredicateSql {
    day_equals: "(convert_from(data, 'UTF8')::jsonb ->> 'day')::int8 = $1",
    note_equals: "(convert_from(data, 'UTF8')::jsonb ->> 'note') = $1",
};

async fn fresh_store() -> Result<PgStore, Box<dyn std::error::Error + Send + Sync>> {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let store = PgStore::connect_with(config, PoolOptions::new(4))?;
    store.migrate().await?;
    Ok(store)
}

#[tokio::test]
async fn predicates_narrow_reads_and_conditions_in_postgres() -> factos_conformance::CaseResult {
    predicates_narrow_reads_and_conditions(&fresh_store().await?, SQL).await
}

#[tokio::test]
async fn escaping_predicates_are_refused_in_postgres() -> factos_conformance::CaseResult {
    escaping_predicates_are_refused(&fresh_store().await?, SQL).await
}
