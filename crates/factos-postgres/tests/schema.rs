//! Schema setup: versioned, idempotent, and refusing what it does not know.

use factos::{AppendRequest, EventId, EventStore, EventType, NewEvent, Query, ReadOptions, StreamId};
use factos_postgres::{PgError, PgStore, PoolOptions, schema::SCHEMA_VERSION};
use factos_test_postgres::Cluster;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

#[tokio::test]
async fn migrate_is_idempotent_even_when_run_concurrently() -> TestResult {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let store = PgStore::connect_with(config.clone(), PoolOptions::new(4))?;
    let other = PgStore::connect_with(config, PoolOptions::new(2))?;
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
    let store = PgStore::connect_with(config, PoolOptions::new(2))?;
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

#[tokio::test]
async fn stores_with_schemas_of_their_own_share_a_database_without_seeing_each_other() -> TestResult {
    let cluster = Cluster::shared()?;
    let url = cluster.connection_string();
    let suffix = std::process::id();
    let tickets = PgStore::connect(url.as_str())?.with_schema(&format!("Tickets \"{suffix}\""))?;
    let users = PgStore::connect(url.as_str())?.with_schema(&format!("users_{suffix}"))?;
    tickets.migrate().await?;
    users.migrate().await?;
    let stream = StreamId::new("s")?;
    let event = NewEvent::new(EventId::random(), EventType::new("E")?, b"kept".to_vec());
    tickets.append(AppendRequest::new(stream.clone(), vec![event])).await?;
    assert_eq!(tickets.read(&Query::all(), ReadOptions::forwards()).await?.len(), 1);
    assert_eq!(
        tickets.read_stream(&stream, factos::StreamRevision::FIRST).await?.len(),
        1
    );
    assert!(users.read(&Query::all(), ReadOptions::forwards()).await?.is_empty());
    assert!(
        users
            .read_stream(&stream, factos::StreamRevision::FIRST)
            .await?
            .is_empty()
    );
    let schemas: i64 = tickets
        .pool()
        .get()
        .await?
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'events' AND table_schema IN ($1, $2)",
            &[&format!("Tickets \"{suffix}\""), &format!("users_{suffix}")],
        )
        .await?
        .get(0);
    assert_eq!(schemas, 2, "migrate created both schemas and their tables");
    Ok(())
}

#[test]
fn a_schema_name_postgres_would_not_take_is_refused() -> TestResult {
    let store = || PgStore::connect("host=localhost");
    for bad in ["", "a\0b", &"x".repeat(64)] {
        assert!(
            matches!(store()?.with_schema(bad), Err(PgError::InvalidSchemaName { .. })),
            "{bad:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_schema_of_the_first_version_upgrades_and_keeps_its_events() -> TestResult {
    use factos::{Checkpoints, Subscription};
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let store = PgStore::connect_with(config, PoolOptions::new(4))?;
    {
        let client = store.pool().get().await?;
        client.batch_execute(include_str!("fixtures/schema_v1.sql")).await?;
        client.batch_execute(include_str!("fixtures/v1_events.sql")).await?;
    }
    let refused = store.read(&Query::all(), ReadOptions::forwards()).await;
    assert!(
        matches!(&refused, Err(factos::StoreError::Backend(e)) if matches!(e.downcast_ref::<PgError>(), Some(PgError::NotMigrated { found: 1, .. }))),
        "{refused:?}"
    );
    store.migrate().await?;
    let events = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].metadata.get("by"), Some("box office"));
    let mut subscription = Subscription::new(&store, Query::all(), None);
    let followed = subscription.catch_up().await?;
    assert_eq!(
        followed.iter().map(|d| d.record.id).collect::<Vec<_>>(),
        events.iter().map(|e| e.id).collect::<Vec<_>>()
    );
    // New events follow the old ones.
    let event = NewEvent::new(EventId::random(), EventType::new("E")?, b"new".to_vec());
    store
        .append(AppendRequest::new(StreamId::new("s")?, vec![event]))
        .await?;
    let newer = subscription.catch_up().await?;
    assert_eq!(newer.len(), 1);
    let end = subscription.cursor().ok_or("the new event is followable")?;
    store.save_checkpoint("upgraded", end).await?;
    assert_eq!(store.load_checkpoint("upgraded").await?, Some(end));
    Ok(())
}

/// Version 8 gives parked effects the cursor a runner finds their event
/// again with: an effect parked under version 7 gets its event's own
/// `(transaction, position)` delivery cursor, and can be asked to be
/// retried.
#[tokio::test]
async fn effects_parked_under_version_7_get_their_events_cursors() -> TestResult {
    use factos::{Checkpoints, EffectKey, Subscription};
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let store = PgStore::connect_with(config.clone(), PoolOptions::new(2))?;
    store.migrate().await?;
    for payload in [b"a", b"b"] {
        let event = NewEvent::new(EventId::random(), EventType::new("E")?, payload.to_vec());
        store
            .append(AppendRequest::new(StreamId::new("s")?, vec![event]))
            .await?;
    }
    let delivered = Subscription::new(&store, Query::all(), None).catch_up().await?;
    assert!(delivered[1].cursor.commit() > 0, "cursors carry transaction ids");
    let parked = &delivered[1].record;
    {
        // The table as version 7 left it, holding one parked effect.
        let client = store.pool().get().await?;
        client
            .batch_execute(
                "ALTER TABLE factos_parked_effects DROP COLUMN cursor, DROP COLUMN retry_requested_at;
                 DELETE FROM factos_schema_version WHERE version = 8;",
            )
            .await?;
        let position = i64::try_from(parked.position.value())?;
        client
            .execute(
                "INSERT INTO factos_parked_effects (runner, event_id, effect_index, position, attempts, error) \
                 VALUES ('mailer', $1, 0, $2, 5, 'refused')",
                &[parked.id.as_uuid(), &position],
            )
            .await?;
    }
    drop(store);

    let store = PgStore::connect_with(config, PoolOptions::new(2))?;
    store.migrate().await?;
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
