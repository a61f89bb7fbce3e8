//! Appending a batch inside an open write transaction.

use factos::{AppendRequest, Committed, Position, StoreError, StoredEvent, StreamRevision, Timestamp};
use rusqlite::{Connection, params};

use crate::error::SqliteError;
use crate::store::read::{COLUMNS, event_from_row, first_match_after, to_sql};
use factos_sql::row::{metadata_column, tags_column};

/// Checks and writes `request` on `conn`, which must be inside a write
/// transaction (`BEGIN IMMEDIATE`): nothing else can write between the
/// checks and the inserts.
///
/// The outer error is a database failure; the inner one a rejection by the
/// contract, after which the caller rolls back (nothing was inserted).
/// Checks run in the contract's order: validity, taken ids (an identical
/// re-send returns the original records), expected revision, condition.
pub(crate) fn append(conn: &Connection, request: AppendRequest) -> Result<Result<Committed, StoreError>, SqliteError> {
    if let Err(invalid) = request.validate() {
        return Ok(Err(invalid.into()));
    }
    let existing = taken(conn, &request)?;
    if !existing.is_empty() {
        return Ok(request.replayed(existing));
    }
    let head: Option<i64> = conn
        .prepare_cached(include_str!("../sql/stream_head.sql"))?
        .query_row([request.stream.as_str()], |row| row.get(0))?;
    let current = head.map(|h| StreamRevision::new(u64::try_from(h).unwrap_or(0)));
    if let Err(mismatch) = request.check_revision(current) {
        return Ok(Err(mismatch.into()));
    }
    if let Some(condition) = &request.condition
        && let Err(failed) = request.check_condition(first_match_after(conn, &condition.query, condition.after)?)
    {
        return Ok(Err(failed.into()));
    }
    insert(conn, request, current).map(Ok)
}

/// The committed events holding any of the request's ids, with their batch
/// fingerprints.
fn taken(conn: &Connection, request: &AppendRequest) -> Result<Vec<(factos::StoredEvent, u64)>, SqliteError> {
    let mut existing = Vec::new();
    // One statement per chunk of ids rather than one per event; the chunk
    // stays far below SQLite's parameter limit.
    for chunk in request.events.chunks(500) {
        let placeholders = (1..=chunk.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS}, fingerprint FROM events WHERE event_id IN ({placeholders})"
        ))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(
            chunk.iter().map(|e| e.id.as_bytes().as_slice()),
        ))?;
        while let Some(row) = rows.next()? {
            existing.push((
                event_from_row(row)?,
                u64::from_ne_bytes(row.get::<_, i64>(10)?.to_ne_bytes()),
            ));
        }
    }
    Ok(existing)
}

fn insert(
    conn: &Connection,
    request: AppendRequest,
    current: Option<StreamRevision>,
) -> Result<Committed, SqliteError> {
    let fingerprint = i64::from_ne_bytes(request.fingerprint().to_ne_bytes());
    let last: i64 = conn
        .prepare_cached(include_str!("../sql/last_position.sql"))?
        .query_row([], |row| row.get(0))?;
    let last = u64::try_from(last).unwrap_or(0);
    let positions = (1..=request.events.len() as u64).map(|offset| Position::new(last + offset));
    let committed = request.into_committed(positions, current, Timestamp::now());
    insert_records(conn, &committed.records, fingerprint)?;
    Ok(committed)
}

/// Inserts `records` as they are, with their tag rows, marked with the
/// batch `fingerprint`.
pub(crate) fn insert_records(conn: &Connection, records: &[StoredEvent], fingerprint: i64) -> Result<(), SqliteError> {
    let mut insert_event = conn.prepare_cached(include_str!("../sql/insert_event.sql"))?;
    let mut insert_tag = conn.prepare_cached(include_str!("../sql/insert_tag.sql"))?;
    for record in records {
        let position = to_sql(record.position)?;
        let revision = i64::try_from(record.revision.value()).map_err(|_| SqliteError::OutOfRange {
            what: "revision",
            value: record.revision.value(),
        })?;
        insert_event.execute(params![
            position,
            record.id.as_bytes().as_slice(),
            record.stream.as_str(),
            revision,
            record.event_type.as_str(),
            record.version,
            tags_column(&record.tags),
            metadata_column(&record.metadata),
            record.event,
            record.recorded_at.as_unix_micros(),
            fingerprint,
        ])?;
        for tag in &record.tags {
            insert_tag.execute(params![tag.as_str(), position, record.event_type.as_str()])?;
        }
    }
    Ok(())
}
