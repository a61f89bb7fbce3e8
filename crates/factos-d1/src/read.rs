//! Reading events: queries through `factos-sql` (the same SQL as the SQLite
//! backend), streams, and the reads that explain a failed append.

use factos::{Position, Query, StoreError, StoredEvent, StreamId, UnsupportedQuery};
use factos_sql::row::EventRow;
use factos_sql::{Bounds, Dialect, SqlValue};
use serde::Deserialize;
use worker::D1Database;

use crate::BACKEND;
use crate::error::D1Error;
use crate::statement::{Arg, MAX_PARAMS, Statement};

/// The columns [`D1Row`] expects.
pub(crate) const COLUMNS: &str =
    "position, event_id, stream, revision, event_type, version, tags, metadata, data, recorded_at, fingerprint";

/// A row of [`COLUMNS`] as D1 returns it.
#[derive(Debug, Deserialize)]
pub(crate) struct D1Row {
    position: i64,
    #[serde(with = "serde_bytes")]
    event_id: Vec<u8>,
    stream: String,
    revision: i64,
    event_type: String,
    version: i64,
    tags: String,
    metadata: String,
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
    recorded_at: i64,
    fingerprint: String,
}

impl D1Row {
    /// The record, and the fingerprint of the request that wrote it.
    pub(crate) fn into_record(self) -> Result<(StoredEvent, u64), D1Error> {
        let position = self.position;
        let corrupt = |reason: String| D1Error::CorruptRow { position, reason };
        let fingerprint = u64::from_str_radix(&self.fingerprint, 16).map_err(|e| corrupt(e.to_string()))?;
        let record = EventRow {
            position,
            event_id: self.event_id,
            stream: self.stream,
            revision: self.revision,
            event_type: self.event_type,
            version: self.version,
            tags: self.tags,
            metadata: self.metadata,
            data: self.data,
            recorded_at: self.recorded_at,
        }
        .into_record()
        .map_err(corrupt)?;
        Ok((record, fingerprint))
    }
}

/// Writes the `factos-sql` filter for `query` within `bounds` into
/// `statement`, binding its values after the statement's own.
pub(crate) fn push_filter(statement: &mut Statement, query: &Query, bounds: Bounds) -> Result<(), StoreError> {
    let existing = statement.args.len();
    let mut params = vec![SqlValue::Integer(0); existing];
    let filter = factos_sql::matching(query, bounds, Dialect::Sqlite, &mut params)?;
    statement
        .args
        .extend(params.into_iter().skip(existing).map(|value| match value {
            SqlValue::Text(text) => Arg::Text(text),
            SqlValue::Integer(integer) => Arg::Int(integer),
        }));
    statement.push(&filter);
    Ok(())
}

/// Refuses a statement D1 would reject for its number of parameters.
pub(crate) fn within_parameter_limit(statement: &Statement) -> Result<(), StoreError> {
    if statement.args.len() > MAX_PARAMS {
        return Err(UnsupportedQuery {
            backend: BACKEND,
            reason: format!(
                "D1 binds at most {MAX_PARAMS} parameters per statement; this query needs {} (fewer types and tags \
                 per query)",
                statement.args.len()
            ),
        }
        .into());
    }
    Ok(())
}

/// Runs `statement` and returns its rows as records with fingerprints.
pub(crate) async fn rows(
    db: &D1Database,
    statement: &Statement,
    during: &'static str,
) -> Result<Vec<(StoredEvent, u64)>, StoreError> {
    within_parameter_limit(statement)?;
    let result = statement
        .prepare(db, during)?
        .all()
        .await
        .map_err(|e| D1Error::d1(during, e))?;
    let rows: Vec<D1Row> = result.results().map_err(|e| D1Error::d1(during, e))?;
    rows.into_iter()
        .map(|row| row.into_record().map_err(StoreError::from))
        .collect()
}

/// A position as D1 stores it.
pub(crate) fn to_sql(position: Position) -> Result<i64, StoreError> {
    i64::try_from(position.value()).map_err(|_| {
        StoreError::backend(D1Error::CorruptRow {
            position: i64::MAX,
            reason: format!("position {position} is beyond what D1 stores"),
        })
    })
}

/// The events of `stream` from revision `from`, at most `limit`.
pub(crate) fn stream_statement(stream: &StreamId, from: i64, limit: i64) -> Statement {
    let mut statement = Statement::new(format!("SELECT {COLUMNS} FROM events WHERE stream = "));
    statement
        .arg(Arg::Text(stream.as_str().to_owned()))
        .push(" AND revision >= ")
        .arg(Arg::Int(from))
        .push(" ORDER BY revision LIMIT ")
        .arg(Arg::Int(limit));
    statement
}

#[derive(Debug, Deserialize)]
struct Single {
    value: Option<i64>,
}

/// The single integer (or NULL) `statement` selects as `value`.
pub(crate) async fn single(
    db: &D1Database,
    statement: &Statement,
    during: &'static str,
) -> Result<Option<i64>, StoreError> {
    within_parameter_limit(statement)?;
    let row: Option<Single> = statement
        .prepare(db, during)?
        .first(None)
        .await
        .map_err(|e| D1Error::d1(during, e))?;
    Ok(row.and_then(|r| r.value))
}
