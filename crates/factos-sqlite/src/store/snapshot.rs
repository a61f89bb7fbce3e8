//! [`SnapshotStore`] for SQLite: a decision reads the snapshot and the
//! events after it in one read transaction (one WAL snapshot), and saves
//! run on the writer thread like every write; an offered snapshot is
//! queued there without waiting for its commit.

use factos::snapshot::{Snapshot, SnapshotKey, SnapshotRead, SnapshotStore, log_offer_outcome, read_after};
use factos::{DecisionScope, Position, ReadOptions, StoreError, StreamRevision};
use rusqlite::{Connection, OptionalExtension};

use crate::error::SqliteError;
use crate::store::read::{self, to_sql};
use crate::store::{SqliteDecision, SqliteStore, retag, traced};

impl SnapshotStore for SqliteStore {
    #[tracing::instrument(
        level = "debug",
        name = "store",
        skip_all,
        fields(backend = "sqlite", operation = "begin_decision_from_snapshot", rows, code, error)
    )]
    async fn begin_decision_from_snapshot(
        &self,
        scope: &DecisionScope,
        key: &SnapshotKey,
    ) -> Result<(SqliteDecision, SnapshotRead), StoreError> {
        let (scope_read, key) = (scope.clone(), key.clone());
        let begun = self.begin_with(scope, move |conn| read_from_snapshot(conn, &scope_read, key));
        traced(begun.await, |(_, read)| read.events.len())
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<bool, StoreError> {
        Ok(self
            .run_in_group(move |conn| Ok((true, save(conn, &snapshot)?)))
            .await?)
    }

    fn offer_snapshot(&self, snapshot: Snapshot) {
        let Some(claim) = self.offers().claim(&snapshot.key) else {
            return;
        };
        let key = snapshot.key.clone();
        let done = move |outcome: Result<bool, SqliteError>| {
            drop(claim);
            log_offer_outcome(&key, &outcome.map_err(StoreError::from));
        };
        if let Err(gone) = self.group_then(move |conn| Ok((true, save(conn, &snapshot)?)), done) {
            tracing::warn!(error = %gone, "a snapshot could not be queued");
        }
    }
}

/// The snapshot under `key` valid at the current tag generation and the
/// scope's events after it, in one read transaction; for a query's context,
/// also the generation (the decision's append checks it).
fn read_from_snapshot(
    conn: &mut Connection,
    scope: &DecisionScope,
    key: SnapshotKey,
) -> Result<(Option<i64>, SnapshotRead), SqliteError> {
    let tx = conn.transaction()?;
    let generation = retag::generation(&tx)?;
    let snapshot = load(&tx, key, generation)?;
    let (position, revision) = read_after(snapshot.as_ref());
    let events = match scope {
        DecisionScope::Query(query) => read::read(&tx, query, ReadOptions::forwards().from(position))?,
        DecisionScope::Stream(stream) => read::read_stream(&tx, stream, revision, usize::MAX)?,
    };
    tx.commit()?;
    let read = SnapshotRead {
        snapshot,
        events,
        stamp: u64::try_from(generation).unwrap_or_default(),
    };
    Ok((matches!(scope, DecisionScope::Query(_)).then_some(generation), read))
}

fn load(conn: &Connection, key: SnapshotKey, generation: i64) -> Result<Option<Snapshot>, SqliteError> {
    let found = conn
        .prepare_cached(include_str!("../sql/snapshot/load.sql"))?
        .query_row(
            rusqlite::params![
                key.decider(),
                key.version(),
                key.digest() as i64,
                key.scope(),
                generation
            ],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, Vec<u8>>(2)?)),
        )
        .optional()?;
    let Some((position, revision, state)) = found else {
        return Ok(None);
    };
    let (Ok(position), Ok(revision)) = (u64::try_from(position), u64::try_from(revision)) else {
        return Err(SqliteError::CorruptSnapshot {
            decider: key.decider().to_owned(),
        });
    };
    Ok(Some(Snapshot {
        key,
        position: Position::new(position),
        revision: StreamRevision::new(revision),
        stamp: u64::try_from(generation).unwrap_or_default(),
        state,
    }))
}

/// Keeps `snapshot` (see `save.sql`); whether it was kept.
fn save(conn: &Connection, snapshot: &Snapshot) -> Result<bool, SqliteError> {
    let key = &snapshot.key;
    let revision = i64::try_from(snapshot.revision.value()).map_err(|_| SqliteError::OutOfRange {
        what: "revision",
        value: snapshot.revision.value(),
    })?;
    let changed = conn
        .prepare_cached(include_str!("../sql/snapshot/save.sql"))?
        .execute(rusqlite::params![
            key.decider(),
            key.version(),
            key.digest() as i64,
            key.scope(),
            to_sql(snapshot.position)?,
            revision,
            i64::try_from(snapshot.stamp).unwrap_or(-1),
            snapshot.state,
        ])?;
    Ok(changed > 0)
}

/// Starts a new tag generation and drops every snapshot (tags were added
/// to history, or a subject forgotten), in the writer's transaction.
pub(crate) fn retire_all(conn: &Connection) -> Result<(), SqliteError> {
    conn.prepare_cached(include_str!("../sql/retag/bump_generation.sql"))?
        .execute([])?;
    conn.prepare_cached(include_str!("../sql/snapshot/drop_all.sql"))?
        .execute([])?;
    Ok(())
}
