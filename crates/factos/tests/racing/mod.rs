//! A store that loses races on purpose, shared by the dispatch tests.

use std::sync::atomic::{AtomicU32, Ordering};

use factos::{
    AppendRequest, Committed, DecisionScope, Dispatcher, Error, EventId, EventStore, EventType, JsonCodec, JsonEvent,
    MemoryDecision, MemoryStore, NewEvent, Query, QueryItem, ReadOptions, RetryPolicy, StoreError, StoredEvent,
    StreamId, StreamRevision, Tag, decider,
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
pub struct Racing {
    /// The store decisions read from and append to.
    pub inner: MemoryStore,
    /// How many decision reads are still followed by a racing sale.
    pub races: AtomicU32,
}

impl EventStore for Racing {
    type Transaction = MemoryDecision;

    async fn read(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.read(query, options).await
    }
    async fn read_stream(&self, stream: &StreamId, from: StreamRevision) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.read_stream(stream, from).await
    }
    async fn read_stream_page(
        &self,
        stream: &StreamId,
        from: StreamRevision,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.read_stream_page(stream, from, limit).await
    }
    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        self.inner.append(request).await
    }
    async fn begin_decision(&self, scope: &DecisionScope) -> Result<(MemoryDecision, Vec<StoredEvent>), StoreError> {
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
    async fn abandon_decision(&self, decision: MemoryDecision) {
        self.inner.abandon_decision(decision).await
    }
    async fn commit_decision(&self, decision: MemoryDecision, request: AppendRequest) -> Result<Committed, StoreError> {
        self.inner.commit_decision(decision, request).await
    }
}

/// Dispatches one sale on concert 1 to stream `box-office` and returns how
/// many events it committed.
pub async fn sell(store: &Racing, retry: RetryPolicy) -> Result<usize, Error<&'static str>> {
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
