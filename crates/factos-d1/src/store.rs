//! [`D1Store`]: the store contract on a D1 binding.

use std::fmt;
use std::time::Duration;

use factos::{
    AppendRequest, CommitSignal, Committed, DecisionScope, Direction, LocalEventStore, Query, QueryLimits, ReadOptions,
    StoreError, StoredEvent, StreamId, StreamRevision,
};
use factos_sql::Bounds;
use worker::D1Database;

use crate::error::D1Error;
use crate::read::{COLUMNS, push_filter, rows, stream_statement, to_sql};
use crate::statement::{Arg, Statement};
use crate::{append, schema};

/// How many rows one read asks D1 for: D1 answers each query in one
/// response of bounded size, so long reads are paged.
const PAGE: i64 = 500;

/// Rows per D1 statement when a read has a byte budget.
const BUDGET_PAGE: i64 = 16;

/// A factos event store on a D1 database, inside a Cloudflare worker.
///
/// Its futures are not `Send` (JavaScript values live in them), so it
/// implements [`LocalEventStore`]; the dispatch flows accept that.
pub struct D1Store {
    db: D1Database,
    commits: CommitSignal,
    poll_interval: Duration,
    query_limits: QueryLimits,
}

/// How often a waiting follower reads again.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

impl fmt::Debug for D1Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("D1Store").finish_non_exhaustive()
    }
}

impl D1Store {
    /// A store on the D1 binding the worker got from its environment
    /// (`env.d1("DB")?`).
    pub fn new(db: D1Database) -> Self {
        Self {
            db,
            commits: CommitSignal::new(),
            poll_interval: POLL_INTERVAL,
            query_limits: QueryLimits::DEFAULT,
        }
    }

    /// Refuses queries over `limits` ([`QueryLimits::default`] unless set)
    /// with [`StoreError::QueryTooLarge`] before anything is sent. Every
    /// query within them fits D1's statement limits (see
    /// [`factos_sql::matching`]).
    pub fn with_query_limits(mut self, limits: QueryLimits) -> Self {
        self.query_limits = limits;
        self
    }

    pub(crate) fn query_limits(&self) -> &QueryLimits {
        &self.query_limits
    }

    /// How often a waiting follower reads again (100 ms by default): a
    /// worker is not told of other requests' commits.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    pub(crate) fn db(&self) -> &D1Database {
        &self.db
    }

    pub(crate) fn commits(&self) -> &CommitSignal {
        &self.commits
    }

    pub(crate) fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// Creates or upgrades the schema, idempotently; returns the schema
    /// version found before (0 for an empty database).
    ///
    /// # Errors
    ///
    /// [`D1Error::UnknownSchema`] for a newer schema, [`D1Error::D1`] when D1
    /// fails.
    pub async fn migrate(&self) -> Result<i64, D1Error> {
        schema::migrate(&self.db).await
    }

    /// The time D1 records with an append: the worker's clock.
    pub(crate) fn now() -> i64 {
        // Milliseconds as a double; microseconds fit in an i64.
        (js_sys::Date::now() * 1000.0) as i64
    }

    async fn read_matching(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        let mut found = Vec::new();
        let mut limit = options.limit.map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let mut from = options.from.map(to_sql).transpose()?;
        let backwards = options.direction == Direction::Backwards;
        let mut budget = options.budget();
        // Under a byte budget, small pages: a page's rows are all in memory.
        let page_size = if options.max_bytes.is_some() { BUDGET_PAGE } else { PAGE };
        while limit > 0 && budget.has_room() {
            let page = limit.min(page_size);
            let bounds = match backwards {
                false => Bounds { min: from, max: None },
                true => Bounds { min: None, max: from },
            };
            let mut statement = Statement::new(format!("SELECT {COLUMNS} FROM events WHERE "));
            push_filter(&mut statement, query, bounds)?;
            statement
                .push(if backwards {
                    " ORDER BY position DESC LIMIT "
                } else {
                    " ORDER BY position LIMIT "
                })
                .arg(Arg::Int(page));
            let rows = rows(&self.db, &statement, "read").await?;
            let complete = (rows.len() as i64) < page;
            if let Some((last, _)) = rows.last() {
                let last = to_sql(last.position)?;
                from = Some(if backwards { last - 1 } else { last + 1 });
            }
            limit -= rows.len() as i64;
            for (record, _) in rows {
                let room = budget.take(&record);
                found.push(record);
                if !room {
                    return Ok(found);
                }
            }
            if complete {
                break;
            }
        }
        Ok(found)
    }

    /// At most `limit` events of `stream` from `from` on, read `PAGE` at a
    /// time.
    async fn read_stream_pages(
        &self,
        stream: &StreamId,
        from: StreamRevision,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut found = Vec::new();
        let mut from = i64::try_from(from.value()).unwrap_or(i64::MAX);
        loop {
            let wanted = i64::try_from(limit - found.len()).unwrap_or(i64::MAX).min(PAGE);
            let rows = rows(&self.db, &stream_statement(stream, from, wanted), "read_stream").await?;
            let complete = (rows.len() as i64) < wanted;
            from += rows.len() as i64;
            found.extend(rows.into_iter().map(|(record, _)| record));
            if complete || found.len() >= limit {
                return Ok(found);
            }
        }
    }
}

impl LocalEventStore for D1Store {
    /// Nothing: a decision is optimistic on D1 (no interactive
    /// transactions); its append's condition or expected revision catches
    /// concurrent writers and the dispatch retries.
    type Transaction = ();

    async fn read(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        self.query_limits.check(query)?;
        self.read_matching(query, options).await
    }

    async fn read_stream(&self, stream: &StreamId, from: StreamRevision) -> Result<Vec<StoredEvent>, StoreError> {
        self.read_stream_pages(stream, from, usize::MAX).await
    }

    async fn read_stream_page(
        &self,
        stream: &StreamId,
        from: StreamRevision,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read_stream_pages(stream, from, limit).await
    }

    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        self.query_limits.check_append(&request)?;
        let committed = append::append(&self.db, request, Self::now()).await?;
        self.commits.bump();
        Ok(committed)
    }

    async fn begin_decision(&self, scope: &DecisionScope) -> Result<((), Vec<StoredEvent>), StoreError> {
        self.query_limits.check_scope(scope)?;
        let events = match scope {
            DecisionScope::Query(query) => self.read_matching(query, ReadOptions::forwards()).await?,
            DecisionScope::Stream(stream) => {
                self.read_stream_pages(stream, StreamRevision::FIRST, usize::MAX)
                    .await?
            }
        };
        Ok(((), events))
    }

    async fn abandon_decision(&self, (): ()) {}

    async fn commit_decision(&self, (): (), request: AppendRequest) -> Result<Committed, StoreError> {
        let committed = append::append(&self.db, request, Self::now()).await?;
        self.commits.bump();
        Ok(committed)
    }
}

impl From<worker::Error> for D1Error {
    fn from(error: worker::Error) -> Self {
        D1Error::d1("a D1 call", error)
    }
}
