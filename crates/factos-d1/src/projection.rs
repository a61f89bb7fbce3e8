//! Read models on D1: a projection's batch is one D1 `batch([...])` that
//! opens by moving the checkpoint only if it still stands where the batch
//! was read from.

use factos::{
    BatchOutcome, BoxError, Delivered, LocalCheckpoints, Projection, ProjectionBatch, ReadModelStore, StoreError,
};
use factos_sql::sqlite_dialect::{DELETE_CHECKPOINT, MOVE_CHECKPOINT_IF_AT};
use worker::{D1Database, D1PreparedStatement};

use crate::error::D1Error;
use crate::statement::{Arg, Statement};
use crate::store::D1Store;

/// A read model kept in D1 tables: a [`Projection`] whose changes are
/// statements, run in one D1 batch after the statements that move its
/// checkpoint.
///
/// D1 has no interactive transactions, so a projection cannot read inside
/// its batch: it returns the statements (`INSERT … ON CONFLICT DO UPDATE`,
/// `UPDATE … SET n = n + ?`) that fold the events, and D1 runs them, the
/// checkpoint's move first, as one transaction.
///
/// ```no_run
/// use factos::{BoxError, Delivered, JsonCodec, JsonEvent, Projection, Projector, Query};
/// use factos_d1::worker::{D1Database, D1PreparedStatement};
/// use factos_d1::{D1Projection, D1Store};
///
/// #[derive(Debug, serde::Serialize, serde::Deserialize)]
/// struct Sold { seat: u32 }
/// impl JsonEvent for Sold {
///     fn event_type(&self) -> &'static str { "Sold" }
///     fn tags(&self) -> Vec<String> { Vec::new() }
/// }
///
/// /// How many seats were sold, in a table of its own (created by the
/// /// application's migrations).
/// struct SeatsSold;
/// impl Projection for SeatsSold {
///     type Event = Sold;
///     fn name(&self) -> &str { "seats_sold" }
///     fn query(&self) -> Query { Query::all() }
/// }
/// impl D1Projection for SeatsSold {
///     fn statements(&mut self, db: &D1Database, events: &[Delivered<Sold>]) -> Result<Vec<D1PreparedStatement>, BoxError> {
///         let count = (events.len() as f64).into();
///         Ok(vec![db.prepare("UPDATE seats_sold SET n = n + ?1").bind(&[count])?])
///     }
///     fn reset(&mut self, db: &D1Database) -> Result<Vec<D1PreparedStatement>, BoxError> {
///         Ok(vec![db.prepare("UPDATE seats_sold SET n = 0")])
///     }
/// }
///
/// /// From a worker's scheduled handler, with `D1Store::new(env.d1("DB")?)`.
/// async fn project(store: &D1Store) -> Result<usize, Box<dyn std::error::Error>> {
///     Ok(Projector::new(store, store, SeatsSold, JsonCodec::new()).catch_up().await?)
/// }
/// # fn main() {}
/// ```
pub trait D1Projection: Projection {
    /// The statements that fold `events` (in delivery order) into the
    /// read model.
    ///
    /// # Errors
    ///
    /// Any error stops the projector before anything of the batch is
    /// written.
    fn statements(
        &mut self,
        db: &D1Database,
        events: &[Delivered<Self::Event>],
    ) -> Result<Vec<D1PreparedStatement>, BoxError>;

    /// The statements that empty the read model, for a rebuild from the
    /// first event.
    ///
    /// # Errors
    ///
    /// As [`statements`](D1Projection::statements).
    fn reset(&mut self, db: &D1Database) -> Result<Vec<D1PreparedStatement>, BoxError>;
}

/// A second projector of the same projection (another worker, say) that
/// read from the same checkpoint fails the checkpoint's statements, so D1
/// rolls its whole batch back; the store then reads the checkpoint to tell
/// that apart from any other failure, and answers
/// [`BatchOutcome::CheckpointMoved`].
impl<P: D1Projection> ReadModelStore<P> for D1Store {
    async fn commit_batch(
        &self,
        mut projection: P,
        batch: ProjectionBatch<P::Event>,
    ) -> (Option<P>, Result<BatchOutcome, StoreError>) {
        let outcome = async {
            let mut statements = self.move_checkpoint(projection.name(), &batch)?;
            if !batch.events.is_empty() {
                match projection.statements(self.db(), &batch.events) {
                    Ok(more) => statements.extend(more),
                    Err(error) => return Ok(BatchOutcome::Failed(error)),
                }
            }
            match self.db().batch(statements).await {
                Ok(_) => Ok(BatchOutcome::Applied),
                Err(_) if self.load_checkpoint(projection.name()).await? != batch.after => {
                    Ok(BatchOutcome::CheckpointMoved)
                }
                Err(error) => Err(D1Error::d1("applying a projection's batch", error).into()),
            }
        }
        .await;
        (Some(projection), outcome)
    }

    async fn reset_projection(&self, mut projection: P) -> (Option<P>, Result<BatchOutcome, StoreError>) {
        let outcome = async {
            let mut statements = match projection.reset(self.db()) {
                Ok(statements) => statements,
                Err(error) => return Ok(BatchOutcome::Failed(error)),
            };
            let mut delete = Statement::new(DELETE_CHECKPOINT);
            delete.args = vec![Arg::Text(projection.name().to_owned())];
            statements.push(delete.prepare(self.db(), "resetting a projection")?);
            self.db()
                .batch(statements)
                .await
                .map_err(|e| D1Error::d1("resetting a projection", e))?;
            Ok(BatchOutcome::Applied)
        }
        .await;
        (Some(projection), outcome)
    }
}

impl D1Store {
    /// The statements that open a projection's batch: they move checkpoint
    /// `name` from `batch.after` to `batch.end`, and fail the batch when it
    /// stands elsewhere.
    fn move_checkpoint<E>(
        &self,
        name: &str,
        batch: &ProjectionBatch<E>,
    ) -> Result<Vec<D1PreparedStatement>, StoreError> {
        MOVE_CHECKPOINT_IF_AT
            .iter()
            .map(|sql| {
                let mut statement = Statement::new(*sql);
                statement.args = vec![
                    Arg::Text(name.to_owned()),
                    batch.after.map_or(Arg::Null, |after| Arg::Text(after.to_string())),
                    Arg::Text(batch.end.to_string()),
                    Arg::Int(D1Store::now()),
                ];
                Ok(statement.prepare(self.db(), "moving a projection's checkpoint")?)
            })
            .collect()
    }
}
