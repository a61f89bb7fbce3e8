//! Read models on PostgreSQL: a [`PgStore`]'s schema keeps projections'
//! tables and checkpoints, each batch committed in one transaction; the
//! events may come from this store or from any other (see
//! [`factos::Projector`]).

use factos::{BatchOutcome, BoxError, Delivered, Projection, ProjectionBatch, ReadModelStore, StoreError};
use tokio_postgres::Transaction;
use tokio_postgres::types::Type;

use crate::error::PgError;
use crate::follow::{load_checkpoint, save_checkpoint};
use crate::store::PgStore;

/// A read model kept in PostgreSQL tables: a [`Projection`] that changes
/// them through the transaction that also moves its checkpoint, so after
/// any crash the read model and the checkpoint agree.
///
/// ```
/// use factos::{BoxError, Delivered, Dispatcher, ExpectedRevision, JsonCodec, JsonEvent, Projection, Projector, Query, StreamId};
/// use factos_postgres::tokio_postgres::Transaction;
/// use factos_postgres::{PgProjection, PgStore};
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
/// impl Projection for SeatsSold {
///     type Event = Sold;
///     fn name(&self) -> &str { "seats_sold" }
///     fn query(&self) -> Query { Query::all() }
/// }
/// impl PgProjection for SeatsSold {
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
/// // Events and read model in one database here; any event store can feed it.
/// let mut projector = Projector::new(&store, &store, SeatsSold, JsonCodec::new());
/// assert_eq!(projector.catch_up().await?, 3);
/// assert_eq!(projector.rebuild().await?, 3); // empties the table, replays from the first event
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait PgProjection: Projection + Send {
    /// Folds `events` (in delivery order) into the read model through `tx`.
    ///
    /// # Errors
    ///
    /// Any error stops the projector; the transaction, this batch's changes
    /// and its checkpoint's move are rolled back.
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

/// Each batch's transaction (on the store's pool, in its schema) takes a
/// transaction-scoped advisory lock on the projection's name before it
/// compares the checkpoint: a second projector of the same projection (in
/// another process, say) waits, then sees the first one's checkpoint and
/// skips the batch. A lock rather than a lease: nothing to expire or renew,
/// it is released with the transaction even if the process dies, and it
/// works behind transaction-mode poolers.
impl<P> ReadModelStore<P> for PgStore
where
    P: PgProjection,
    P::Event: Send + Sync,
{
    async fn commit_batch(
        &self,
        mut projection: P,
        batch: ProjectionBatch<P::Event>,
    ) -> (Option<P>, Result<BatchOutcome, StoreError>) {
        let outcome = async {
            let mut client = crate::session::get(self.pool()).await?;
            let tx = self.projection_transaction(&mut client, projection.name()).await?;
            if load_checkpoint(&*tx, projection.name()).await? != batch.after {
                return Ok(BatchOutcome::CheckpointMoved);
            }
            if !batch.events.is_empty()
                && let Err(error) = projection.apply(&tx, &batch.events).await
            {
                return Ok(BatchOutcome::Failed(error));
            }
            save_checkpoint(&*tx, projection.name(), batch.end).await?;
            tx.commit().await?;
            Ok::<_, PgError>(BatchOutcome::Applied)
        }
        .await;
        (Some(projection), outcome.map_err(StoreError::from))
    }

    async fn reset_projection(&self, mut projection: P) -> (Option<P>, Result<BatchOutcome, StoreError>) {
        let outcome = async {
            let mut client = crate::session::get(self.pool()).await?;
            let tx = self.projection_transaction(&mut client, projection.name()).await?;
            if let Err(error) = projection.reset(&tx).await {
                return Ok(BatchOutcome::Failed(error));
            }
            tx.execute_typed(
                "DELETE FROM factos_checkpoints WHERE name = $1",
                &[(&projection.name(), Type::TEXT)],
            )
            .await?;
            tx.commit().await?;
            Ok::<_, PgError>(BatchOutcome::Applied)
        }
        .await;
        (Some(projection), outcome.map_err(StoreError::from))
    }
}

impl PgStore {
    /// A transaction in the store's schema holding projection `name`'s
    /// lock.
    async fn projection_transaction<'c>(
        &self,
        client: &'c mut deadpool_postgres::Object,
        name: &str,
    ) -> Result<deadpool_postgres::Transaction<'c>, PgError> {
        let tx = client.transaction().await?;
        if let Some(search_path) = self.search_path() {
            tx.batch_execute(&search_path).await?;
        }
        let key = self.projection_key(&*tx, name).await?;
        tx.execute_typed("SELECT pg_advisory_xact_lock($1)", &[(&key, Type::INT8)])
            .await?;
        Ok(tx)
    }
}
