//! The store inside a transaction the application controls.

use factos::{
    AppendRequest, Committed, DecisionScope, EventStore, Query, QueryLimits, ReadOptions, StoreError, StoredEvent,
    StreamId, StreamRevision,
};

use crate::locks::{LockSet, Locking};
use crate::store::{append, read, read_consistent, read_for_decision};

/// The store contract inside an application's transaction, from
/// [`crate::PgStore::in_transaction`].
///
/// Appends and dispatches write into the application's transaction: they
/// become visible, together with whatever else the application wrote (its
/// read-model tables, an outbox), when the application commits, and vanish
/// if it rolls back. The locks taken by reads and decisions are held until
/// then too, so keep such transactions short.
///
/// A dispatch cannot retry inside one transaction: if PostgreSQL aborts it
/// (a deadlock), the error is returned and the application retries the
/// whole transaction. Use `RetryPolicy::none()` with it.
pub struct PgTransactionStore<'t> {
    transaction: &'t tokio_postgres::Transaction<'t>,
    locking: Locking,
    query_limits: QueryLimits,
}

/// A decision in progress inside an application's transaction: the locks
/// its read took, held until the application's transaction ends.
#[derive(Debug)]
pub struct PgTransactionDecision {
    held: LockSet,
}

impl std::fmt::Debug for PgTransactionStore<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTransactionStore")
            .field("locking", &self.locking)
            .finish_non_exhaustive()
    }
}

impl<'t> PgTransactionStore<'t> {
    pub(crate) fn new(
        transaction: &'t tokio_postgres::Transaction<'t>,
        locking: Locking,
        query_limits: QueryLimits,
    ) -> Self {
        Self {
            transaction,
            locking,
            query_limits,
        }
    }
}

impl EventStore for PgTransactionStore<'_> {
    type Transaction = PgTransactionDecision;

    async fn read(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        self.query_limits.check(query)?;
        Ok(read_consistent(self.transaction, self.locking, query, options, None).await?)
    }

    async fn read_stream(&self, stream: &StreamId, from: StreamRevision) -> Result<Vec<StoredEvent>, StoreError> {
        self.read_stream_page(stream, from, usize::MAX).await
    }

    async fn read_stream_page(
        &self,
        stream: &StreamId,
        from: StreamRevision,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(read::read_stream(self.transaction, stream, from, limit).await?)
    }

    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        self.query_limits.check_append(&request)?;
        append::append(self.transaction, self.locking, &LockSet::new(), request).await?
    }

    async fn begin_decision(
        &self,
        scope: &DecisionScope,
    ) -> Result<(PgTransactionDecision, Vec<StoredEvent>), StoreError> {
        self.query_limits.check_scope(scope)?;
        let read = read_for_decision(self.transaction, self.locking, scope, None, None).await?;
        Ok((PgTransactionDecision { held: read.held }, read.events))
    }

    async fn abandon_decision(&self, _decision: PgTransactionDecision) {
        // The locks stay held until the application's transaction ends.
    }

    async fn commit_decision(
        &self,
        decision: PgTransactionDecision,
        request: AppendRequest,
    ) -> Result<Committed, StoreError> {
        append::append(self.transaction, self.locking, &decision.held, request).await?
    }
}
