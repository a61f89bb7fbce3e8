//! The atomic append: one D1 batch that decides and writes.
//!
//! D1 runs a batch as one transaction, and a single statement is atomic,
//! but it has no interactive transactions. So the whole decision is made
//! inside the first statement of the batch:
//!
//! ```sql
//! WITH batch(k, event_id, event_type, version, tags, metadata, data) AS (VALUES (0, ?4, …), (1, …)),
//!      head(revision) AS (SELECT MAX(revision) FROM events WHERE stream = ?1)
//! INSERT INTO events (event_id, stream, revision, event_type, version, tags, metadata, data, recorded_at, fingerprint)
//! SELECT batch.event_id, ?1, COALESCE(head.revision, -1) + 1 + batch.k, …, ?2, ?3
//! FROM batch, head
//! WHERE head.revision = ?10                                  -- the expected revision
//!   AND NOT EXISTS (SELECT 1 FROM events WHERE event_id IN (SELECT event_id FROM batch))
//!   AND NOT EXISTS (SELECT 1 FROM events WHERE position >= ?11 AND <the condition's query>)
//! ORDER BY batch.k
//! RETURNING position, revision
//! ```
//!
//! It inserts every event of its chunk or none. D1 binds at most 100
//! parameters per statement, so a larger batch continues in further
//! statements of the same batch that insert only `WHERE changes() > 0`
//! (the previous statement inserted: the decision was yes); a duplicate id
//! among them fails the unique index and rolls the whole batch back. Tag
//! rows follow, inserted only for events of this request
//! (`fingerprint = ?`), so a refused append writes nothing at all. Success
//! is read from the rows returned; a refusal is then explained by reads
//! (a re-sent batch, a taken id, the revision, the condition), which cannot
//! change their answer since the log only grows.

use factos::{
    AppendRequest, Committed, ExpectedRevision, InvalidAppend, StoreError, StreamRevision, UnsupportedAppendCondition,
};
use factos_sql::Bounds;
use factos_sql::row::{metadata_column, tags_column};
use serde::Deserialize;
use worker::D1Database;

use crate::BACKEND;
use crate::error::D1Error;
use crate::read::{COLUMNS, push_filter, rows, single, to_sql};
use crate::statement::{Arg, MAX_PARAMS, Statement};

/// The most bytes D1 stores in one row.
pub(crate) const MAX_ROW_BYTES: usize = 2_000_000;

/// Parameters each event takes in an insert statement.
const PER_EVENT: usize = 6;

/// Parameters each tag takes in a tag statement.
const PER_TAG: usize = 2;

#[derive(Debug, Deserialize)]
struct Inserted {
    position: i64,
    revision: i64,
}

/// Refuses events D1 cannot store in one row.
fn within_row_limit(request: &AppendRequest) -> Result<(), InvalidAppend> {
    for event in &request.events {
        let bytes = event.data.len()
            + event.event_type.as_str().len()
            + request.stream.as_str().len()
            + event.tags.iter().map(|t| t.as_str().len() + 1).sum::<usize>()
            + event.metadata.iter().map(|(k, v)| k.len() + v.len() + 6).sum::<usize>()
            + 64;
        if bytes > MAX_ROW_BYTES {
            return Err(InvalidAppend::TooLarge {
                backend: BACKEND,
                id: event.id,
                bytes,
                limit: MAX_ROW_BYTES,
            });
        }
    }
    Ok(())
}

/// The statements of the batch for `request`, written at `recorded_at`:
/// the event inserts (whose returned rows say what was written), then the
/// tag inserts.
struct Batch {
    inserts: Vec<Statement>,
    tags: Vec<Statement>,
}

fn statements(request: &AppendRequest, recorded_at: i64) -> Result<Batch, StoreError> {
    within_row_limit(request)?;
    let fingerprint = format!("{:016x}", request.fingerprint());
    let mut inserts = Vec::new();
    let mut remaining = &request.events[..];
    let mut first = true;
    while !remaining.is_empty() {
        let mut statement = Statement::new("");
        // ?1 stream, ?2 recorded_at, ?3 fingerprint: bound first so the
        // checks can refer to them.
        statement.args.push(Arg::Text(request.stream.as_str().to_owned()));
        statement.args.push(Arg::Int(recorded_at));
        statement.args.push(Arg::Text(fingerprint.clone()));
        let mut checks = Statement::new("");
        checks.args = statement.args.clone();
        if first {
            match request.expected {
                ExpectedRevision::Any => {}
                ExpectedRevision::NoStream => {
                    checks.push(" AND head.revision IS NULL");
                }
                ExpectedRevision::StreamExists => {
                    checks.push(" AND head.revision IS NOT NULL");
                }
                ExpectedRevision::Exact(revision) => {
                    let revision = i64::try_from(revision.value()).map_err(|_| {
                        StoreError::from(D1Error::Unexplained(format!(
                            "revision {revision} is beyond D1's integers"
                        )))
                    })?;
                    checks.push(" AND head.revision = ").arg(Arg::Int(revision));
                }
            }
            checks.push(" AND NOT EXISTS (SELECT 1 FROM events WHERE event_id IN (SELECT event_id FROM batch))");
            if let Some(condition) = &request.condition {
                let min = condition.after.map(to_sql).transpose()?.map(|after| after + 1);
                checks.push(" AND NOT EXISTS (SELECT 1 FROM events WHERE ");
                push_filter(&mut checks, &condition.query, Bounds { min, max: None })?;
                checks.push(")");
            }
        } else {
            checks.push(" AND changes() > 0");
        }
        let room = MAX_PARAMS.saturating_sub(checks.args.len()) / PER_EVENT;
        if room == 0 {
            return Err(UnsupportedAppendCondition {
                backend: BACKEND,
                reason: format!(
                    "D1 binds at most {MAX_PARAMS} parameters per statement and this condition's query takes {} of \
                     them (use fewer types and tags per condition)",
                    checks.args.len() - 3
                ),
            }
            .into());
        }
        let (chunk, rest) = remaining.split_at(room.min(remaining.len()));
        // The checks' arguments come first, so the batch rows follow them.
        statement.args = checks.args;
        statement.push("WITH batch(k, event_id, event_type, version, tags, metadata, data) AS (VALUES ");
        for (k, event) in chunk.iter().enumerate() {
            if k > 0 {
                statement.push(", ");
            }
            statement
                .push(&format!("({k}, "))
                .arg(Arg::Blob(event.id.as_bytes().to_vec()))
                .push(", ")
                .arg(Arg::Text(event.event_type.as_str().to_owned()))
                .push(", ")
                .arg(Arg::Int(i64::from(event.version)))
                .push(", ")
                .arg(Arg::Text(tags_column(&event.tags)))
                .push(", ")
                .arg(Arg::Text(metadata_column(&event.metadata)))
                .push(", ")
                .arg(Arg::Blob(event.data.clone()))
                .push(")");
        }
        statement.push(
            "), head(revision) AS (SELECT MAX(revision) FROM events WHERE stream = ?1) \
             INSERT INTO events (event_id, stream, revision, event_type, version, tags, metadata, data, recorded_at, \
             fingerprint) \
             SELECT batch.event_id, ?1, COALESCE(head.revision, -1) + 1 + batch.k, batch.event_type, batch.version, \
             batch.tags, batch.metadata, batch.data, ?2, ?3 FROM batch, head WHERE TRUE",
        );
        statement.push(&checks.sql);
        statement.push(" ORDER BY batch.k RETURNING position, revision");
        inserts.push(statement);
        remaining = rest;
        first = false;
    }
    let tags: Vec<(&str, &[u8])> = request
        .events
        .iter()
        .flat_map(|event| {
            event
                .tags
                .iter()
                .map(move |tag| (tag.as_str(), event.id.as_bytes().as_slice()))
        })
        .collect();
    let mut tag_statements = Vec::new();
    for chunk in tags.chunks((MAX_PARAMS - 1) / PER_TAG) {
        let mut statement = Statement::new("WITH t(tag, event_id) AS (VALUES ");
        statement.args.push(Arg::Text(fingerprint.clone()));
        for (i, (tag, id)) in chunk.iter().enumerate() {
            if i > 0 {
                statement.push(", ");
            }
            statement
                .push("(")
                .arg(Arg::Text((*tag).to_owned()))
                .push(", ")
                .arg(Arg::Blob(id.to_vec()))
                .push(")");
        }
        statement.push(
            ") INSERT OR IGNORE INTO event_tags (tag, position, event_type) \
             SELECT t.tag, e.position, e.event_type FROM t JOIN events e ON e.event_id = t.event_id \
             WHERE e.fingerprint = ?1",
        );
        tag_statements.push(statement);
    }
    Ok(Batch {
        inserts,
        tags: tag_statements,
    })
}

/// Appends `request` atomically (see the module docs).
pub(crate) async fn append(db: &D1Database, request: AppendRequest, recorded_at: i64) -> Result<Committed, StoreError> {
    request.validate()?;
    let batch = statements(&request, recorded_at)?;
    let inserts = batch.inserts.len();
    let prepared = batch
        .inserts
        .iter()
        .chain(&batch.tags)
        .map(|statement| statement.prepare(db, "append"))
        .collect::<Result<Vec<_>, _>>()?;
    let results = match db.batch(prepared).await {
        Ok(results) => results,
        // A duplicate id in a later chunk fails the unique index and rolls
        // the batch back; anything else that the reads cannot explain is
        // D1's failure.
        Err(error) => return explain(db, request, Some(D1Error::d1("append", error))).await,
    };
    let mut inserted = Vec::new();
    for result in results.iter().take(inserts) {
        let rows: Vec<Inserted> = result.results().map_err(|e| D1Error::d1("append", e))?;
        inserted.extend(rows);
    }
    if inserted.is_empty() {
        return explain(db, request, None).await;
    }
    if inserted.len() != request.events.len() {
        return Err(D1Error::Unexplained(format!(
            "D1 inserted {} of {} events of one batch",
            inserted.len(),
            request.events.len()
        ))
        .into());
    }
    inserted.sort_by_key(|row| row.position);
    let first = inserted[0].revision;
    let current = u64::try_from(first - 1).ok().map(StreamRevision::new);
    let positions = inserted
        .iter()
        .map(|row| u64::try_from(row.position).map(factos::Position::new))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| D1Error::Unexplained("D1 returned a negative position".into()))?;
    Ok(request.into_committed(positions, current, factos::Timestamp::from_unix_micros(recorded_at)))
}

/// Why D1 wrote nothing for `request`, checked in the contract's order:
/// a re-sent batch (the original records) or a taken id, the expected
/// revision, the condition.
async fn explain(db: &D1Database, request: AppendRequest, failure: Option<D1Error>) -> Result<Committed, StoreError> {
    let mut existing = Vec::new();
    for ids in request.events.chunks(MAX_PARAMS) {
        let mut statement = Statement::new(format!("SELECT {COLUMNS} FROM events WHERE event_id IN ("));
        for (i, event) in ids.iter().enumerate() {
            if i > 0 {
                statement.push(", ");
            }
            statement.arg(Arg::Blob(event.id.as_bytes().to_vec()));
        }
        statement.push(")");
        existing.extend(rows(db, &statement, "explain").await?);
    }
    if !existing.is_empty() {
        return request.replayed(existing);
    }
    let mut head = Statement::new("SELECT MAX(revision) AS value FROM events WHERE stream = ");
    head.arg(Arg::Text(request.stream.as_str().to_owned()));
    let head = single(db, &head, "explain").await?;
    let current = head.and_then(|r| u64::try_from(r).ok()).map(StreamRevision::new);
    request.check_revision(current)?;
    if let Some(condition) = &request.condition {
        let min = condition.after.map(to_sql).transpose()?.map(|after| after + 1);
        let mut first = Statement::new("SELECT MIN(position) AS value FROM events WHERE ");
        push_filter(&mut first, &condition.query, Bounds { min, max: None })?;
        let first = single(db, &first, "explain").await?;
        request.check_condition(first.and_then(|p| u64::try_from(p).ok()).map(factos::Position::new))?;
    }
    Err(failure
        .unwrap_or_else(|| D1Error::Unexplained("no re-send, taken id, revision or condition explains it".into()))
        .into())
}
