//! Schema setup: versioned, idempotent, and refusing what it does not know.

use factos::{AppendRequest, EventId, EventStore, EventType, NewEvent, Query, ReadOptions, StoreError, StreamId};
use factos_sqlite::{SqliteError, SqliteStore, schema::SCHEMA_VERSION};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn user_version(path: &std::path::Path) -> rusqlite::Result<i64> {
    rusqlite::Connection::open(path)?.pragma_query_value(None, "user_version", |row| row.get(0))
}

#[tokio::test]
async fn migrate_is_idempotent_and_records_the_version() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("events.db");
    let store = SqliteStore::open(&db)?;
    store.migrate().await?;
    let event = NewEvent::new(EventId::random(), EventType::new("E")?, b"kept".to_vec());
    store
        .append(AppendRequest::new(StreamId::new("s")?, vec![event]))
        .await?;
    store.migrate().await?;
    drop(store);
    let reopened = SqliteStore::open(&db)?;
    reopened.migrate().await?;
    assert_eq!(user_version(&db)?, SCHEMA_VERSION);
    assert_eq!(reopened.read(&Query::all(), ReadOptions::forwards()).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn refuses_a_database_from_a_newer_schema() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("events.db");
    SqliteStore::open(&db)?.migrate().await?;
    rusqlite::Connection::open(&db)?.pragma_update(None, "user_version", 99)?;
    match SqliteStore::open(&db) {
        Err(SqliteError::SchemaTooNew { found: 99, supported }) => assert_eq!(supported, SCHEMA_VERSION),
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert_eq!(user_version(&db)?, 99, "nothing may be written to a newer database");
    Ok(())
}

#[tokio::test]
async fn an_unmigrated_store_says_so() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path().join("events.db"))?;
    match store.read(&Query::all(), ReadOptions::forwards()).await {
        Err(StoreError::Backend(source)) => {
            assert!(
                matches!(source.downcast_ref::<SqliteError>(), Some(SqliteError::NotMigrated)),
                "{source}"
            );
        }
        other => panic!("expected NotMigrated, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn in_memory_store_works_without_a_file() -> TestResult {
    let store = SqliteStore::open_in_memory()?;
    store.migrate().await?;
    let event = NewEvent::new(EventId::random(), EventType::new("E")?, Vec::new());
    let committed = store
        .append(AppendRequest::new(StreamId::new("s")?, vec![event]))
        .await?;
    assert_eq!(
        store.read(&Query::all(), ReadOptions::forwards()).await?,
        committed.records
    );
    Ok(())
}

#[tokio::test]
async fn a_database_of_the_first_schema_upgrades_and_keeps_its_events() -> TestResult {
    use factos::{Checkpoints, Subscription};
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("events.db");
    let conn = rusqlite::Connection::open(&db)?;
    conn.execute_batch(include_str!("fixtures/schema_v1.sql"))?;
    conn.execute_batch(include_str!("fixtures/v1_events.sql"))?;
    drop(conn);

    let store = SqliteStore::open(&db)?;
    match store.read(&Query::all(), ReadOptions::forwards()).await {
        Err(StoreError::Backend(source)) => {
            assert!(matches!(
                source.downcast_ref::<SqliteError>(),
                Some(SqliteError::NotMigrated)
            ));
        }
        other => panic!("an old schema must be migrated first, got {other:?}"),
    }
    store.migrate().await?;
    assert_eq!(user_version(&db)?, SCHEMA_VERSION);
    let events = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].metadata.get("by"), Some("box office"));
    let mut subscription = Subscription::new(&store, Query::all(), None);
    let followed = subscription.catch_up().await?;
    assert_eq!(
        followed.iter().map(|d| d.record.id).collect::<Vec<_>>(),
        events.iter().map(|e| e.id).collect::<Vec<_>>()
    );
    let end = subscription.cursor().ok_or("the old events are followable")?;
    store.save_checkpoint("upgraded", end).await?;
    assert_eq!(store.load_checkpoint("upgraded").await?, Some(end));
    Ok(())
}

/// Version 6 gives parked effects the cursor a runner finds their event
/// again with: an effect parked under version 5 gets its event's own
/// delivery cursor, and can be asked to be retried.
#[tokio::test]
async fn effects_parked_under_version_5_get_their_events_cursors() -> TestResult {
    use factos::{Checkpoints, EffectKey, Subscription};
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("events.db");
    let store = SqliteStore::open(&db)?;
    store.migrate().await?;
    for payload in [b"a", b"b"] {
        let event = NewEvent::new(EventId::random(), EventType::new("E")?, payload.to_vec());
        store
            .append(AppendRequest::new(StreamId::new("s")?, vec![event]))
            .await?;
    }
    let delivered = Subscription::new(&store, Query::all(), None).catch_up().await?;
    drop(store);
    // The table as version 5 left it, holding one parked effect.
    let conn = rusqlite::Connection::open(&db)?;
    conn.execute_batch(
        "ALTER TABLE factos_parked_effects DROP COLUMN cursor;
         ALTER TABLE factos_parked_effects DROP COLUMN retry_requested_at;
         PRAGMA user_version = 5;",
    )?;
    let parked = &delivered[1].record;
    conn.execute(
        "INSERT INTO factos_parked_effects (runner, event_id, effect_index, position, attempts, error, parked_at) \
         VALUES ('mailer', ?1, 0, ?2, 5, 'refused', 0)",
        rusqlite::params![parked.id.as_bytes().as_slice(), i64::try_from(parked.position.value())?],
    )?;
    drop(conn);

    let store = SqliteStore::open(&db)?;
    store.migrate().await?;
    assert_eq!(user_version(&db)?, SCHEMA_VERSION);
    let found = store.parked_effects("mailer").await?;
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].cursor, found[0].attempts, found[0].retry_requested),
        (delivered[1].cursor, 5, false)
    );
    let key = EffectKey {
        event: parked.id,
        index: 0,
    };
    assert!(store.retry_parked("mailer", key).await?);
    assert!(store.parked_effects("mailer").await?[0].retry_requested);
    Ok(())
}
