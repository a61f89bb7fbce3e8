//! What several test binaries share.

use factos::{BoxError, Delivered, Projection, Query, StoredEvent};
use factos_conformance::tally_sql::{self, tags_to_count};
use factos_postgres::PgProjection;
use tokio_postgres::Transaction;

/// The tally (see `factos_conformance::projections`) in PostgreSQL: tags
/// counted in a table next to the events.
pub struct Tally {
    /// Whether it refuses the poisoned event.
    pub refuse_poison: bool,
}

impl Projection for Tally {
    type Event = StoredEvent;
    fn name(&self) -> &str {
        "tally"
    }
    fn query(&self) -> Query {
        Query::all()
    }
}

impl PgProjection for Tally {
    async fn apply(&mut self, tx: &Transaction<'_>, events: &[Delivered<StoredEvent>]) -> Result<(), BoxError> {
        tx.batch_execute(tally_sql::CREATE).await?;
        for tag in tags_to_count(events, self.refuse_poison)? {
            tx.execute(tally_sql::COUNT, &[&tag]).await?;
        }
        Ok(())
    }
    async fn reset(&mut self, tx: &Transaction<'_>) -> Result<(), BoxError> {
        tx.batch_execute(tally_sql::DROP).await?;
        Ok(())
    }
}
