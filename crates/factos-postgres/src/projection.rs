//! Durable projections on PostgreSQL: read models in the application's own
//! tables, updated in the same transaction as their checkpoint.

use std::convert::Infallible;

use factos::{BoxError, Codec, Delivered, Follow, Query, decode_delivered};
use tokio_postgres::Transaction;
use tokio_postgres::types::Type;

use crate::error::PgError;
use crate::follow::{read_after, save_checkpoint};
use crate::store::PgStore;

/// A read model kept in PostgreSQL tables: a named fold of a query's
/// events.
///
/// A [`PgProjector`] calls [`apply`](PgProjection::apply) with each batch
/// inside one transaction on the store's pool that also reads and moves the
/// projection's checkpoint, so after any crash the read model and the
/// checkpoint agree: each event changes the read model exactly once.
///
/// ```
/// use factos::{BoxError, Delivered, Dispatcher, ExpectedRevision, JsonCodec, JsonEvent, Query, StreamId};
/// use factos_postgres::tokio_postgres::Transaction;
/// use factos_postgres::{PgProjection, PgProjector, PgStore};
///
/// #[derive(Debug, serde::Serialize, serde::Deserialize)]
/// struct Sold { seat: u32 }
/// impl JsonEvent for Sold {
///     fn event_type(&self) -> &'static str { "Sold" }
///     fn tags(&self) -> Vec<String> { Vec::new() }
/// }
///
/// /// Which seats were sold, one row each.
/// struct SeatsSold;
/// impl PgProjection for SeatsSold {
///     type Event = Sold;
///     fn name(&self) -> &str { "seats_sold" }
///     fn query(&self) -> Query { Query::all() }
///     async fn apply(&mut self, tx: &Transaction<'_>, events: &[Delivered<Sold>]) -> Result<(), BoxError> {
///         tx.batch_execute("CREATE TABLE IF NOT EXISTS seats_sold (seat bigint PRIMARY KEY)").await?;
///         for sold in events {
///             tx.execute("INSERT INTO seats_sold VALUES ($1)", &[&i64::from(sold.record.event.seat)]).await?;
///         }
///         Ok(())
///     }
///     async fn reset(&mut self, tx: &Transaction<'_>) -> Result<(), BoxError> {
///         tx.batch_execute("DROP TABLE IF EXISTS seats_sold").await?;
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// # let url = factos_test_postgres::Cluster::shared()?.connection_string();
/// let store = PgStore::connect(url.as_str())?.with_schema("projection_example")?;
/// store.migrate().await?;
/// let sales = (1..=3).map(|seat| Sold { seat }).collect();
/// Dispatcher::new(&store, JsonCodec::new()).append(&StreamId::new("show")?, sales, ExpectedRevision::Any, None).await?;
///
/// let mut projector = PgProjector::new(&store, SeatsSold, JsonCodec::new());
/// assert_eq!(projector.catch_up().await?, 3);
/// assert_eq!(projector.rebuild().await?, 3); // empties the table, replays from the first event
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait PgProjection: Send {
    /// The events it folds.
    type Event: Send + Sync;

    /// Its name, which names its checkpoint; unique per schema.
    fn name(&self) -> &str;

    /// The events it folds.
    fn query(&self) -> Query;

    /// Folds `events` (in delivery order) into the read model through `tx`.
    ///
    /// # Errors
    ///
    /// Any error stops the projector; the transaction, this batch's changes
    /// and its checkpoint move are rolled back.
    fn apply(
        &mut self,
        tx: &Transaction<'_>,
        events: &[Delivered<Self::Event>],
    ) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Empties the read model, for a rebuild from the first event.
    ///
    /// # Errors
    ///
    /// As [`apply`](PgProjection::apply).
    fn reset(&mut self, tx: &Transaction<'_>) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// Runs a [`PgProjection`]: new ones catch up from the first event, then
/// follow the log.
///
/// Two projectors of one projection (two processes, say) never both apply
/// a batch: each batch's transaction takes a transaction-scoped advisory
/// lock on the projection's name before it reads the checkpoint, so the
/// second waits, then sees the first's checkpoint and goes on from there.
/// A lock rather than a lease: nothing to expire or renew, it is released
/// with the transaction even if the process dies, and it works behind
/// transaction-mode poolers.
#[derive(Debug)]
pub struct PgProjector<P, C> {
    store: PgStore,
    projection: P,
    codec: C,
    batch_size: usize,
}

impl<P, C> PgProjector<P, C>
where
    P: PgProjection,
    C: Codec<P::Event> + Sync,
{
    /// A projector of `projection` on `store`, decoding with `codec`.
    pub fn new(store: &PgStore, projection: P, codec: C) -> Self {
        Self {
            store: store.clone(),
            projection,
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
    pub fn projection(&self) -> &P {
        &self.projection
    }

    /// Applies every event committed before this call (waiting for the
    /// transactions that were running at the call to end, see
    /// [`crate::follow`]) and returns how many events it applied.
    ///
    /// # Errors
    ///
    /// [`PgError::Projection`] when the projection fails (its checkpoint
    /// stays before the failing batch), [`PgError::Decode`], or the
    /// database's error.
    pub async fn catch_up(&mut self) -> Result<usize, PgError> {
        let mark = self.store.mark().await?;
        let mut applied = 0;
        loop {
            let seen = self.store.commit_count();
            while let Some(count) = self.apply_next().await? {
                applied += count;
            }
            if self.store.settled_at(mark).await? {
                while let Some(count) = self.apply_next().await? {
                    applied += count;
                }
                return Ok(applied);
            }
            self.store.wait_for_commit(seen).await;
        }
    }

    /// Applies batches as events commit, forever.
    ///
    /// # Errors
    ///
    /// As [`PgProjector::catch_up`].
    pub async fn run(&mut self) -> Result<Infallible, PgError> {
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
    /// As [`PgProjector::catch_up`].
    pub async fn rebuild(&mut self) -> Result<usize, PgError> {
        let mut client = crate::session::get(self.store.pool()).await?;
        let tx = client.transaction().await?;
        self.enter(&tx).await?;
        let name = self.projection.name().to_owned();
        self.projection
            .reset(&tx)
            .await
            .map_err(|source| factos::ProjectionFailed {
                name: name.clone(),
                position: None,
                source,
            })?;
        tx.execute_typed("DELETE FROM factos_checkpoints WHERE name = $1", &[(&name, Type::TEXT)])
            .await?;
        tx.commit().await?;
        self.catch_up().await
    }

    /// Puts `tx` in the store's schema and takes the projection's lock.
    async fn enter(&self, tx: &Transaction<'_>) -> Result<(), PgError> {
        if let Some(search_path) = self.store.search_path() {
            tx.batch_execute(&search_path).await?;
        }
        let key = self.store.projection_key(tx, self.projection.name()).await?;
        tx.execute_typed("SELECT pg_advisory_xact_lock($1)", &[(&key, Type::INT8)])
            .await?;
        Ok(())
    }

    /// One batch: `Some(events applied)`, or `None` when there was nothing
    /// new to examine.
    async fn apply_next(&mut self) -> Result<Option<usize>, PgError> {
        let mut client = crate::session::get(self.store.pool()).await?;
        let tx = client.transaction().await?;
        self.enter(&tx).await?;
        let name = self.projection.name().to_owned();
        let rows = tx
            .query_typed(
                "SELECT cursor FROM factos_checkpoints WHERE name = $1",
                &[(&name, Type::TEXT)],
            )
            .await?;
        let checkpoint = match rows.first() {
            Some(row) => Some(
                row.try_get::<_, String>(0)?
                    .parse()
                    .map_err(|e: factos::InvalidCursor| PgError::CorruptCheckpoint(e))?,
            ),
            None => None,
        };
        let batch = read_after(&*tx, &self.projection.query(), checkpoint, self.batch_size).await?;
        let Some(end) = batch.end else {
            return Ok(None);
        };
        let first = batch.events.first().map(|d| d.record.position);
        let events = decode_delivered(&self.codec, batch.events)?;
        if !events.is_empty() {
            self.projection
                .apply(&tx, &events)
                .await
                .map_err(|source| factos::ProjectionFailed {
                    name: name.clone(),
                    position: first,
                    source,
                })?;
        }
        save_checkpoint(&*tx, &name, end).await?;
        tx.commit().await?;
        Ok(Some(events.len()))
    }
}
