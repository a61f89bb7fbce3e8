//! Reading events: rows to records, queries, streams and conflict checks.

use std::collections::BTreeMap;
use std::time::SystemTime;

use factos::{
    BoxError, Direction, EventId, EventType, Metadata, Position, Query, ReadOptions, Recorded, StoredEvent, StreamId,
    StreamRevision, Tag, Timestamp,
};
use factos_sql::{Bounds, Dialect, SqlValue};
use futures_util::TryStreamExt;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{GenericClient, Row};

use crate::error::PgError;

/// The columns [`event_from_row`] expects, in order, selected from
/// `events`. An event's tags are its own followed by those added to
/// history (`factos_added_tags`, see [`factos::retag`]); in a store that
/// never had tags added, the uncorrelated check runs once per statement
/// and no row looks further.
pub(crate) const COLUMNS: &str = "position, event_id, stream, revision, event_type, version, \
     CASE WHEN EXISTS (SELECT FROM factos_added_tags) \
     THEN tags || coalesce((SELECT array_agg(a.tag) FROM factos_added_tags AS a \
     WHERE a.position = events.position), '{}') ELSE tags END, metadata::text, data, recorded_at";

/// Turns a row of [`COLUMNS`] back into a record, refusing rows that no
/// append could have written.
pub(crate) fn event_from_row(row: &Row) -> Result<StoredEvent, PgError> {
    let position: i64 = row.try_get(0)?;
    let corrupt = |source: BoxError| PgError::CorruptRow { position, source };
    let unsigned =
        |value: i64, what: &str| u64::try_from(value).map_err(|_| corrupt(format!("negative {what}").into()));
    let tags: Vec<String> = row.try_get(6)?;
    let metadata: String = row.try_get(7)?;
    let metadata: BTreeMap<String, String> = serde_json::from_str(&metadata).map_err(|e| corrupt(e.into()))?;
    let recorded_at: SystemTime = row.try_get(9)?;
    let version: i64 = row.try_get(5)?;
    Ok(Recorded {
        position: Position::new(unsigned(position, "position")?),
        id: EventId::from_uuid(row.try_get(1)?),
        stream: StreamId::new(row.try_get::<_, String>(2)?).map_err(|e| corrupt(e.into()))?,
        revision: StreamRevision::new(unsigned(row.try_get(3)?, "revision")?),
        event_type: EventType::new(row.try_get::<_, String>(4)?).map_err(|e| corrupt(e.into()))?,
        version: u32::try_from(version).map_err(|e| corrupt(e.into()))?,
        tags: tags
            .into_iter()
            .map(Tag::new)
            .collect::<Result<_, _>>()
            .map_err(|e| corrupt(e.into()))?,
        metadata: Metadata::from_iter(metadata),
        recorded_at: Timestamp::from(recorded_at),
        event: row.try_get(8)?,
    })
}

/// A position or revision as PostgreSQL stores it.
pub(crate) fn to_sql(what: &'static str, value: u64) -> Result<i64, PgError> {
    i64::try_from(value).map_err(|_| PgError::OutOfRange { what, value })
}

/// Parameters of generated SQL, owned, with their types.
pub(crate) struct Params(pub(crate) Vec<SqlValue>);

impl Params {
    pub(crate) fn typed(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        self.0
            .iter()
            .map(|value| match value {
                SqlValue::Text(text) => (text as &(dyn ToSql + Sync), Type::TEXT),
                SqlValue::Integer(integer) => (integer as &(dyn ToSql + Sync), Type::INT8),
            })
            .collect()
    }
}

async fn collect<C: GenericClient + Sync>(client: &C, sql: &str, params: &Params) -> Result<Vec<StoredEvent>, PgError> {
    client
        .query_typed(sql, &params.typed())
        .await?
        .iter()
        .map(event_from_row)
        .collect()
}

/// The events matching `query`, as `options` say.
pub(crate) async fn read<C: GenericClient + Sync>(
    client: &C,
    query: &Query,
    options: ReadOptions,
) -> Result<Vec<StoredEvent>, PgError> {
    read_where(client, query, options, "").await
}

/// [`read`], among the events of transactions below the followers'
/// horizon in the statement's snapshot (see [`crate::follow`]).
pub(crate) async fn read_settled<C: GenericClient + Sync>(
    client: &C,
    query: &Query,
    options: ReadOptions,
) -> Result<Vec<StoredEvent>, PgError> {
    read_where(
        client,
        query,
        options,
        " AND tx < pg_snapshot_xmin(pg_current_snapshot())",
    )
    .await
}

async fn read_where<C: GenericClient + Sync>(
    client: &C,
    query: &Query,
    options: ReadOptions,
    also: &str,
) -> Result<Vec<StoredEvent>, PgError> {
    let from = options.from.map(|p| to_sql("position", p.value())).transpose()?;
    let (bounds, order) = match options.direction {
        Direction::Forwards => (Bounds { min: from, max: None }, "ASC"),
        Direction::Backwards => (Bounds { min: None, max: from }, "DESC"),
    };
    let mut params = Vec::new();
    let filter = factos_sql::matching(query, bounds, Dialect::Postgres, &mut params)?;
    let limit = match options.limit {
        Some(limit) => {
            params.push(SqlValue::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
            format!(" LIMIT ${}", params.len())
        }
        None => String::new(),
    };
    let sql = format!("SELECT {COLUMNS} FROM events WHERE {filter}{also} ORDER BY position {order}{limit}");
    // Rows are taken off the stream until the page is full (its limit or
    // byte budget); the rest are discarded as they arrive, never collected.
    let params = Params(params);
    let rows = client.query_typed_raw(&sql, params.typed()).await?;
    futures_util::pin_mut!(rows);
    let mut budget = options.budget();
    let mut page = Vec::new();
    while budget.has_room()
        && let Some(row) = rows.try_next().await?
    {
        let event = event_from_row(&row)?;
        budget.take(&event);
        page.push(event);
    }
    Ok(page)
}

/// The events of `stream` from revision `from` on.
pub(crate) async fn read_stream<C: GenericClient + Sync>(
    client: &C,
    stream: &StreamId,
    from: StreamRevision,
    limit: usize,
) -> Result<Vec<StoredEvent>, PgError> {
    let params = Params(vec![
        SqlValue::Text(stream.as_str().to_owned()),
        SqlValue::Integer(to_sql("revision", from.value())?),
        SqlValue::Integer(i64::try_from(limit).unwrap_or(i64::MAX)),
    ]);
    let sql = format!("SELECT {COLUMNS} FROM events WHERE stream = $1 AND revision >= $2 ORDER BY revision LIMIT $3");
    collect(client, &sql, &params).await
}
/// The first event matching `query` after `after` (anywhere when `None`).
pub(crate) async fn first_match_after<C: GenericClient + Sync>(
    client: &C,
    query: &Query,
    after: Option<Position>,
) -> Result<Option<Position>, PgError> {
    let min = after
        .map(|p| to_sql("position", p.value()).map(|p| p.saturating_add(1)))
        .transpose()?;
    let mut params = Vec::new();
    let filter = factos_sql::matching(query, Bounds { min, max: None }, Dialect::Postgres, &mut params)?;
    let sql = format!("SELECT position FROM events WHERE {filter} ORDER BY position LIMIT 1");
    let rows = client.query_typed(&sql, &Params(params).typed()).await?;
    match rows.first() {
        Some(row) => Ok(Some(Position::new(
            u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0),
        ))),
        None => Ok(None),
    }
}
