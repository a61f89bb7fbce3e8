//! [`Admin`] for PostgreSQL: schema version, stats, the raw tag index and
//! imports.

use std::collections::HashMap;
use std::time::SystemTime;

use factos::admin::{Admin, ImportCheck, ImportRefused, SchemaVersion, StoreStats, TagRow};
use factos::{EventId, Position, StoreError, StoredEvent, StreamRevision, Timestamp};
use factos_sql::row::{metadata_column, tags_column};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};

use crate::error::PgError;
use crate::schema;
use crate::session::Session;
use crate::store::PgStore;
use crate::store::read::to_sql;

impl Admin for PgStore {
    async fn schema_version(&self) -> Result<SchemaVersion, StoreError> {
        let session = Session::begin(&self.pool, &self.limits.begin(false, false)).await?;
        let found = schema::found(session.client()).await;
        let (_, found) = session.end(found).await?;
        Ok(SchemaVersion {
            found: i64::from(found),
            supported: i64::from(schema::SCHEMA_VERSION),
        })
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        Ok(PgStore::migrate(self).await?)
    }

    async fn stats(&self, top_tags: usize) -> Result<StoreStats, StoreError> {
        let (session, _) = self.begin(false).await?;
        let stats = stats(session.client(), i64::try_from(top_tags).unwrap_or(i64::MAX)).await;
        Ok(session.end(stats).await?)
    }

    async fn checkpoints(&self) -> Result<Vec<(String, factos::Cursor)>, StoreError> {
        let (session, _) = self.begin(false).await?;
        let rows = session
            .client()
            .query_typed(factos_sql::sqlite_dialect::CHECKPOINTS, &[])
            .await
            .map_err(PgError::from)
            .and_then(|rows| {
                rows.iter()
                    .map(|row| {
                        let cursor: String = row.try_get(1)?;
                        Ok((row.try_get(0)?, cursor.parse().map_err(PgError::CorruptCheckpoint)?))
                    })
                    .collect::<Result<Vec<_>, PgError>>()
            });
        Ok(session.end(rows).await?)
    }

    async fn tag_rows(&self, after: Option<Position>, up_to: Option<Position>) -> Result<Vec<TagRow>, StoreError> {
        let after = after.map(|p| to_sql("position", p.value())).transpose()?.unwrap_or(0);
        let up_to = up_to
            .map(|p| to_sql("position", p.value()))
            .transpose()?
            .unwrap_or(i64::MAX);
        let (session, _) = self.begin(false).await?;
        let rows = async {
            let rows = session
                .client()
                .query_typed(
                    include_str!("../sql/tag_rows.sql"),
                    &[(&after, Type::INT8), (&up_to, Type::INT8)],
                )
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(TagRow {
                        position: position(row, 0)?,
                        tag: row.try_get(1)?,
                        event_type: row.try_get(2)?,
                    })
                })
                .collect::<Result<Vec<_>, PgError>>()
        };
        let rows = rows.await;
        Ok(session.end(rows).await?)
    }

    async fn import(&self, records: Vec<StoredEvent>) -> Result<(), StoreError> {
        let (session, _) = self.begin(false).await?;
        match import(session.client(), &records).await {
            Ok(Ok(())) => Ok(session.end(Ok(())).await?),
            Ok(Err(refused)) => {
                session.abandon().await;
                Err(refused)
            }
            Err(error) => Ok(session.end(Err(error)).await?),
        }
    }
}

fn position(row: &Row, column: usize) -> Result<Position, PgError> {
    let value: i64 = row.try_get(column)?;
    Ok(Position::new(u64::try_from(value).unwrap_or(0)))
}

async fn stats(client: &Client, top_tags: i64) -> Result<StoreStats, PgError> {
    let row = client.query_one(include_str!("../sql/stats.sql"), &[]).await?;
    let end = |p: usize, t: usize| -> Result<Option<(Position, Timestamp)>, PgError> {
        let at: Option<SystemTime> = row.try_get(t)?;
        let position: Option<i64> = row.try_get(p)?;
        Ok(position
            .zip(at)
            .map(|(position, at)| (Position::new(u64::try_from(position).unwrap_or(0)), Timestamp::from(at))))
    };
    let counted = |rows: Vec<Row>| -> Result<Vec<(String, u64)>, PgError> {
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, u64::try_from(row.try_get::<_, i64>(1)?).unwrap_or(0))))
            .collect()
    };
    let event_types = counted(client.query(include_str!("../sql/stats_types.sql"), &[]).await?)?;
    let tags = counted(
        client
            .query_typed(include_str!("../sql/stats_tags.sql"), &[(&top_tags, Type::INT8)])
            .await?,
    )?;
    let count =
        |column: usize| -> Result<u64, PgError> { Ok(u64::try_from(row.try_get::<_, i64>(column)?).unwrap_or(0)) };
    Ok(StoreStats {
        events: count(0)?,
        streams: count(1)?,
        event_types,
        top_tags: tags,
        first: end(2, 3)?,
        last: end(4, 5)?,
        size_bytes: Some(count(6)?),
    })
}

/// Checks and writes `records` in the session's transaction, with the
/// events table locked against concurrent inserts.
async fn import(client: &Client, records: &[StoredEvent]) -> Result<Result<(), StoreError>, PgError> {
    client
        .batch_execute("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
        .await?;
    let last: Option<i64> = client
        .query_one(include_str!("../sql/import_last.sql"), &[])
        .await?
        .try_get(0)?;
    let streams: Vec<&str> = records
        .iter()
        .map(|r| r.stream.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let heads: HashMap<String, Option<i64>> = client
        .query_typed(include_str!("../sql/import_heads.sql"), &[(&streams, Type::TEXT_ARRAY)])
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, PgError>>()?;
    let ids: Vec<uuid::Uuid> = records.iter().map(|r| *r.id.as_uuid()).collect();
    let taken: HashMap<EventId, i64> = client
        .query_typed(include_str!("../sql/taken_positions.sql"), &[(&ids, Type::UUID_ARRAY)])
        .await?
        .iter()
        .map(|row| Ok((EventId::from_uuid(row.try_get(0)?), row.try_get(1)?)))
        .collect::<Result<_, PgError>>()?;
    let last = last
        .and_then(|l| u64::try_from(l).ok())
        .filter(|l| *l > 0)
        .map(Position::new);
    let mut check = ImportCheck::new(last);
    for record in records {
        let head = |stream: &factos::StreamId| -> Result<_, PgError> {
            Ok(heads
                .get(stream.as_str())
                .copied()
                .flatten()
                .and_then(|h| u64::try_from(h).ok())
                .map(StreamRevision::new))
        };
        if let Err(refused) = check.record(record, head)? {
            return Ok(Err(refused.into()));
        }
        if let Some(existing) = taken.get(&record.id) {
            return Ok(Err(ImportRefused::DuplicateId {
                position: record.position,
                id: record.id,
                existing: Position::new(u64::try_from(*existing).unwrap_or(0)),
            }
            .into()));
        }
    }
    insert(client, records, &ids).await?;
    Ok(Ok(()))
}

/// Inserts `records` (whose ids are `ids`, in order) with their tag rows,
/// and moves the position sequence past them.
async fn insert(client: &Client, records: &[StoredEvent], ids: &[uuid::Uuid]) -> Result<(), PgError> {
    let mut positions = Vec::with_capacity(records.len());
    let mut revisions = Vec::with_capacity(records.len());
    let mut versions = Vec::with_capacity(records.len());
    let mut times = Vec::with_capacity(records.len());
    for record in records {
        positions.push(to_sql("position", record.position.value())?);
        revisions.push(to_sql("revision", record.revision.value())?);
        versions.push(i64::from(record.version));
        times.push(SystemTime::from(record.recorded_at));
    }
    let streams: Vec<&str> = records.iter().map(|r| r.stream.as_str()).collect();
    let types: Vec<&str> = records.iter().map(|r| r.event_type.as_str()).collect();
    let tags: Vec<String> = records.iter().map(|r| tags_column(&r.tags)).collect();
    let metadata: Vec<String> = records.iter().map(|r| metadata_column(&r.metadata)).collect();
    let data: Vec<&[u8]> = records.iter().map(|r| r.event.as_slice()).collect();
    client
        .query_typed(
            include_str!("../sql/import.sql"),
            &[
                (&positions, Type::INT8_ARRAY),
                (&ids, Type::UUID_ARRAY),
                (&streams, Type::TEXT_ARRAY),
                (&revisions, Type::INT8_ARRAY),
                (&types, Type::TEXT_ARRAY),
                (&versions, Type::INT8_ARRAY),
                (&tags, Type::TEXT_ARRAY),
                (&metadata, Type::TEXT_ARRAY),
                (&data, Type::BYTEA_ARRAY),
                (&times, Type::TIMESTAMPTZ_ARRAY),
            ],
        )
        .await?;
    if let Some(max) = positions.iter().max() {
        client
            .query_typed("SELECT setval('events_position_seq', $1)", &[(max, Type::INT8)])
            .await?;
    }
    Ok(())
}
