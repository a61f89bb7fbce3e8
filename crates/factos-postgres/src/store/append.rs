//! Appending a batch: one call of the schema's `factos_append` function,
//! which takes the locks, checks and inserts on the server.

use std::collections::BTreeMap;
use std::time::SystemTime;

use factos::{AppendRequest, Committed, ExpectedRevision, Position, StoreError, StreamRevision, Timestamp};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{GenericClient, Row};

use crate::error::PgError;
use crate::locks::{self, Lock, LockMode, LockSet, Locking};
use crate::store::read::{COLUMNS, event_from_row, first_match_after, to_sql};

/// The parameter types of [`call_sql`], in order.
pub(crate) const CALL_TYPES: [Type; 17] = [
    Type::INT8_ARRAY,
    Type::BOOL_ARRAY,
    Type::INT2,
    Type::UUID_ARRAY,
    Type::TEXT,
    Type::INT2,
    Type::INT8,
    Type::JSONB,
    Type::INT8,
    Type::INT8,
    Type::TEXT_ARRAY,
    Type::INT8_ARRAY,
    Type::TEXT_ARRAY,
    Type::TEXT_ARRAY,
    Type::BYTEA_ARRAY,
    Type::TIMESTAMPTZ,
    Type::INT8,
];

/// The statement that calls the append function: qualified with the
/// store's schema when it has one of its own, so that it can be prepared
/// outside the transaction that sets the `search_path`.
pub(crate) fn call_sql(schema: Option<&str>) -> String {
    call_function_sql(schema, "factos_append")
}

/// The statement that calls the append function alone, in autocommit
/// (schema version 4): it carries the store's schema and refuses to run
/// below READ COMMITTED (SQLSTATE `FX001`).
pub(crate) fn call_alone_sql(schema: Option<&str>) -> String {
    call_function_sql(schema, "factos_append_alone")
}

fn call_function_sql(schema: Option<&str>, function: &str) -> String {
    let qualifier = schema.map(|s| format!("{s}.")).unwrap_or_default();
    format!(
        "SELECT appended, ids_taken, head, conflict, positions FROM {qualifier}{function}(\
         $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    )
}

/// One append's arguments to the function, borrowed from its request.
pub(crate) struct Call<'r> {
    request: &'r AppendRequest,
    lock_keys: Vec<i64>,
    lock_exclusive: Vec<bool>,
    lock_mode: i16,
    ids: Vec<uuid::Uuid>,
    stream: &'r str,
    expect_kind: i16,
    expect_head: i64,
    condition: Option<serde_json::Value>,
    after: i64,
    checked_conflict: Option<i64>,
    types: Vec<&'r str>,
    versions: Vec<i64>,
    tags: Vec<String>,
    metadata: Vec<String>,
    data: Vec<&'r [u8]>,
    at: SystemTime,
    fingerprint: i64,
    /// The `lock_timeout` to set first: a decision's second lock pass.
    pub(crate) lock_timeout: Option<String>,
    recorded_at: Timestamp,
}

impl<'r> Call<'r> {
    /// The call that appends `request`, whose transaction holds `held`
    /// already (for a decision, the guards of its query, taken before its
    /// read).
    ///
    /// The function takes the rest, in one sorted pass before it checks
    /// anything or takes a position: the guards of the condition's query
    /// (exclusive), the keys the events touch (shared) and the stream key
    /// (exclusive); so no decider holding a matching guard can miss these
    /// events. A decision's second pass waits at most the decision lock
    /// timeout (see [`Locking`]); a first pass cannot close a wait cycle.
    pub(crate) fn new(locking: Locking, held: &LockSet, request: &'r AppendRequest) -> Result<Self, PgError> {
        let Locking { keys, mode, .. } = locking;
        let mut needed = LockSet::new();
        if let Some(condition) = &request.condition {
            keys.guard(&mut needed, &condition.query);
        }
        keys.write(&mut needed, &request.events, &request.stream);
        let missing = needed.without(held);
        let lock_timeout = (!held.is_empty() && !missing.is_empty() && mode != LockMode::TableLock)
            .then(|| locks::timeout_setting(locking.decision_lock_timeout));
        let plan = locks::plan(mode, &missing);
        let (expect_kind, expect_head) = match request.expected {
            ExpectedRevision::Any => (0, 0),
            ExpectedRevision::NoStream => (1, 0),
            ExpectedRevision::StreamExists => (2, 0),
            ExpectedRevision::Exact(revision) => (3, to_sql("revision", revision.value())?),
        };
        let (condition, after) = match &request.condition {
            Some(condition) => (
                Some(condition_json(&condition.query)),
                condition
                    .after
                    .map(|p| to_sql("position", p.value()))
                    .transpose()?
                    .unwrap_or(0),
            ),
            None => (None, 0),
        };
        let recorded_at = Timestamp::now();
        let mut metadata = Vec::with_capacity(request.events.len());
        for event in &request.events {
            let map: BTreeMap<&str, &str> = event.metadata.iter().collect();
            metadata.push(serde_json::to_string(&map).map_err(PgError::EncodeMetadata)?);
        }
        Ok(Self {
            request,
            lock_keys: plan.iter().map(|(k, _)| *k).collect(),
            lock_exclusive: plan.iter().map(|(_, x)| *x).collect(),
            lock_mode: match mode {
                LockMode::Advisory => 0,
                LockMode::RowLocks => 1,
                LockMode::TableLock => 2,
            },
            ids: request.events.iter().map(|e| *e.id.as_uuid()).collect(),
            stream: request.stream.as_str(),
            expect_kind,
            expect_head,
            condition,
            after,
            checked_conflict: None,
            types: request.events.iter().map(|e| e.event_type.as_str()).collect(),
            versions: request.events.iter().map(|e| i64::from(e.version)).collect(),
            tags: request
                .events
                .iter()
                .map(|e| e.tags.iter().map(|t| t.as_str()).collect::<Vec<_>>().join("\u{1f}"))
                .collect(),
            metadata,
            data: request.events.iter().map(|e| e.data.as_slice()).collect(),
            at: SystemTime::from(recorded_at),
            fingerprint: i64::from_ne_bytes(request.fingerprint().to_ne_bytes()),
            lock_timeout,
            recorded_at,
        })
    }

    /// The parameters of [`call_sql`], in [`CALL_TYPES`] order.
    pub(crate) fn params(&self) -> [&(dyn ToSql + Sync); 17] {
        [
            &self.lock_keys,
            &self.lock_exclusive,
            &self.lock_mode,
            &self.ids,
            &self.stream,
            &self.expect_kind,
            &self.expect_head,
            &self.condition,
            &self.after,
            &self.checked_conflict,
            &self.types,
            &self.versions,
            &self.tags,
            &self.metadata,
            &self.data,
            &self.at,
            &self.fingerprint,
        ]
    }

    /// Whether the condition carries SQL predicates, which the function
    /// cannot run: the client then takes the locks, checks the condition
    /// and hands what it found over ([`Call::checked_by_client`]).
    pub(crate) fn needs_client_check(&self) -> bool {
        self.request
            .condition
            .as_ref()
            .is_some_and(|c| c.query.has_predicates())
    }

    /// Takes the locks and checks the condition on `client`, in the
    /// caller's transaction, for a call that
    /// [needs it](Call::needs_client_check); the function then takes no
    /// locks and checks no condition of its own.
    async fn checked_by_client<C: GenericClient + Sync>(&mut self, client: &C, mode: LockMode) -> Result<(), PgError> {
        let Some(condition) = &self.request.condition else {
            return Ok(());
        };
        let plan: Vec<Lock> = self
            .lock_keys
            .iter()
            .copied()
            .zip(self.lock_exclusive.iter().copied())
            .collect();
        locks::acquire(client, mode, &plan, None).await?;
        let conflict = first_match_after(client, &condition.query, condition.after).await?;
        self.checked_conflict = conflict.map(|p| to_sql("position", p.value())).transpose()?;
        self.condition = None;
        self.lock_keys.clear();
        self.lock_exclusive.clear();
        Ok(())
    }

    /// [`Call::params`] with their types, for an unnamed statement.
    pub(crate) fn typed_params(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        self.params().into_iter().zip(CALL_TYPES).collect()
    }

    /// What the function's answer means for the contract.
    pub(crate) fn answer(&self, row: &Row) -> Result<Answer, PgError> {
        let appended: bool = row.try_get(0)?;
        let taken: bool = row.try_get(1)?;
        let head: Option<i64> = row.try_get(2)?;
        let conflict: Option<i64> = row.try_get(3)?;
        let current = head.map(|h| StreamRevision::new(u64::try_from(h).unwrap_or(0)));
        let position = |p: i64| Position::new(u64::try_from(p).unwrap_or(0));
        if appended {
            let positions: Vec<i64> = row.try_get(4)?;
            let committed =
                self.request
                    .clone()
                    .into_committed(positions.into_iter().map(position), current, self.recorded_at);
            return Ok(Answer::Done(Ok(committed)));
        }
        // Refused: the contract's order decides which reason is reported.
        if taken {
            return Ok(Answer::IdsTaken);
        }
        if let Err(mismatch) = self.request.check_revision(current) {
            return Ok(Answer::Done(Err(mismatch.into())));
        }
        match self.request.check_condition(conflict.map(position)) {
            Err(failed) => Ok(Answer::Done(Err(failed.into()))),
            Ok(()) => Err(PgError::UnexpectedAnswer("a refusal without a reason")),
        }
    }
}

/// What an append came to.
pub(crate) enum Answer {
    /// Written, or refused by the contract.
    Done(Result<Committed, StoreError>),
    /// Some of the request's ids were taken; [`replay`] tells a re-send of
    /// this very batch from a duplicate.
    IdsTaken,
}

/// A query as the append function reads it: one object per item (an
/// empty query is one item with neither types nor tags, which matches
/// every event).
fn condition_json(query: &factos::Query) -> serde_json::Value {
    let items: Vec<serde_json::Value> = match query.matches_all() {
        true => vec![serde_json::json!({ "types": [], "tags": [] })],
        false => query
            .items()
            .iter()
            .map(|item| {
                serde_json::json!({
                    "types": item.event_types().iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                    "tags": item.required_tags().iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                })
            })
            .collect(),
    };
    serde_json::Value::Array(items)
}

/// The outcome of an append whose ids were taken: the original records
/// for an identical re-send, else a duplicate-id error.
pub(crate) async fn replay<C: GenericClient + Sync>(
    client: &C,
    request: &AppendRequest,
) -> Result<Result<Committed, StoreError>, PgError> {
    let ids: Vec<uuid::Uuid> = request.events.iter().map(|e| *e.id.as_uuid()).collect();
    let existing = client
        .query_typed(
            &format!("SELECT {COLUMNS}, fingerprint FROM events WHERE event_id = ANY($1::uuid[])"),
            &[(&ids, Type::UUID_ARRAY)],
        )
        .await?
        .iter()
        .map(|row| {
            Ok((
                event_from_row(row)?,
                u64::from_ne_bytes(row.try_get::<_, i64>(10)?.to_ne_bytes()),
            ))
        })
        .collect::<Result<Vec<_>, PgError>>()?;
    Ok(request.replayed(existing))
}

/// Checks and writes `request` inside the caller's transaction (which
/// holds `held`), with unnamed statements: for transactions the
/// application owns. The store's own calls pipeline the same call with
/// their transaction's begin and commit (see `PgStore`).
///
/// The outer error is a database failure; the inner one a rejection by the
/// contract (nothing was inserted). Checks run in the contract's order:
/// validity, taken ids (an identical re-send returns the original
/// records), expected revision, condition.
pub(crate) async fn append<C: GenericClient + Sync>(
    client: &C,
    locking: Locking,
    held: &LockSet,
    request: AppendRequest,
) -> Result<Result<Committed, StoreError>, PgError> {
    if let Err(invalid) = request.validate() {
        return Ok(Err(invalid.into()));
    }
    let mut call = Call::new(locking, held, &request)?;
    let previous = match &call.lock_timeout {
        Some(setting) => Some(locks::set_lock_timeout(client, setting, None).await?),
        None => None,
    };
    let row = async {
        if call.needs_client_check() {
            call.checked_by_client(client, locking.mode).await?;
        }
        Ok::<_, PgError>(client.query_typed(&call_sql(None), &call.typed_params()).await?)
    }
    .await;
    if let Some(previous) = previous
        && locking.restore_timeout
    {
        locks::set_lock_timeout(client, &previous, None).await?;
    }
    let row = row?.into_iter().next().ok_or(PgError::UnexpectedAnswer("no row"))?;
    match call.answer(&row)? {
        Answer::Done(outcome) => Ok(outcome),
        Answer::IdsTaken => replay(client, &request).await,
    }
}
