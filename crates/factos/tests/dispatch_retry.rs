//! The dispatch flow re-runs read → decide → append when its append loses a
//! race, up to the retry policy, and then reports the condition that failed.

use std::sync::atomic::{AtomicU32, Ordering};

use factos::{
    AppendRequest, Committed, DecisionScope, Dispatcher, Error, EventId, EventStore, EventType, JsonCodec, JsonEvent,
    MemoryStore, NewEvent, Query, QueryItem, ReadOptions, RetryPolicy, StoreError, StoredEvent, StreamId,
    StreamRevision, Tag, decider,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Sold;

impl JsonEvent for Sold {
    fn event_type(&self) -> &'static str {
        "Sold"
    }
    fn tags(&self) -> Vec<String> {
        vec!["concert:1".into()]
    }
}

/// A memory store where a concurrent writer sells a ticket right after each
/// of the first `races` decision reads.
struct Racing {
    inner: MemoryStore,
    races: AtomicU32,
}

impl EventStore for Racing {
    type Transaction = ();

    async fn read(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.read(query, options).await
    }
    async fn read_stream(&self, stream: &StreamId, from: StreamRevision) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.read_stream(stream, from).await
    }
    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        self.inner.append(request).await
    }
    async fn begin_decision(&self, scope: &DecisionScope) -> Result<((), Vec<StoredEvent>), StoreError> {
        let read = self.inner.begin_decision(scope).await?;
        if self
            .races
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            let name = |n: &str| n.parse().map_err(StoreError::backend);
            let racer = NewEvent::new(
                EventId::random(),
                EventType::new("Sold").map_err(StoreError::backend)?,
                b"null".to_vec(),
            )
            .with_tags([name("concert:1")?]);
            self.inner
                .append(AppendRequest::new(
                    StreamId::new("racer").map_err(StoreError::backend)?,
                    vec![racer],
                ))
                .await?;
        }
        Ok(read)
    }
    async fn abandon_decision(&self, (): ()) {}
    async fn commit_decision(&self, (): (), request: AppendRequest) -> Result<Committed, StoreError> {
        self.inner.commit_decision((), request).await
    }
}

async fn sell(store: &Racing, retry: RetryPolicy) -> Result<usize, Error<&'static str>> {
    let always = decider(
        (),
        |_: &(), _: &()| Ok::<_, &'static str>(vec![Sold]),
        |(), _: &Sold| (),
    );
    let query = Query::from(QueryItem::tags([Tag::new("concert:1")?]));
    let committed = Dispatcher::new(store, JsonCodec::new())
        .with_retry(retry)
        .dispatch_context(&always, &(), &query, &StreamId::new("box-office")?)
        .await?;
    Ok(committed.len())
}

#[tokio::test]
async fn retries_until_a_decision_survives() -> Result<(), Box<dyn std::error::Error>> {
    let store = Racing {
        inner: MemoryStore::new(),
        races: AtomicU32::new(3),
    };
    assert_eq!(sell(&store, RetryPolicy::attempts(4)).await?, 1);
    let all = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(all.len(), 4, "three racers and the one accepted sale");
    assert_eq!(all[3].stream.as_str(), "box-office");
    Ok(())
}

#[tokio::test]
async fn gives_up_with_the_failed_condition_after_the_last_attempt() -> Result<(), Box<dyn std::error::Error>> {
    let store = Racing {
        inner: MemoryStore::new(),
        races: AtomicU32::new(3),
    };
    match sell(&store, RetryPolicy::attempts(3)).await {
        Err(Error::AppendConditionFailed { source, attempts }) => {
            assert_eq!(attempts, 3);
            assert_eq!(
                source.condition.query,
                Query::from(QueryItem::tags([Tag::new("concert:1")?]))
            );
            assert_eq!(source.condition.after.map(|p| p.value()), Some(2));
            assert_eq!(source.conflicting.value(), 3);
        }
        other => panic!("expected AppendConditionFailed, got {other:?}"),
    }
    let all = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert!(all.iter().all(|e| e.stream.as_str() == "racer"), "no attempt may write");
    Ok(())
}
