//! Schema setup: versioned, idempotent, and refusing what it does not know.

use factos::{AppendRequest, EventId, EventStore, EventType, NewEvent, Query, ReadOptions, StreamId};
use factos_postgres::{PgError, PgStore, schema::SCHEMA_VERSION};
use factos_test_postgres::Cluster;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

#[tokio::test]
async fn migrate_is_idempotent_even_when_run_concurrently() -> TestResult {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let store = PgStore::connect(config.clone(), 4)?;
    let other = PgStore::connect(config, 2)?;
    let (a, b, c) = tokio::join!(store.migrate(), store.migrate(), other.migrate());
    a?;
    b?;
    c?;
    let event = NewEvent::new(EventId::random(), EventType::new("E")?, b"kept".to_vec());
    store
        .append(AppendRequest::new(StreamId::new("s")?, vec![event]))
        .await?;
    store.migrate().await?;
    assert_eq!(store.read(&Query::all(), ReadOptions::forwards()).await?.len(), 1);
    let client = store.pool().get().await?;
    let versions: Vec<i32> = client
        .query("SELECT version FROM factos_schema_version ORDER BY version", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    Ok(())
}

#[tokio::test]
async fn refuses_a_schema_from_a_newer_version() -> TestResult {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let store = PgStore::connect(config, 2)?;
    store.migrate().await?;
    store
        .pool()
        .get()
        .await?
        .execute("INSERT INTO factos_schema_version (version) VALUES (99)", &[])
        .await?;
    match store.migrate().await {
        Err(PgError::SchemaTooNew { found: 99, supported }) => assert_eq!(supported, SCHEMA_VERSION),
        other => return Err(format!("expected SchemaTooNew, got {other:?}").into()),
    }
    Ok(())
}
