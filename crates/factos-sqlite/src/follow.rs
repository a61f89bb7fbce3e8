//! Following the log on SQLite: the follow contract, checkpoints and parked
//! effects.
//!
//! Positions are assigned by the writer holding the database's write lock,
//! so position order is commit order: a follower's cursor is the position
//! of the last event it examined, and nothing can ever appear below it.
//! Commits in this process wake followers at once; commits by other
//! processes are noticed by polling `PRAGMA data_version` on a dedicated
//! connection every [`SqliteOptions::poll_interval`](crate::SqliteOptions).

use factos::{
    Checkpoints, Cursor, EffectKey, EventId, Follow, FollowBatch, ParkedEffect, Position, Query, StoreError, Timestamp,
    deliver_in_position_order,
};
use factos_sql::Bounds;
use rusqlite::{Connection, OptionalExtension};

use crate::error::SqliteError;
use crate::store::SqliteStore;
use crate::store::read::{read_bounded, to_sql};

/// Examines up to `limit` events after `after` and returns those matching
/// `query` (the follow contract's read, on one connection).
pub(crate) fn read_after(
    conn: &Connection,
    query: &Query,
    after: Option<Cursor>,
    limit: usize,
) -> Result<FollowBatch, SqliteError> {
    let from = after.map(|c| to_sql(c.position())).transpose()?.unwrap_or(0);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (end, examined): (Option<i64>, i64) = conn
        .prepare_cached(factos_sql::sqlite_dialect::WINDOW_END)?
        .query_row([from, limit], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let Some(end) = end else {
        return Ok(FollowBatch::default());
    };
    let events = read_bounded(
        conn,
        query,
        Bounds {
            min: Some(from.saturating_add(1)),
            max: Some(end),
        },
    )?;
    Ok(FollowBatch {
        events: deliver_in_position_order(events),
        examined: usize::try_from(examined).unwrap_or(0),
        end: Some(Cursor::new(0, Position::new(u64::try_from(end).unwrap_or(0)))),
    })
}

/// The checkpoint stored under `name`.
pub(crate) fn load_checkpoint(conn: &Connection, name: &str) -> Result<Option<Cursor>, SqliteError> {
    let text: Option<String> = conn
        .prepare_cached(factos_sql::sqlite_dialect::LOAD_CHECKPOINT)?
        .query_row([name], |row| row.get(0))
        .optional()?;
    text.map(|t| {
        t.parse()
            .map_err(|e: factos::InvalidCursor| SqliteError::CorruptCheckpoint(e))
    })
    .transpose()
}

/// Stores `cursor` under `name`.
pub(crate) fn save_checkpoint(conn: &Connection, name: &str, cursor: Cursor) -> Result<(), SqliteError> {
    conn.prepare_cached(factos_sql::sqlite_dialect::SAVE_CHECKPOINT)?
        .execute(rusqlite::params![
            name,
            cursor.to_string(),
            Timestamp::now().as_unix_micros()
        ])?;
    Ok(())
}

impl Follow for SqliteStore {
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "sqlite", operation = "read_after", query_items = query.items().len(), rows, code, error))]
    async fn read_after(&self, query: &Query, after: Option<Cursor>, limit: usize) -> Result<FollowBatch, StoreError> {
        self.query_limits().check(query)?;
        let query = query.clone();
        let result = self.run(move |conn| read_after(conn, &query, after, limit)).await;
        crate::store::traced(result.map_err(StoreError::from), |batch| batch.events.len())
    }

    fn commit_count(&self) -> u64 {
        self.commits().count()
    }

    async fn commit_mark(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn settled(&self, _mark: u64) -> Result<bool, StoreError> {
        // One writer at a time assigns positions: every commit is readable
        // in position order as soon as it is committed.
        Ok(true)
    }

    async fn wait_for_commit(&self, seen: u64) {
        let local = self.commits().changed_since(seen);
        if self.is_inline() {
            // No runtime to poll with: only this process's commits wake.
            return local.await;
        }
        let other_processes = async {
            loop {
                tokio::time::sleep(self.poll_interval()).await;
                if self.other_connection_committed().await {
                    return;
                }
            }
        };
        tokio::select! {
            () = local => {}
            () = other_processes => {}
        }
    }
}

impl Checkpoints for SqliteStore {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Cursor>, StoreError> {
        let name = name.to_owned();
        Ok(self.run(move |conn| load_checkpoint(conn, &name)).await?)
    }

    async fn save_checkpoint(&self, name: &str, cursor: Cursor) -> Result<(), StoreError> {
        let name = name.to_owned();
        Ok(self.run(move |conn| save_checkpoint(conn, &name, cursor)).await?)
    }

    async fn park_effect(&self, parked: ParkedEffect) -> Result<(), StoreError> {
        Ok(self
            .run(move |conn| {
                conn.prepare_cached(factos_sql::sqlite_dialect::PARK_EFFECT)?
                    .execute(rusqlite::params![
                        parked.runner,
                        parked.key.event.as_bytes().as_slice(),
                        parked.key.index,
                        to_sql(parked.position())?,
                        parked.attempts,
                        parked.error,
                        Timestamp::now().as_unix_micros(),
                        parked.cursor.to_string(),
                    ])?;
                Ok(())
            })
            .await?)
    }

    async fn parked_effects(&self, runner: &str) -> Result<Vec<ParkedEffect>, StoreError> {
        let runner = runner.to_owned();
        Ok(self
            .run(move |conn| {
                let mut stmt = conn.prepare_cached(factos_sql::sqlite_dialect::PARKED_EFFECTS)?;
                let rows = stmt.query_map([&runner], |row| {
                    Ok((
                        row.get::<_, Vec<u8>>(0)?,
                        row.get::<_, u32>(1)?,
                        row.get::<_, String>(2)?,
                        row.get(3)?,
                        row.get(4)?,
                        row.get(5)?,
                    ))
                })?;
                let corrupt = |source: factos::BoxError| SqliteError::CorruptParkedEffect {
                    runner: runner.clone(),
                    source,
                };
                let mut parked = Vec::new();
                for row in rows {
                    let (id, index, cursor, attempts, error, retry_requested) = row?;
                    let id: [u8; 16] = id
                        .try_into()
                        .map_err(|_| corrupt("its event id is not 16 bytes".into()))?;
                    parked.push(ParkedEffect {
                        runner: runner.clone(),
                        key: EffectKey {
                            event: EventId::from_bytes(id),
                            index,
                        },
                        cursor: cursor.parse().map_err(|e: factos::InvalidCursor| corrupt(e.into()))?,
                        attempts,
                        error,
                        retry_requested,
                    });
                }
                Ok(parked)
            })
            .await?)
    }

    async fn retry_parked(&self, runner: &str, key: EffectKey) -> Result<bool, StoreError> {
        let runner = runner.to_owned();
        Ok(self
            .run(move |conn| {
                let marked =
                    conn.prepare_cached(factos_sql::sqlite_dialect::RETRY_PARKED)?
                        .execute(rusqlite::params![
                            runner,
                            key.event.as_bytes().as_slice(),
                            key.index,
                            Timestamp::now().as_unix_micros(),
                        ])?;
                Ok::<_, SqliteError>(marked > 0)
            })
            .await?)
    }

    async fn discard_parked(&self, runner: &str, key: EffectKey) -> Result<bool, StoreError> {
        let runner = runner.to_owned();
        Ok(self
            .run(move |conn| {
                let removed = conn
                    .prepare_cached(factos_sql::sqlite_dialect::DISCARD_PARKED)?
                    .execute(rusqlite::params![runner, key.event.as_bytes().as_slice(), key.index])?;
                Ok::<_, SqliteError>(removed > 0)
            })
            .await?)
    }
}
