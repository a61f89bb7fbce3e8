//! Projections: read models folded from the log, each batch committed in
//! one transaction with the projection's checkpoint.
//!
//! The contract has three parts:
//!
//! * a [`Projection`] names itself (its checkpoint's name) and the events it
//!   folds; how it changes its read model is the read model's database's
//!   business (`SqliteProjection`, `PgProjection`, `D1Projection` add the
//!   method that gets that database's transaction);
//! * a [`ReadModelStore`] is the database that keeps the read model and
//!   the checkpoint: it commits one batch's changes and the checkpoint's
//!   move together, and only if the checkpoint still stands where the batch
//!   was read from (a compare-and-set, so two projectors of one projection
//!   never both apply a batch);
//! * a [`Projector`] follows any store ([`LocalFollow`]) and hands each
//!   batch to the read-model store: the events may come from another
//!   database than the read model (KurrentDB events, a SQLite read model).
//!
//! After any crash the read model and its checkpoint agree: each event
//! changes the read model exactly once.

use std::convert::Infallible;

use thiserror::Error;

use crate::codec::Codec;
use crate::error::{BoxError, DecodeError, ProjectionFailed, StoreError};
use crate::follow::{Cursor, Delivered, LocalCheckpoints, LocalFollow, decode_delivered};
use crate::query::Query;

/// A read model: a named fold of a query's events.
pub trait Projection {
    /// The events it folds, as its codec decodes them.
    type Event;

    /// Its name, which names its checkpoint: unique per read-model
    /// database.
    fn name(&self) -> &str;

    /// The events it folds.
    fn query(&self) -> Query;
}

/// One batch for a [`ReadModelStore`] to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionBatch<E> {
    /// The checkpoint the batch was read after (`None`: from the first
    /// event). The batch is applied only if the checkpoint still holds it.
    pub after: Option<Cursor>,
    /// Where the checkpoint moves: after the last event examined, matching
    /// or not.
    pub end: Cursor,
    /// The matching events, in delivery order (possibly none: the
    /// checkpoint still moves past the events examined).
    pub events: Vec<Delivered<E>>,
}

/// What a [`ReadModelStore`] did with a batch or a reset.
#[derive(Debug)]
pub enum BatchOutcome {
    /// Committed: the read model's changes and the checkpoint's move.
    Applied,
    /// Nothing written: the checkpoint no longer stood where the batch was
    /// read from (another projector of the same projection moved it, or a
    /// rebuild removed it).
    CheckpointMoved,
    /// Nothing written: the projection's own code failed with this error.
    Failed(BoxError),
}

/// A database that keeps read models of projections of kind `P`, each
/// with its checkpoint (read with [`LocalCheckpoints::load_checkpoint`]).
///
/// The projection travels into the call and back, so that a store whose
/// transactions run on a thread of their own (SQLite) can take it there; it
/// comes back (`Some`) unless the call could not run at all and it went
/// with the work (a stopped writer thread, say).
///
/// Unlike the store contracts, there is no separate `Send` variant: the
/// futures of an implementation are `Send` when its own are (SQLite,
/// PostgreSQL), and not where the platform has no threads (D1), and a
/// [`Projector`] over concrete stores inherits that.
#[allow(async_fn_in_trait)]
pub trait ReadModelStore<P: Projection> {
    /// In one transaction: if the checkpoint named by the projection still
    /// stands at `batch.after`, applies `batch.events` to the read model
    /// and moves the checkpoint to `batch.end`.
    ///
    /// # Errors
    ///
    /// The database's error; nothing was written.
    async fn commit_batch(
        &self,
        projection: P,
        batch: ProjectionBatch<P::Event>,
    ) -> (Option<P>, Result<BatchOutcome, StoreError>);

    /// In one transaction: empties the read model and removes its
    /// checkpoint.
    ///
    /// # Errors
    ///
    /// The database's error; nothing was written.
    async fn reset_projection(&self, projection: P) -> (Option<P>, Result<BatchOutcome, StoreError>);
}

/// What stops a [`Projector`]. Its checkpoint stays before the batch it
/// was working on, so a restart applies that batch.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// The events could not be read.
    #[error("projection {name}: reading its events failed")]
    Source {
        /// The projection.
        name: String,
        /// The event store's error.
        #[source]
        source: StoreError,
    },
    /// The read model's database failed.
    #[error("projection {name}: its read model's database failed")]
    ReadModel {
        /// The projection.
        name: String,
        /// The read-model store's error.
        #[source]
        source: StoreError,
    },
    /// An event could not be decoded.
    #[error("projection {name}: an event cannot be decoded")]
    Decode {
        /// The projection.
        name: String,
        /// The decode error.
        #[source]
        source: DecodeError,
    },
    /// The projection's own code failed; nothing of the batch was written.
    #[error(transparent)]
    Failed(ProjectionFailed),
    /// The read-model store kept the projection (an earlier call was
    /// cancelled, or the store could not run it): make a new projector.
    #[error("the projection was lost: an earlier call was cancelled or its read model's store stopped")]
    Lost,
}

/// How many events a projector examines per batch by default.
pub const DEFAULT_PROJECTION_BATCH: usize = 256;

/// Runs a [`Projection`]: follows `query` on an event source and commits
/// each batch, with the checkpoint, in a read-model store. A new projection
/// catches up from the first event.
///
/// ```
/// use factos::{AppendRequest, EventId, EventStore, EventType, MemoryStore, NewEvent, Projector, Query, StoredCodec, StreamId};
/// # use factos::{BatchOutcome, Cursor, EffectKey, LocalCheckpoints, ParkedEffect, Projection, ProjectionBatch, ReadModelStore, StoreError, StoredEvent};
/// # use std::sync::Mutex;
/// # /// A read model in memory: a count and its checkpoint.
/// # #[derive(Default)]
/// # struct Counts(Mutex<(u64, Option<Cursor>)>);
/// # struct Count;
/// # impl Projection for Count {
/// #     type Event = StoredEvent;
/// #     fn name(&self) -> &str { "count" }
/// #     fn query(&self) -> Query { Query::all() }
/// # }
/// # impl ReadModelStore<Count> for Counts {
/// #     async fn commit_batch(&self, p: Count, batch: ProjectionBatch<StoredEvent>) -> (Option<Count>, Result<BatchOutcome, StoreError>) {
/// #         let mut model = self.0.lock().unwrap();
/// #         if model.1 != batch.after { return (Some(p), Ok(BatchOutcome::CheckpointMoved)); }
/// #         *model = (model.0 + batch.events.len() as u64, Some(batch.end));
/// #         (Some(p), Ok(BatchOutcome::Applied))
/// #     }
/// #     async fn reset_projection(&self, p: Count) -> (Option<Count>, Result<BatchOutcome, StoreError>) {
/// #         *self.0.lock().unwrap() = (0, None);
/// #         (Some(p), Ok(BatchOutcome::Applied))
/// #     }
/// # }
/// # impl LocalCheckpoints for Counts {
/// #     async fn load_checkpoint(&self, _: &str) -> Result<Option<Cursor>, StoreError> { Ok(self.0.lock().unwrap().1) }
/// #     async fn save_checkpoint(&self, _: &str, c: Cursor) -> Result<(), StoreError> { self.0.lock().unwrap().1 = Some(c); Ok(()) }
/// #     async fn park_effect(&self, _: ParkedEffect) -> Result<(), StoreError> { Ok(()) }
/// #     async fn parked_effects(&self, _: &str) -> Result<Vec<ParkedEffect>, StoreError> { Ok(Vec::new()) }
/// #     async fn retry_parked(&self, _: &str, _: EffectKey) -> Result<bool, StoreError> { Ok(false) }
/// #     async fn discard_parked(&self, _: &str, _: EffectKey) -> Result<bool, StoreError> { Ok(false) }
/// # }
///
/// # futures::executor::block_on(async {
/// let events = MemoryStore::new();
/// for _ in 0..3 {
///     let greeting = NewEvent::new(EventId::random(), EventType::new("Greeted")?, b"hi".to_vec());
///     events.append(AppendRequest::new(StreamId::new("greetings")?, vec![greeting])).await?;
/// }
/// // `Counts` keeps a count and its checkpoint (in a SQL database, a table
/// // and a row of `factos_checkpoints`, committed together).
/// let read_model = Counts::default();
/// let mut projector = Projector::new(&events, &read_model, Count, StoredCodec);
/// assert_eq!(projector.catch_up().await?, 3);
/// assert_eq!(projector.catch_up().await?, 0); // the checkpoint moved with the count
/// assert_eq!(projector.rebuild().await?, 3); // emptied, then folded from the first event
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
///
/// Two projectors of one projection (two processes, say) never both apply
/// a batch: the read-model store applies a batch only if the checkpoint
/// still stands where the batch was read from; the other projector reads
/// the checkpoint again and goes on from there.
#[derive(Debug)]
pub struct Projector<'s, S, M, P, C> {
    source: &'s S,
    read_models: &'s M,
    projection: Option<P>,
    name: String,
    query: Query,
    codec: C,
    batch_size: usize,
}

impl<'s, S, M, P, C> Projector<'s, S, M, P, C>
where
    S: LocalFollow,
    M: ReadModelStore<P> + LocalCheckpoints,
    P: Projection,
    C: Codec<P::Event>,
{
    /// A projector of `projection`, following `source` and keeping the read
    /// model in `read_models` (which may be the same database), decoding
    /// with `codec`.
    pub fn new(source: &'s S, read_models: &'s M, projection: P, codec: C) -> Self {
        Self {
            source,
            read_models,
            name: projection.name().to_owned(),
            query: projection.query(),
            projection: Some(projection),
            codec,
            batch_size: DEFAULT_PROJECTION_BATCH,
        }
    }

    /// Examines at most `size` events per batch (at least 1): one
    /// transaction in the read model's database each.
    pub fn with_batch_size(mut self, size: usize) -> Self {
        self.batch_size = size.max(1);
        self
    }

    /// The projection, for reading what it keeps in memory (`None` once
    /// [lost](ProjectionError::Lost)).
    pub fn projection(&self) -> Option<&P> {
        self.projection.as_ref()
    }

    /// Applies every event committed before this call (where the source
    /// holds events back, waiting for the transactions that were running
    /// at the call, see [`LocalFollow::settled`]) and returns how many
    /// events it applied.
    ///
    /// # Errors
    ///
    /// See [`ProjectionError`]; the checkpoint stays before the batch that
    /// failed.
    pub async fn catch_up(&mut self) -> Result<usize, ProjectionError> {
        let mark = self.source.commit_mark().await.map_err(|e| self.source_failed(e))?;
        let mut applied = 0;
        loop {
            let seen = self.source.commit_count();
            while let Some(count) = self.apply_next().await? {
                applied += count;
            }
            if self.source.settled(mark).await.map_err(|e| self.source_failed(e))? {
                while let Some(count) = self.apply_next().await? {
                    applied += count;
                }
                return Ok(applied);
            }
            self.source.wait_for_commit(seen).await;
        }
    }

    /// Applies batches as events commit, forever.
    ///
    /// # Errors
    ///
    /// As [`Projector::catch_up`].
    pub async fn run(&mut self) -> Result<Infallible, ProjectionError> {
        loop {
            let seen = self.source.commit_count();
            if self.apply_next().await?.is_none() {
                self.source.wait_for_commit(seen).await;
            }
        }
    }

    /// Empties the read model and removes its checkpoint in one
    /// transaction, then catches up from the first event.
    ///
    /// # Errors
    ///
    /// As [`Projector::catch_up`].
    pub async fn rebuild(&mut self) -> Result<usize, ProjectionError> {
        let projection = self.projection.take().ok_or(ProjectionError::Lost)?;
        let (projection, outcome) = self.read_models.reset_projection(projection).await;
        self.projection = projection;
        match outcome.map_err(|e| self.read_model_failed(e))? {
            BatchOutcome::Failed(source) => return Err(self.failed(None, source)),
            BatchOutcome::Applied | BatchOutcome::CheckpointMoved => {}
        }
        self.catch_up().await
    }

    /// One batch: `Some(events applied)` (0 when another projector had
    /// moved the checkpoint first), or `None` when there was nothing new to
    /// examine.
    async fn apply_next(&mut self) -> Result<Option<usize>, ProjectionError> {
        let after = self
            .read_models
            .load_checkpoint(&self.name)
            .await
            .map_err(|e| self.read_model_failed(e))?;
        let batch = self
            .source
            .read_after(&self.query, after, self.batch_size)
            .await
            .map_err(|e| self.source_failed(e))?;
        let Some(end) = batch.end else {
            return Ok(None);
        };
        let first = batch.events.first().map(|d| d.record.position);
        let events = decode_delivered(&self.codec, batch.events).map_err(|source| ProjectionError::Decode {
            name: self.name.clone(),
            source,
        })?;
        let count = events.len();
        let projection = self.projection.take().ok_or(ProjectionError::Lost)?;
        let (projection, outcome) = self
            .read_models
            .commit_batch(projection, ProjectionBatch { after, end, events })
            .await;
        self.projection = projection;
        match outcome.map_err(|e| self.read_model_failed(e))? {
            BatchOutcome::Applied => Ok(Some(count)),
            BatchOutcome::CheckpointMoved => Ok(Some(0)),
            BatchOutcome::Failed(source) => Err(self.failed(first, source)),
        }
    }

    fn source_failed(&self, source: StoreError) -> ProjectionError {
        ProjectionError::Source {
            name: self.name.clone(),
            source,
        }
    }

    fn read_model_failed(&self, source: StoreError) -> ProjectionError {
        ProjectionError::ReadModel {
            name: self.name.clone(),
            source,
        }
    }

    fn failed(&self, position: Option<crate::Position>, source: BoxError) -> ProjectionError {
        ProjectionError::Failed(ProjectionFailed {
            name: self.name.clone(),
            position,
            source,
        })
    }
}
