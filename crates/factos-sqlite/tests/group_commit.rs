//! Concurrent writes share the writer's group transactions: a refused one
//! rolls back alone, every accepted one is stored and returned as read.

use factos::{
    AppendCondition, AppendRequest, EventId, EventStore, EventType, NewEvent, Query, QueryItem, ReadOptions,
    StoreError, StreamId, Tag,
};
use factos_sqlite::{SqliteOptions, SqliteStore, Synchronous};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn event(id: EventId, tag: &str, data: &[u8]) -> Result<NewEvent, factos::InvalidName> {
    Ok(NewEvent::new(id, EventType::new("Noted")?, data.to_vec()).with_tags([Tag::new(tag)?]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_writes_roll_back_alone_among_concurrent_accepted_ones() -> TestResult {
    let dir = tempfile::tempdir()?;
    let options = SqliteOptions {
        synchronous: Synchronous::Full,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(dir.path().join("events.db"), options)?;
    store.migrate().await?;
    let taken = EventId::random();
    store
        .append(AppendRequest::new(
            StreamId::new("first")?,
            vec![event(taken, "seed", b"original")?],
        ))
        .await?;

    // 96 writers at once: a third append new events, a third reuse the
    // taken id with other content, a third carry a condition that the seed
    // event already fails.
    let tasks: Vec<_> = (0..96u32)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let stream = StreamId::new(format!("s-{n}"))?;
                let request = match n % 3 {
                    0 => AppendRequest::new(stream, vec![event(EventId::random(), &format!("n:{n}"), b"new")?]),
                    1 => AppendRequest::new(stream, vec![event(taken, "seed", b"impostor")?]),
                    _ => AppendRequest::new(stream, vec![event(EventId::random(), &format!("n:{n}"), b"late")?])
                        .condition(AppendCondition::new(
                            Query::from(QueryItem::tags([Tag::new("seed")?])),
                            None,
                        )),
                };
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>((n, store.append(request).await))
            })
        })
        .collect();
    let mut accepted = Vec::new();
    for task in tasks {
        let (n, outcome) = task.await?.map_err(|e| e.to_string())?;
        match (n % 3, outcome) {
            (0, Ok(committed)) => accepted.extend(committed.records),
            (1, Err(StoreError::DuplicateEventId(_))) | (2, Err(StoreError::ConditionFailed(_))) => {}
            (_, other) => panic!("writer {n}: unexpected outcome {other:?}"),
        }
    }
    assert_eq!(accepted.len(), 32);
    let stored = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(
        stored.len(),
        33,
        "the seed and the 32 accepted events, nothing of the refused ones"
    );
    accepted.sort_by_key(|r| r.position);
    assert_eq!(
        &stored[1..],
        &accepted[..],
        "every accepted append reads back as it was returned"
    );
    assert_eq!(stored[0].event, b"original");
    Ok(())
}
