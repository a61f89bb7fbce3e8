//! Read models on SQLite: a [`SqliteStore`]'s database keeps projections'
//! tables and checkpoints, each batch committed in one transaction; the
//! events may come from this store or from any other (see
//! [`factos::Projector`]).

use factos::{BatchOutcome, BoxError, Delivered, Projection, ProjectionBatch, ReadModelStore, StoreError};
use rusqlite::{Transaction, TransactionBehavior};

use crate::error::SqliteError;
use crate::follow::{load_checkpoint, save_checkpoint};
use crate::store::SqliteStore;

/// A read model kept in tables of a SQLite database: a [`Projection`]
/// that changes them through the transaction that also moves its
/// checkpoint, so after any crash the read model and the checkpoint agree.
///
/// ```
/// use factos::{BoxError, Delivered, Dispatcher, ExpectedRevision, JsonCodec, JsonEvent, Projection, Projector, Query, StreamId};
/// use factos_sqlite::rusqlite::Transaction;
/// use factos_sqlite::{SqliteProjection, SqliteStore};
///
/// #[derive(Debug, serde::Serialize, serde::Deserialize)]
/// struct Sold { seat: u32 }
/// impl JsonEvent for Sold {
///     fn event_type(&self) -> &'static str { "Sold" }
///     fn tags(&self) -> Vec<String> { Vec::new() }
/// }
///
/// /// How many seats were sold, in a table of its own.
/// struct SeatsSold;
/// impl Projection for SeatsSold {
///     type Event = Sold;
///     fn name(&self) -> &str { "seats_sold" }
///     fn query(&self) -> Query { Query::all() }
/// }
/// impl SqliteProjection for SeatsSold {
///     fn apply(&mut self, tx: &Transaction<'_>, events: &[Delivered<Sold>]) -> Result<(), BoxError> {
///         tx.execute("CREATE TABLE IF NOT EXISTS seats_sold (n INTEGER NOT NULL)", [])?;
///         tx.execute("INSERT INTO seats_sold SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM seats_sold)", [])?;
///         tx.execute("UPDATE seats_sold SET n = n + ?1", [events.len() as i64])?;
///         Ok(())
///     }
///     fn reset(&mut self, tx: &Transaction<'_>) -> Result<(), BoxError> {
///         tx.execute("DROP TABLE IF EXISTS seats_sold", [])?;
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let dir = tempfile::tempdir()?;
/// let store = SqliteStore::open(dir.path().join("events.db"))?;
/// store.migrate().await?;
/// let sales = (1..=3).map(|seat| Sold { seat }).collect();
/// Dispatcher::new(&store, JsonCodec::new()).append(&StreamId::new("show")?, sales, ExpectedRevision::Any, None).await?;
///
/// // Events and read model in one database here; any event store can feed it.
/// let mut projector = Projector::new(&store, &store, SeatsSold, JsonCodec::new());
/// assert_eq!(projector.catch_up().await?, 3);
/// assert_eq!(projector.catch_up().await?, 0); // the checkpoint moved with the table
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait SqliteProjection: Projection + Send + 'static {
    /// Folds `events` (in delivery order) into the read model through `tx`.
    ///
    /// # Errors
    ///
    /// Any error stops the projector; the transaction, this batch's
    /// changes and its checkpoint's move are rolled back.
    fn apply(&mut self, tx: &Transaction<'_>, events: &[Delivered<Self::Event>]) -> Result<(), BoxError>;

    /// Empties the read model, for a rebuild from the first event.
    ///
    /// # Errors
    ///
    /// As [`apply`](SqliteProjection::apply).
    fn reset(&mut self, tx: &Transaction<'_>) -> Result<(), BoxError>;
}

/// Batches are committed on the store's writer connection, each in a
/// `BEGIN IMMEDIATE` transaction that takes SQLite's write lock before it
/// compares the checkpoint: a second projector of the same projection (in
/// another process, say) sees the first one's checkpoint and skips the
/// batch. No lease is needed: the lock is held only while a batch is
/// applied.
impl<P> ReadModelStore<P> for SqliteStore
where
    P: SqliteProjection,
    P::Event: Send + 'static,
{
    async fn commit_batch(
        &self,
        projection: P,
        batch: ProjectionBatch<P::Event>,
    ) -> (Option<P>, Result<BatchOutcome, StoreError>) {
        self.with_projection(projection, move |projection, tx| {
            if load_checkpoint(tx, projection.name())? != batch.after {
                return Ok(BatchOutcome::CheckpointMoved);
            }
            if !batch.events.is_empty()
                && let Err(error) = projection.apply(tx, &batch.events)
            {
                return Ok(BatchOutcome::Failed(error));
            }
            save_checkpoint(tx, projection.name(), batch.end)?;
            Ok(BatchOutcome::Applied)
        })
        .await
    }

    async fn reset_projection(&self, projection: P) -> (Option<P>, Result<BatchOutcome, StoreError>) {
        self.with_projection(projection, |projection, tx| {
            if let Err(error) = projection.reset(tx) {
                return Ok(BatchOutcome::Failed(error));
            }
            tx.execute(factos_sql::sqlite_dialect::DELETE_CHECKPOINT, [projection.name()])?;
            Ok(BatchOutcome::Applied)
        })
        .await
    }
}

impl SqliteStore {
    /// Runs `work` with the projection in a `BEGIN IMMEDIATE` transaction
    /// on the writer connection, committed only when `work` says
    /// [`BatchOutcome::Applied`]; hands the projection back unless the
    /// writer could not run `work`.
    async fn with_projection<P, F>(&self, projection: P, work: F) -> (Option<P>, Result<BatchOutcome, StoreError>)
    where
        P: Send + 'static,
        F: FnOnce(&mut P, &Transaction<'_>) -> Result<BatchOutcome, SqliteError> + Send + 'static,
    {
        let result = self
            .run_writing(move |conn| {
                let mut projection = projection;
                let outcome = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(SqliteError::from)
                    .and_then(|tx| {
                        let outcome = work(&mut projection, &tx)?;
                        if matches!(outcome, BatchOutcome::Applied) {
                            tx.commit()?;
                        }
                        Ok(outcome)
                    });
                Ok((projection, outcome))
            })
            .await;
        match result {
            Ok((projection, outcome)) => (Some(projection), outcome.map_err(StoreError::from)),
            Err(error) => (None, Err(error.into())),
        }
    }
}
