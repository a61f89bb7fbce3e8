//! Appending a batch inside an open transaction.

use std::collections::BTreeMap;
use std::time::SystemTime;

use factos::{AppendRequest, Committed, Position, StoreError, StreamRevision, Timestamp};
use tokio_postgres::GenericClient;
use tokio_postgres::types::Type;

use crate::error::PgError;
use crate::locks::{self, LockSet, Locking};
use crate::store::read::{event_from_row, first_match_after, to_sql};

/// Checks and writes `request` inside the caller's transaction.
///
/// `held` are the locks the caller's transaction already holds: for a
/// decision, the guards of its query, taken before its read. This function
/// takes the rest: the guards of the condition's query (exclusive), the keys
/// the events touch (shared) and the stream key (exclusive), all in one
/// sorted pass before it checks anything or takes any position, so no
/// decider holding a matching guard can miss these events.
///
/// The outer error is a database failure; the inner one a rejection by the
/// contract, after which the caller rolls back (nothing was inserted).
/// Checks run in the contract's order: validity, taken ids (an identical
/// re-send returns the original records), expected revision, condition.
pub(crate) async fn append<C: GenericClient + Sync>(
    client: &C,
    locking: Locking,
    held: &LockSet,
    request: AppendRequest,
) -> Result<Result<Committed, StoreError>, PgError> {
    let Locking { keys, mode, .. } = locking;
    if let Err(invalid) = request.validate() {
        return Ok(Err(invalid.into()));
    }
    let mut needed = LockSet::new();
    if let Some(condition) = &request.condition {
        keys.guard(&mut needed, &condition.query);
    }
    keys.write(&mut needed, &request.events, &request.stream);
    let missing = needed.without(held);
    // A first lock pass takes everything in one sorted pass and cannot
    // deadlock; a decision's second pass waits at most the decision lock
    // timeout (see `locks::set_lock_timeout`).
    let bounded =
        (!held.is_empty() && !missing.is_empty()).then(|| locks::timeout_setting(locking.decision_lock_timeout));
    // A bounded second pass is taken before the pipeline, its timeout set
    // first and its outcome known before any read is sent; so are row
    // locks, which take several statements.
    let pipelined = mode.is_one_statement() && bounded.is_none();
    let mut previous_timeout = None;
    if !pipelined {
        if let Some(setting) = &bounded {
            previous_timeout = Some(locks::set_lock_timeout(client, setting).await?);
        }
        locks::acquire(client, mode, &missing).await?;
    }

    // One round trip: the lock statement, then every read that must follow
    // it, pipelined in this order on the connection. The server runs them
    // one after another, so each read sees what was committed once the
    // locks were held.
    let ids: Vec<uuid::Uuid> = request.events.iter().map(|e| *e.id.as_uuid()).collect();
    let stream = request.stream.as_str();
    let count = i64::try_from(request.events.len()).unwrap_or(i64::MAX);
    let ((), taken, head, conflict, positions) = tokio::try_join!(
        biased;
        async {
            match pipelined && !missing.is_empty() {
                true => locks::acquire(client, mode, &missing).await,
                false => Ok(()),
            }
        },
        async { Ok::<_, PgError>(client.query_typed(include_str!("../sql/taken_ids.sql"), &[(&ids, Type::UUID_ARRAY)]).await?) },
        async { Ok::<_, PgError>(client.query_typed(include_str!("../sql/stream_head.sql"), &[(&stream, Type::TEXT)]).await?) },
        async {
            match &request.condition {
                Some(condition) => first_match_after(client, &condition.query, condition.after).await,
                None => Ok(None),
            }
        },
        async { Ok::<_, PgError>(client.query_typed(include_str!("../sql/next_positions.sql"), &[(&count, Type::INT8)]).await?) },
    )?;
    if locking.restore_timeout
        && let Some(previous) = previous_timeout
    {
        locks::set_lock_timeout(client, &previous).await?;
    }

    if !taken.is_empty() {
        let existing = taken
            .iter()
            .map(|row| {
                Ok((
                    event_from_row(row)?,
                    u64::from_ne_bytes(row.try_get::<_, i64>(10)?.to_ne_bytes()),
                ))
            })
            .collect::<Result<Vec<_>, PgError>>()?;
        return Ok(request.replayed(existing));
    }
    let head: Option<i64> = head.first().map(|row| row.try_get(0)).transpose()?.flatten();
    let current = head.map(|h| StreamRevision::new(u64::try_from(h).unwrap_or(0)));
    if let Err(mismatch) = request.check_revision(current) {
        return Ok(Err(mismatch.into()));
    }
    if let Err(failed) = request.check_condition(conflict) {
        return Ok(Err(failed.into()));
    }
    let positions: Vec<i64> = positions.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?;
    insert(client, request, current, positions).await.map(Ok)
}

/// Inserts the events at `positions` (taken after the locks) and their tag
/// rows, in one pipelined round trip.
async fn insert<C: GenericClient + Sync>(
    client: &C,
    request: AppendRequest,
    current: Option<StreamRevision>,
    positions: Vec<i64>,
) -> Result<Committed, PgError> {
    let first_revision = current.map_or(StreamRevision::FIRST, |r| r.next());
    let recorded_at = Timestamp::now();
    let fingerprint = i64::from_ne_bytes(request.fingerprint().to_ne_bytes());

    let mut ids = Vec::with_capacity(positions.len());
    let mut revisions = Vec::with_capacity(positions.len());
    let mut types = Vec::with_capacity(positions.len());
    let mut versions = Vec::with_capacity(positions.len());
    let mut tags = Vec::with_capacity(positions.len());
    let mut metadata = Vec::with_capacity(positions.len());
    let mut data = Vec::with_capacity(positions.len());
    let (mut tag_names, mut tag_positions, mut tag_types) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (event, position)) in request.events.iter().zip(&positions).enumerate() {
        ids.push(*event.id.as_uuid());
        revisions.push(to_sql("revision", first_revision.value() + i as u64)?);
        types.push(event.event_type.as_str());
        versions.push(i64::from(event.version));
        tags.push(event.tags.iter().map(|t| t.as_str()).collect::<Vec<_>>().join("\u{1f}"));
        let map: BTreeMap<&str, &str> = event.metadata.iter().collect();
        metadata.push(serde_json::to_string(&map).map_err(|e| PgError::CorruptRow {
            position: *position,
            source: e.into(),
        })?);
        data.push(event.data.as_slice());
        for tag in &event.tags {
            tag_names.push(tag.as_str());
            tag_positions.push(*position);
            tag_types.push(event.event_type.as_str());
        }
    }
    let stream = request.stream.as_str();
    let at = SystemTime::from(recorded_at);
    let event_params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 11] = [
        (&positions, Type::INT8_ARRAY),
        (&ids, Type::UUID_ARRAY),
        (&stream, Type::TEXT),
        (&revisions, Type::INT8_ARRAY),
        (&types, Type::TEXT_ARRAY),
        (&versions, Type::INT8_ARRAY),
        (&tags, Type::TEXT_ARRAY),
        (&metadata, Type::TEXT_ARRAY),
        (&data, Type::BYTEA_ARRAY),
        (&at, Type::TIMESTAMPTZ),
        (&fingerprint, Type::INT8),
    ];
    let events = client.execute_typed(include_str!("../sql/insert_events.sql"), &event_params);
    let tag_rows = async {
        match tag_names.is_empty() {
            true => Ok(0),
            false => {
                client
                    .execute_typed(
                        include_str!("../sql/insert_tags.sql"),
                        &[
                            (&tag_names, Type::TEXT_ARRAY),
                            (&tag_positions, Type::INT8_ARRAY),
                            (&tag_types, Type::TEXT_ARRAY),
                        ],
                    )
                    .await
            }
        }
    };
    tokio::try_join!(biased; events, tag_rows)?;
    let positions = positions
        .into_iter()
        .map(|p| Position::new(u64::try_from(p).unwrap_or(0)));
    Ok(request.into_committed(positions, current, recorded_at))
}
