//! Durable projections on SQLite: read models in the events' own database,
//! updated in the same transaction as their checkpoint.

use std::convert::Infallible;

use factos::{BoxError, Codec, Delivered, Query, decode_delivered};
use rusqlite::{Transaction, TransactionBehavior};

use crate::error::SqliteError;
use crate::follow::{load_checkpoint, read_after, save_checkpoint};
use crate::store::SqliteStore;

/// A read model kept in tables of the events' SQLite database: a named fold
/// of a query's events.
///
/// A [`SqliteProjector`] calls [`apply`](SqliteProjection::apply) with
/// each batch inside one `BEGIN IMMEDIATE` transaction that also reads and
/// moves the projection's checkpoint, so after any crash the read model and
/// the checkpoint agree: each event changes the read model exactly once.
///
/// ```
/// use factos::{BoxError, Delivered, Dispatcher, ExpectedRevision, JsonCodec, JsonEvent, Query, StreamId};
/// use factos_sqlite::rusqlite::Transaction;
/// use factos_sqlite::{SqliteProjection, SqliteProjector, SqliteStore};
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
/// impl SqliteProjection for SeatsSold {
///     type Event = Sold;
///     fn name(&self) -> &str { "seats_sold" }
///     fn query(&self) -> Query { Query::all() }
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
/// let mut projector = SqliteProjector::new(&store, SeatsSold, JsonCodec::new());
/// assert_eq!(projector.catch_up().await?, 3);
/// assert_eq!(projector.catch_up().await?, 0); // the checkpoint moved with the table
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait SqliteProjection: Send + 'static {
    /// The events it folds.
    type Event;

    /// Its name, which names its checkpoint; unique per database.
    fn name(&self) -> &str;

    /// The events it folds.
    fn query(&self) -> Query;

    /// Folds `events` (in delivery order) into the read model through `tx`.
    ///
    /// # Errors
    ///
    /// Any error stops the projector; the transaction, this batch's
    /// changes and its checkpoint move are rolled back.
    fn apply(&mut self, tx: &Transaction<'_>, events: &[Delivered<Self::Event>]) -> Result<(), BoxError>;

    /// Empties the read model, for a rebuild from the first event.
    ///
    /// # Errors
    ///
    /// As [`apply`](SqliteProjection::apply).
    fn reset(&mut self, tx: &Transaction<'_>) -> Result<(), BoxError>;
}

/// Runs a [`SqliteProjection`]: new ones catch up from the first event,
/// then follow the log.
///
/// Two projectors of one projection (two processes, say) never both apply
/// a batch: each batch's transaction takes SQLite's write lock
/// (`BEGIN IMMEDIATE`) before it reads the checkpoint, so the second sees
/// the first's checkpoint and goes on from there. No lease is needed: the
/// lock is held only while a batch is applied.
#[derive(Debug)]
pub struct SqliteProjector<P, C> {
    store: SqliteStore,
    projection: Option<P>,
    codec: C,
    batch_size: usize,
}

impl<P, C> SqliteProjector<P, C>
where
    P: SqliteProjection,
    C: Codec<P::Event> + Clone + Send + 'static,
{
    /// A projector of `projection` on `store`, decoding with `codec`.
    pub fn new(store: &SqliteStore, projection: P, codec: C) -> Self {
        Self {
            store: store.clone(),
            projection: Some(projection),
            codec,
            batch_size: 256,
        }
    }

    /// Applies at most `size` events per transaction (at least 1).
    pub fn with_batch_size(mut self, size: usize) -> Self {
        self.batch_size = size.max(1);
        self
    }

    /// The projection, for reading what it keeps in memory.
    pub fn projection(&self) -> Option<&P> {
        self.projection.as_ref()
    }

    /// Applies every batch available now and returns how many events it
    /// applied.
    ///
    /// # Errors
    ///
    /// [`SqliteError::Projection`] when the projection fails (its
    /// checkpoint stays before the failing batch), [`SqliteError::Decode`],
    /// or the database's error.
    pub async fn catch_up(&mut self) -> Result<usize, SqliteError> {
        let mut applied = 0;
        while let Some(count) = self.apply_next().await? {
            applied += count;
        }
        Ok(applied)
    }

    /// Applies batches as events commit, forever.
    ///
    /// # Errors
    ///
    /// As [`SqliteProjector::catch_up`].
    pub async fn run(&mut self) -> Result<Infallible, SqliteError> {
        use factos::Follow;
        loop {
            let seen = self.store.commit_count();
            if self.apply_next().await?.is_none() {
                self.store.wait_for_commit(seen).await;
            }
        }
    }

    /// Empties the read model and its checkpoint in one transaction, then
    /// catches up from the first event.
    ///
    /// # Errors
    ///
    /// As [`SqliteProjector::catch_up`].
    pub async fn rebuild(&mut self) -> Result<usize, SqliteError> {
        self.with_projection(|projection, conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let name = projection.name().to_owned();
            projection.reset(&tx).map_err(|source| factos::ProjectionFailed {
                name: name.clone(),
                position: None,
                source,
            })?;
            tx.execute("DELETE FROM factos_checkpoints WHERE name = ?1", [&name])?;
            tx.commit()?;
            Ok(())
        })
        .await?;
        self.catch_up().await
    }

    /// One batch: `Some(events applied)`, or `None` when there was nothing
    /// new to examine.
    async fn apply_next(&mut self) -> Result<Option<usize>, SqliteError> {
        let codec = self.codec.clone();
        let limit = self.batch_size;
        self.with_projection(move |projection, conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let name = projection.name().to_owned();
            let checkpoint = load_checkpoint(&tx, &name)?;
            let batch = read_after(&tx, &projection.query(), checkpoint, limit)?;
            let Some(end) = batch.end else {
                return Ok(None);
            };
            let first = batch.events.first().map(|d| d.record.position);
            let events = decode_delivered(&codec, batch.events)?;
            if !events.is_empty() {
                projection
                    .apply(&tx, &events)
                    .map_err(|source| factos::ProjectionFailed {
                        name: name.clone(),
                        position: first,
                        source,
                    })?;
            }
            save_checkpoint(&tx, &name, end)?;
            tx.commit()?;
            Ok(Some(events.len()))
        })
        .await
    }

    /// Runs `work` with the projection on a writer connection, and keeps
    /// the projection whatever `work` returns.
    async fn with_projection<T, F>(&mut self, work: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&mut P, &mut rusqlite::Connection) -> Result<T, SqliteError> + Send + 'static,
    {
        let Some(mut projection) = self.projection.take() else {
            return Err(SqliteError::ProjectionLost);
        };
        let (projection, outcome) = self
            .store
            .run_writing(move |conn| {
                let outcome = work(&mut projection, conn);
                Ok((projection, outcome))
            })
            .await?;
        self.projection = Some(projection);
        outcome
    }
}
