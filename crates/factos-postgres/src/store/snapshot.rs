//! [`SnapshotStore`] for PostgreSQL: a decision reads the snapshot right
//! after taking its locks, then the events after it, in its transaction
//! (two round trips instead of one); saves are an upsert of their own, and
//! an offered snapshot is saved by a task spawned on the caller's tokio
//! runtime.

use factos::snapshot::{Snapshot, SnapshotKey, SnapshotRead, SnapshotStore, log_offer_outcome};
use factos::{DecisionScope, Position, StoreError, StreamRevision};
use tokio_postgres::GenericClient;
use tokio_postgres::types::Type;

use crate::error::PgError;
use crate::store::read::to_sql;
use crate::store::{PgDecision, PgStore, traced};

impl SnapshotStore for PgStore {
    #[tracing::instrument(
        level = "debug",
        name = "store",
        skip_all,
        fields(backend = "postgres", operation = "begin_decision_from_snapshot", rows, code, error)
    )]
    async fn begin_decision_from_snapshot(
        &self,
        scope: &DecisionScope,
        key: &SnapshotKey,
    ) -> Result<(PgDecision, SnapshotRead), StoreError> {
        self.query_limits.check_scope(scope)?;
        let begun = self.run_begin_decision(scope, Some(key)).await.map(|(decision, read)| {
            let (stamp, snapshot) = read.snapshot.unwrap_or_default();
            let read = SnapshotRead {
                snapshot,
                events: read.events,
                stamp,
            };
            (decision, read)
        });
        traced(begun, |(_, read)| read.events.len())
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<bool, StoreError> {
        let (session, _) = self.begin(false).await?;
        let saved = save(session.client(), &snapshot).await;
        Ok(session.end(saved).await?)
    }

    fn offer_snapshot(&self, snapshot: Snapshot) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("no tokio runtime to save an offered snapshot on");
            return;
        };
        let Some(claim) = self.offers.claim(&snapshot.key) else {
            return;
        };
        let store = self.clone();
        runtime.spawn(async move {
            let key = snapshot.key.clone();
            let outcome = store.save_snapshot(snapshot).await;
            drop(claim);
            log_offer_outcome(&key, &outcome);
        });
    }
}

/// The current tag generation, and the snapshot under `key` if it was read
/// under it.
pub(crate) async fn load<C: GenericClient + Sync>(
    client: &C,
    key: &SnapshotKey,
) -> Result<(u64, Option<Snapshot>), PgError> {
    let row = client
        .query_one(
            include_str!("../sql/snapshot/load.sql"),
            &[
                &key.decider(),
                &i64::from(key.version()),
                &(key.digest() as i64),
                &key.scope(),
            ],
        )
        .await?;
    let corrupt = || PgError::CorruptSnapshot {
        decider: key.decider().to_owned(),
    };
    let generation = u64::try_from(row.try_get::<_, i64>(0)?).map_err(|_| corrupt())?;
    let (Some(position), Some(revision), Some(state)) = (
        row.try_get::<_, Option<i64>>(1)?,
        row.try_get::<_, Option<i64>>(2)?,
        row.try_get::<_, Option<Vec<u8>>>(3)?,
    ) else {
        return Ok((generation, None));
    };
    let (Ok(position), Ok(revision)) = (u64::try_from(position), u64::try_from(revision)) else {
        return Err(corrupt());
    };
    let snapshot = Snapshot {
        key: key.clone(),
        position: Position::new(position),
        revision: StreamRevision::new(revision),
        stamp: generation,
        state,
    };
    Ok((generation, Some(snapshot)))
}

/// Keeps `snapshot` (see `save.sql`); whether it was kept.
async fn save<C: GenericClient + Sync>(client: &C, snapshot: &Snapshot) -> Result<bool, PgError> {
    let key = &snapshot.key;
    let changed = client
        .execute_typed(
            include_str!("../sql/snapshot/save.sql"),
            &[
                (&key.decider(), Type::TEXT),
                (&i64::from(key.version()), Type::INT8),
                (&(key.digest() as i64), Type::INT8),
                (&key.scope(), Type::TEXT),
                (&to_sql("position", snapshot.position.value())?, Type::INT8),
                (&to_sql("revision", snapshot.revision.value())?, Type::INT8),
                (&to_sql("generation", snapshot.stamp)?, Type::INT8),
                (&snapshot.state, Type::BYTEA),
            ],
        )
        .await?;
    Ok(changed > 0)
}

/// Starts a new tag generation and drops every snapshot (tags were added
/// to history), in the publish's transaction.
pub(crate) async fn retire_all<C: GenericClient + Sync>(client: &C) -> Result<(), PgError> {
    Ok(client
        .batch_execute(include_str!("../sql/snapshot/retire_all.sql"))
        .await?)
}
