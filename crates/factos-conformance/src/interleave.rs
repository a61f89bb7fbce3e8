//! A store wrapper that yields to the executor before every operation, so
//! that concurrent futures driven by one task interleave at every store call
//! even when the store itself never waits (as the in-memory store).

use std::cell::RefCell;
use std::fmt;

use factos::{
    AppendRequest, Committed, DecisionScope, LocalEventStore, Query, ReadOptions, StoreError, StoredEvent, StreamId,
    StreamRevision,
};
use proptest::prelude::Rng;
use proptest::test_runner::TestRng;

use crate::fixtures::rng;

/// Forwards to the wrapped store after yielding 0–2 times, chosen by a
/// seeded random schedule.
pub struct Interleave<'s, S> {
    inner: &'s S,
    schedule: RefCell<TestRng>,
}

impl<S> fmt::Debug for Interleave<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interleave").finish_non_exhaustive()
    }
}

impl<'s, S> Interleave<'s, S> {
    /// Wraps `inner` with the schedule of `seed`.
    pub fn new(inner: &'s S, seed: u64) -> Self {
        Self {
            inner,
            schedule: RefCell::new(rng(seed)),
        }
    }

    async fn pause(&self) {
        let yields = self.schedule.borrow_mut().random_range(0..3);
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
    }
}

impl<S: LocalEventStore> LocalEventStore for Interleave<'_, S> {
    type Transaction = S::Transaction;

    async fn read(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        self.pause().await;
        self.inner.read(query, options).await
    }

    async fn read_stream(&self, stream: &StreamId, from: StreamRevision) -> Result<Vec<StoredEvent>, StoreError> {
        self.pause().await;
        self.inner.read_stream(stream, from).await
    }
    async fn read_stream_page(
        &self,
        stream: &StreamId,
        from: StreamRevision,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.pause().await;
        self.inner.read_stream_page(stream, from, limit).await
    }

    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        self.pause().await;
        self.inner.append(request).await
    }

    async fn begin_decision(&self, scope: &DecisionScope) -> Result<(Self::Transaction, Vec<StoredEvent>), StoreError> {
        self.pause().await;
        let begun = self.inner.begin_decision(scope).await;
        self.pause().await;
        begun
    }

    async fn abandon_decision(&self, transaction: Self::Transaction) {
        self.pause().await;
        self.inner.abandon_decision(transaction).await
    }

    async fn commit_decision(
        &self,
        transaction: Self::Transaction,
        request: AppendRequest,
    ) -> Result<Committed, StoreError> {
        self.pause().await;
        self.inner.commit_decision(transaction, request).await
    }
}
