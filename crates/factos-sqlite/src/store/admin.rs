//! [`Admin`] for SQLite: schema version, stats, the raw tag index and
//! imports (written by the writer thread, like every write).

use factos::admin::{Admin, ImportCheck, SchemaVersion, StoreStats, TagRow};
use factos::{Position, StoreError, StoredEvent, StreamRevision, Timestamp};
use rusqlite::{Connection, OptionalExtension};

use crate::error::SqliteError;
use crate::schema;
use crate::store::SqliteStore;
use crate::store::append::insert_records;
use crate::store::read::to_sql;

impl Admin for SqliteStore {
    async fn schema_version(&self) -> Result<SchemaVersion, StoreError> {
        let found = self.run_unchecked(|conn| schema::version(conn)).await?;
        Ok(SchemaVersion {
            found,
            supported: schema::SCHEMA_VERSION,
        })
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        Ok(SqliteStore::migrate(self).await?)
    }

    async fn stats(&self, top_tags: usize) -> Result<StoreStats, StoreError> {
        let top_tags = i64::try_from(top_tags).unwrap_or(i64::MAX);
        Ok(self.run(move |conn| stats(conn, top_tags)).await?)
    }

    async fn checkpoints(&self) -> Result<Vec<(String, factos::Cursor)>, StoreError> {
        Ok(self
            .run(|conn| {
                let mut stmt = conn.prepare_cached(factos_sql::sqlite_dialect::CHECKPOINTS)?;
                let rows = stmt.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
                rows.map(|row| {
                    let (name, cursor) = row?;
                    let cursor = cursor.parse().map_err(crate::error::SqliteError::CorruptCheckpoint)?;
                    Ok((name, cursor))
                })
                .collect::<Result<Vec<_>, crate::error::SqliteError>>()
            })
            .await?)
    }

    async fn tag_rows(&self, after: Option<Position>, up_to: Option<Position>) -> Result<Vec<TagRow>, StoreError> {
        let after = after.map(to_sql).transpose()?.unwrap_or(0);
        let up_to = up_to.map(to_sql).transpose()?.unwrap_or(i64::MAX);
        Ok(self.run(move |conn| tag_rows(conn, after, up_to)).await?)
    }

    async fn import(&self, records: Vec<StoredEvent>) -> Result<(), StoreError> {
        let outcome = self
            .run_in_group(move |conn| {
                let outcome = import(conn, &records)?;
                Ok((outcome.is_ok(), outcome))
            })
            .await?;
        if outcome.is_ok() {
            self.commits().bump();
        }
        outcome
    }
}

fn stats(conn: &Connection, top_tags: i64) -> Result<StoreStats, SqliteError> {
    let (events, streams): (i64, i64) = conn
        .prepare_cached(include_str!("../sql/stats_counts.sql"))?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let counted = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> Result<Vec<(String, u64)>, SqliteError> {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params, |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?;
        let mut counts = Vec::new();
        for row in rows {
            let (name, count) = row?;
            counts.push((name, u64::try_from(count).unwrap_or(0)));
        }
        Ok(counts)
    };
    let event_types = counted(include_str!("../sql/stats_types.sql"), &[])?;
    let top_tags = counted(include_str!("../sql/stats_tags.sql"), &[&top_tags])?;
    let ends: [Option<i64>; 4] = conn
        .prepare_cached(include_str!("../sql/stats_ends.sql"))?
        .query_row([], |row| Ok([row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?]))?;
    let end = |position: Option<i64>, at: Option<i64>| {
        Some((
            Position::new(u64::try_from(position?).ok()?),
            Timestamp::from_unix_micros(at?),
        ))
    };
    let page_count: i64 = conn.pragma_query_value(None, "page_count", |row| row.get(0))?;
    let page_size: i64 = conn.pragma_query_value(None, "page_size", |row| row.get(0))?;
    Ok(StoreStats {
        events: u64::try_from(events).unwrap_or(0),
        streams: u64::try_from(streams).unwrap_or(0),
        event_types,
        top_tags,
        first: end(ends[0], ends[1]),
        last: end(ends[2], ends[3]),
        size_bytes: u64::try_from(page_count.saturating_mul(page_size)).ok(),
    })
}

fn tag_rows(conn: &Connection, after: i64, up_to: i64) -> Result<Vec<TagRow>, SqliteError> {
    let mut stmt = conn.prepare_cached(include_str!("../sql/tag_rows.sql"))?;
    let rows = stmt.query_map([after, up_to], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
        ))
    })?;
    let mut tag_rows = Vec::new();
    for row in rows {
        let (position, tag, event_type) = row?;
        tag_rows.push(TagRow {
            position: Position::new(u64::try_from(position).unwrap_or(0)),
            tag,
            event_type,
        });
    }
    Ok(tag_rows)
}

/// Checks and writes `records` inside the writer's transaction.
fn import(conn: &Connection, records: &[StoredEvent]) -> Result<Result<(), StoreError>, SqliteError> {
    let last: i64 = conn
        .prepare_cached(include_str!("../sql/last_position.sql"))?
        .query_row([], |row| row.get(0))?;
    let last = u64::try_from(last).ok().filter(|last| *last > 0).map(Position::new);
    let mut check = ImportCheck::new(last);
    let mut head = conn.prepare_cached(include_str!("../sql/stream_head.sql"))?;
    let mut position_of = conn.prepare_cached(include_str!("../sql/position_of_id.sql"))?;
    for record in records {
        let checked = check.record(record, |stream| -> Result<_, SqliteError> {
            let head: Option<i64> = head.query_row([stream.as_str()], |row| row.get(0))?;
            Ok(head.and_then(|h| u64::try_from(h).ok()).map(StreamRevision::new))
        })?;
        if let Err(refused) = checked {
            return Ok(Err(refused.into()));
        }
        let existing: Option<i64> = position_of
            .query_row([record.id.as_bytes().as_slice()], |row| row.get(0))
            .optional()?;
        if let Some(existing) = existing {
            return Ok(Err(factos::admin::ImportRefused::DuplicateId {
                position: record.position,
                id: record.id,
                existing: Position::new(u64::try_from(existing).unwrap_or(0)),
            }
            .into()));
        }
    }
    insert_records(conn, records, 0)?;
    Ok(Ok(()))
}
