//! Reading events: rows to records, queries, streams and conflict checks.

use factos::{Direction, PageBudget, Position, Query, ReadOptions, StoredEvent, StreamId, StreamRevision};
use rusqlite::types::Value;
use rusqlite::{Connection, Row};

use crate::error::SqliteError;
use factos_sql::row::EventRow;
use factos_sql::{Bounds, Dialect, SqlValue};

/// The columns [`event_from_row`] expects, in order, selected from
/// `events`. An event's tags are its own followed by those added to
/// history (`factos_added_tags`, see [`factos::retag`]); in a store that
/// never had tags added, the uncorrelated check runs once per statement
/// and no row looks further.
pub(crate) const COLUMNS: &str = "position, event_id, stream, revision, event_type, version, \
     CASE WHEN (SELECT 1 FROM factos_added_tags LIMIT 1) IS NULL THEN tags \
     ELSE tags || coalesce((SELECT group_concat(char(31) || a.tag, '') FROM factos_added_tags AS a \
     WHERE a.position = events.position), '') END, metadata, data, recorded_at";

/// Turns a row of [`COLUMNS`] back into a record, refusing rows that no
/// append could have written.
pub(crate) fn event_from_row(row: &Row<'_>) -> Result<StoredEvent, SqliteError> {
    let position: i64 = row.get(0)?;
    let row = EventRow {
        position,
        event_id: row.get(1)?,
        stream: row.get(2)?,
        revision: row.get(3)?,
        event_type: row.get(4)?,
        version: row.get(5)?,
        tags: row.get(6)?,
        metadata: row.get(7)?,
        data: row.get(8)?,
        recorded_at: row.get(9)?,
    };
    row.into_record().map_err(|reason| SqliteError::CorruptRow {
        position,
        source: reason.into(),
    })
}

/// The SQLite filter for `query` within `bounds`, with its parameters.
fn matching(query: &Query, bounds: Bounds) -> Result<(String, Vec<Value>), SqliteError> {
    let mut params = Vec::new();
    let filter = factos_sql::matching(query, bounds, Dialect::Sqlite, &mut params)?;
    let params = params
        .into_iter()
        .map(|value| match value {
            SqlValue::Text(text) => Value::Text(text),
            SqlValue::Integer(integer) => Value::Integer(integer),
        })
        .collect();
    Ok((filter, params))
}

/// Runs `sql` and collects the rows as records.
fn collect(conn: &Connection, sql: &str, params: Vec<Value>) -> Result<Vec<StoredEvent>, SqliteError> {
    collect_page(conn, sql, params, ReadOptions::forwards().budget())
}

/// Runs `sql` and collects the rows as records until `budget` says the
/// page is full; the rest are never read.
fn collect_page(
    conn: &Connection,
    sql: &str,
    params: Vec<Value>,
    mut budget: PageBudget,
) -> Result<Vec<StoredEvent>, SqliteError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut events = Vec::new();
    while budget.has_room()
        && let Some(row) = rows.next()?
    {
        let event = event_from_row(row)?;
        budget.take(&event);
        events.push(event);
    }
    Ok(events)
}

/// A position as SQLite stores it.
pub(crate) fn to_sql(position: Position) -> Result<i64, SqliteError> {
    i64::try_from(position.value()).map_err(|_| SqliteError::OutOfRange {
        what: "position",
        value: position.value(),
    })
}

/// The events matching `query`, as `options` say.
pub(crate) fn read(conn: &Connection, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, SqliteError> {
    let (sql, params) = read_sql(query, options)?;
    collect_page(conn, &sql, params, options.budget())
}

/// The SQL and parameters of [`read`].
pub(crate) fn read_sql(query: &Query, options: ReadOptions) -> Result<(String, Vec<Value>), SqliteError> {
    let mut bounds = Bounds::default();
    let from = options.from.map(to_sql).transpose()?;
    let order = match options.direction {
        Direction::Forwards => {
            bounds.min = from;
            "ASC"
        }
        Direction::Backwards => {
            bounds.max = from;
            "DESC"
        }
    };
    let (filter, mut params) = matching(query, bounds)?;
    let limit = options.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    params.push(Value::Integer(limit));
    let limit = params.len();
    Ok((
        format!("SELECT {COLUMNS} FROM events WHERE {filter} ORDER BY position {order} LIMIT ?{limit}"),
        params,
    ))
}

/// The events matching `query` with positions in `bounds`, oldest first.
pub(crate) fn read_bounded(conn: &Connection, query: &Query, bounds: Bounds) -> Result<Vec<StoredEvent>, SqliteError> {
    let (filter, params) = matching(query, bounds)?;
    collect(
        conn,
        &format!("SELECT {COLUMNS} FROM events WHERE {filter} ORDER BY position ASC"),
        params,
    )
}

/// At most `limit` events of `stream` from revision `from` on.
pub(crate) fn read_stream(
    conn: &Connection,
    stream: &StreamId,
    from: StreamRevision,
    limit: usize,
) -> Result<Vec<StoredEvent>, SqliteError> {
    let from = i64::try_from(from.value()).map_err(|_| SqliteError::OutOfRange {
        what: "revision",
        value: from.value(),
    })?;
    collect(
        conn,
        &format!("SELECT {COLUMNS} FROM events WHERE stream = ?1 AND revision >= ?2 ORDER BY revision LIMIT ?3"),
        vec![
            Value::Text(stream.as_str().to_owned()),
            Value::Integer(from),
            Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)),
        ],
    )
}

/// The first event matching `query` after `after` (anywhere when `None`).
pub(crate) fn first_match_after(
    conn: &Connection,
    query: &Query,
    after: Option<Position>,
) -> Result<Option<Position>, SqliteError> {
    let bounds = Bounds {
        min: after.map(|p| to_sql(p).map(|p| p.saturating_add(1))).transpose()?,
        max: None,
    };
    let (filter, params) = matching(query, bounds)?;
    let sql = format!("SELECT position FROM events WHERE {filter} ORDER BY position LIMIT 1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    match rows.next()? {
        Some(row) => Ok(Some(Position::new(u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0)))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use factos::{EventType, QueryItem};

    fn plan(query: &Query, options: ReadOptions) -> Result<String, SqliteError> {
        let mut conn = Connection::open_in_memory()?;
        crate::schema::migrate(&mut conn)?;
        let (sql, params) = read_sql(query, options)?;
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let mut plan = Vec::new();
        while let Some(row) = rows.next()? {
            plan.push(row.get::<_, String>(3)?);
        }
        Ok(plan.join("\n"))
    }

    fn name<T: std::str::FromStr>(s: &str) -> T
    where
        T::Err: std::fmt::Debug,
    {
        s.parse().unwrap_or_else(|e| panic!("test name {s}: {e:?}"))
    }

    #[test]
    fn context_query_reads_tag_and_type_indexes_not_the_whole_table() -> Result<(), SqliteError> {
        let query = Query::new([
            QueryItem::types([name::<EventType>("TicketSold")]).with_tags([name("concert:1"), name("buyer:2")]),
            QueryItem::types([name::<EventType>("ConcertCancelled")]),
        ]);
        for options in [
            ReadOptions::forwards(),
            ReadOptions::backwards().from(Position::new(10)).limit(5),
        ] {
            let plan = plan(&query, options)?;
            assert!(
                plan.contains("SEARCH event_tags USING PRIMARY KEY (tag=?"),
                "plan:\n{plan}"
            );
            assert!(
                plan.contains("SEARCH events USING COVERING INDEX events_by_type (event_type=?"),
                "plan:\n{plan}"
            );
            assert!(
                plan.contains("SEARCH events USING INTEGER PRIMARY KEY (rowid=?)"),
                "plan:\n{plan}"
            );
            assert!(
                !plan
                    .lines()
                    .any(|l| l.trim_start_matches(['|', '-', '`', ' ']).starts_with("SCAN events")),
                "full scan in plan:\n{plan}"
            );
        }
        Ok(())
    }
}
