//! [`SqliteStore`]: the store contract on SQLite.

mod admin;
pub(crate) mod append;
mod forget;
pub(crate) mod read;
mod retag;
mod snapshot;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use factos::retag::TagsPublished;
use factos::snapshot::SnapshotOffers;
use factos::{
    AppendRequest, CommitSignal, Committed, DecisionScope, EventStore, Query, ReadOptions, StoreError, StoredEvent,
    StreamId, StreamRevision,
};
use rusqlite::Connection;

use crate::error::SqliteError;
use crate::pool::{Pool, SqliteOptions, Target};
use crate::schema;
use crate::turns::{Turn, Turns};
use crate::writer::Writer;

/// An event store in one SQLite database file (or in memory).
///
/// Clones share the connections. Reads run on tokio's blocking threads, so
/// the async API never blocks the runtime; such a store therefore needs a
/// tokio runtime. Synchronous applications use [`SqliteStore::inline`]
/// instead, which reads on the calling thread.
///
/// Every write runs on the store's writer thread, which commits every
/// write waiting in its queue in one transaction (group commit; see the
/// crate docs): concurrent writers in one process share each commit's
/// flush instead of queueing for one each. Writers in other processes are
/// waited for up to [`SqliteOptions::busy_timeout`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
    inline: bool,
}

#[derive(Debug)]
struct Shared {
    pool: Arc<Pool>,
    writer: Writer,
    migrated: AtomicBool,
    /// Commits made through this store, for followers.
    commits: CommitSignal,
    /// A connection of its own and the `data_version` it last saw, for
    /// noticing other processes' commits.
    watch: Mutex<Option<(Connection, i64)>>,
    /// The scopes whose last decision lost a race, and their turns.
    turns: Arc<Turns>,
    /// The snapshots being saved in the background.
    offers: SnapshotOffers,
}

/// A decision in progress (see the crate docs, "How it keeps decisions
/// valid"): its context was read from a snapshot on a reader connection,
/// and its append's condition (or expected revision) catches any write
/// since, in the writer's group transaction. On a scope that recently lost
/// a race it also holds the scope's turn, so this process's other
/// decisions on the scope wait for it. It remembers the tag generation it
/// read under: its append fails if tags were added to history since (see
/// [`factos::retag`]). Dropping it abandons the decision: nothing is
/// written.
#[derive(Debug)]
pub struct SqliteDecision {
    scope: DecisionScope,
    turn: Option<Turn>,
    /// For a query's context: the tag generation it was read under.
    tag_generation: Option<i64>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` with default
    /// options.
    ///
    /// # Errors
    ///
    /// [`SqliteError::Sqlite`] when the file cannot be opened;
    /// [`SqliteError::SchemaTooNew`] when a newer factos-sqlite wrote it.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, SqliteError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens the database file at `path` with `options`.
    ///
    /// # Errors
    ///
    /// As [`SqliteStore::open`].
    pub fn open_with(path: impl Into<PathBuf>, options: SqliteOptions) -> Result<Self, SqliteError> {
        Self::from_target(Target::File(path.into()), options)
    }

    /// A private in-memory database, gone when the last clone is dropped.
    ///
    /// # Errors
    ///
    /// [`SqliteError::Sqlite`] when SQLite cannot allocate it.
    pub fn open_in_memory() -> Result<Self, SqliteError> {
        Self::from_target(Target::Memory, SqliteOptions::default())
    }

    fn from_target(target: Target, options: SqliteOptions) -> Result<Self, SqliteError> {
        let (pool, first) = Pool::open(target, options)?;
        let version = schema::version(&first)?;
        schema::check_not_newer(version)?;
        pool.give_back(first);
        let writer = Writer::start(Arc::clone(&pool))?;
        Ok(Self {
            shared: Arc::new(Shared {
                pool,
                writer,
                migrated: AtomicBool::new(version == schema::SCHEMA_VERSION),
                commits: CommitSignal::new(),
                watch: Mutex::new(None),
                turns: Arc::default(),
                offers: SnapshotOffers::new(),
            }),
            inline: false,
        })
    }

    /// The same store (sharing connections and the writer thread), reading
    /// on the calling thread instead of a tokio blocking thread: for
    /// synchronous applications, which drive its futures with any executor,
    /// and for code already on a blocking thread. Its writes go to the
    /// writer thread as always, and its futures wait for them without a
    /// runtime. Its futures need no tokio runtime; they block while the
    /// database reads, so do not poll them on an async runtime's worker
    /// threads.
    ///
    /// ```
    /// use factos::{AppendRequest, EventId, EventStore, EventType, NewEvent, Query, ReadOptions, StreamId};
    /// use futures::executor::block_on;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = factos_sqlite::SqliteStore::open(dir.path().join("events.db"))?.inline();
    /// block_on(store.migrate())?;
    /// let event = NewEvent::new(EventId::random(), EventType::new("Noted")?, b"sync".to_vec());
    /// block_on(store.append(AppendRequest::new(StreamId::new("notes")?, vec![event])))?;
    /// assert_eq!(block_on(store.read(&Query::all(), ReadOptions::forwards()))?.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn inline(&self) -> SqliteStore {
        SqliteStore {
            shared: Arc::clone(&self.shared),
            inline: true,
        }
    }

    /// The database file; `None` for an in-memory database.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.shared.pool.path()
    }

    /// Creates or upgrades the schema to [`schema::SCHEMA_VERSION`]
    /// (idempotent; safe to run from several processes at once).
    ///
    /// # Errors
    ///
    /// [`SqliteError::SchemaTooNew`] when a newer factos-sqlite wrote the
    /// database; [`SqliteError::Sqlite`] when the migration fails (then it
    /// is rolled back entirely).
    pub async fn migrate(&self) -> Result<(), SqliteError> {
        self.shared.writer.alone(schema::migrate).await?;
        self.shared.migrated.store(true, Ordering::Release);
        Ok(())
    }

    fn check_migrated(&self) -> Result<(), SqliteError> {
        match self.shared.migrated.load(Ordering::Acquire) {
            true => Ok(()),
            false => Err(SqliteError::NotMigrated),
        }
    }

    pub(crate) fn offers(&self) -> &SnapshotOffers {
        &self.shared.offers
    }

    /// Queues `work` for the writer's next group without waiting: `done`
    /// gets its outcome (see [`Writer::group_then`]).
    pub(crate) fn group_then<T, F, D>(&self, work: F, done: D) -> Result<(), SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<(bool, T), SqliteError> + Send + 'static,
        D: FnOnce(Result<T, SqliteError>) + Send + 'static,
    {
        self.check_migrated()?;
        self.shared.writer.group_then(work, done)
    }

    pub(crate) fn commits(&self) -> &CommitSignal {
        &self.shared.commits
    }

    pub(crate) fn is_inline(&self) -> bool {
        self.inline
    }

    pub(crate) fn query_limits(&self) -> &factos::QueryLimits {
        &self.shared.pool.options().query_limits
    }

    pub(crate) fn poll_interval(&self) -> std::time::Duration {
        self.shared.pool.options().poll_interval
    }

    /// Whether another connection (another process) committed since the
    /// last call; `true` on the first call, which has nothing to compare.
    pub(crate) async fn other_connection_committed(&self) -> bool {
        let shared = Arc::clone(&self.shared);
        let check = move || -> Result<bool, SqliteError> {
            let mut watch = shared.watch.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if watch.is_none() {
                *watch = shared.pool.dedicated()?.map(|conn| (conn, -1));
            }
            let Some((conn, last)) = watch.as_mut() else {
                return Ok(false);
            };
            let now: i64 = conn.pragma_query_value(None, "data_version", |row| row.get(0))?;
            let changed = now != *last;
            *last = now;
            Ok(changed)
        };
        match tokio::task::spawn_blocking(check).await {
            Ok(Ok(changed)) => changed,
            // A failed check wakes the follower, which reads and reports.
            _ => true,
        }
    }

    /// Runs `work` on the writer thread between two group transactions,
    /// for work that writes in a transaction of its own.
    pub(crate) async fn run_writing<T, F>(&self, work: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, SqliteError> + Send + 'static,
    {
        self.check_migrated()?;
        self.shared.writer.alone(work).await
    }

    /// Runs `work` in the writer's next group transaction (see
    /// [`Writer::group`]).
    pub(crate) async fn run_in_group<T, F>(&self, work: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<(bool, T), SqliteError> + Send + 'static,
    {
        self.check_migrated()?;
        self.shared.writer.group(work).await
    }

    /// Runs `work` on a pooled connection on a blocking thread, migrated
    /// or not (for asking about the schema).
    pub(crate) async fn run_unchecked<T, F>(&self, work: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, SqliteError> + Send + 'static,
    {
        let conn = self.shared.pool.get().await;
        let (_, value) = conn.run(self.inline, work).await?;
        Ok(value)
    }

    /// Runs `work` on a pooled connection on a blocking thread.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, SqliteError> + Send + 'static,
    {
        self.check_migrated()?;
        self.run_unchecked(work).await
    }
}

/// A decision's context, and for a query's context the tag generation read
/// before it: a publish after that read changes the generation, so the
/// decision cannot commit on a context read without the tags (the reverse
/// order could miss one). A stream's context does not depend on tags.
fn read_scope(conn: &Connection, scope: &DecisionScope) -> Result<(Option<i64>, Vec<StoredEvent>), SqliteError> {
    Ok(match scope {
        DecisionScope::Query(query) => {
            let generation = retag::generation(conn)?;
            (Some(generation), read::read(conn, query, ReadOptions::forwards())?)
        }
        DecisionScope::Stream(stream) => (
            None,
            read::read_stream(conn, stream, StreamRevision::FIRST, usize::MAX)?,
        ),
    })
}

impl EventStore for SqliteStore {
    type Transaction = SqliteDecision;

    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "sqlite", operation = "read", query_items = query.items().len(), rows, code, error))]
    async fn read(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        self.query_limits().check(query)?;
        let query = query.clone();
        let result = self.run(move |conn| read::read(conn, &query, options)).await;
        traced(result.map_err(StoreError::from), Vec::len)
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "sqlite", operation = "read_stream", %stream, rows, code, error))]
    async fn read_stream(&self, stream: &StreamId, from: StreamRevision) -> Result<Vec<StoredEvent>, StoreError> {
        traced(self.stream_events(stream, from, usize::MAX).await, Vec::len)
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "sqlite", operation = "read_stream_page", %stream, limit = limit, rows, code, error))]
    async fn read_stream_page(
        &self,
        stream: &StreamId,
        from: StreamRevision,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        traced(self.stream_events(stream, from, limit).await, Vec::len)
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "sqlite", operation = "append", stream = %request.stream, rows, code, error))]
    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        self.query_limits().check_append(&request)?;
        let outcome = self.append_in_group(request, None).await;
        if outcome.is_ok() {
            self.shared.commits.bump();
        }
        traced(outcome, |c| c.records.len())
    }

    #[tracing::instrument(
        level = "debug",
        name = "store",
        skip_all,
        fields(backend = "sqlite", operation = "begin_decision", rows, code, error)
    )]
    async fn begin_decision(&self, scope: &DecisionScope) -> Result<(SqliteDecision, Vec<StoredEvent>), StoreError> {
        let scope_read = scope.clone();
        let begun = self.begin_with(scope, move |conn| read_scope(conn, &scope_read));
        traced(begun.await, |(_, events)| events.len())
    }

    #[tracing::instrument(
        level = "debug",
        name = "store",
        skip_all,
        fields(backend = "sqlite", operation = "abandon_decision")
    )]
    async fn abandon_decision(&self, decision: SqliteDecision) {
        // Giving the turn back lets the next decision on the scope in.
        if let Some(turn) = decision.turn {
            turn.settled();
        }
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "sqlite", operation = "commit_decision", stream = %request.stream, rows, code, error))]
    async fn commit_decision(&self, decision: SqliteDecision, request: AppendRequest) -> Result<Committed, StoreError> {
        let SqliteDecision {
            scope,
            turn,
            tag_generation,
        } = decision;
        let outcome = self.append_in_group(request, Some((scope, tag_generation))).await;
        if let (Ok(_), Some(turn)) = (&outcome, turn) {
            turn.settled();
        }
        if outcome.is_ok() {
            self.shared.commits.bump();
        }
        traced(outcome, |c| c.records.len())
    }
}

/// Decisions and appends, before tracing wraps them.
impl SqliteStore {
    /// Begins a decision on `scope`, reading it with `read` (which returns,
    /// for a query's context, the tag generation it read under): after the
    /// scope's turn where it is contended.
    async fn begin_with<T, F>(&self, scope: &DecisionScope, read: F) -> Result<(SqliteDecision, T), StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<(Option<i64>, T), SqliteError> + Send + 'static,
    {
        self.query_limits().check_scope(scope)?;
        self.check_migrated()?;
        let turn = match self.shared.turns.is_contended(scope) {
            true => Some(self.take_turn(scope.clone()).await?),
            false => None,
        };
        let (tag_generation, read) = self.run(read).await?;
        let decision = SqliteDecision {
            scope: scope.clone(),
            turn,
            tag_generation,
        };
        Ok((decision, read))
    }

    /// Checks and writes `request` in the writer's next group transaction;
    /// for a decision on a query, also that no tags were published since
    /// it read under its tag generation. A decision's lost race marks its `scope`
    /// contended there, before any append of the group is answered (see
    /// [`crate::turns`]).
    async fn append_in_group(
        &self,
        request: AppendRequest,
        decision: Option<(DecisionScope, Option<i64>)>,
    ) -> Result<Committed, StoreError> {
        let turns = Arc::clone(&self.shared.turns);
        let written = self.run_in_group(move |conn| {
            let outcome = match &decision {
                Some((_, Some(seen))) if retag::generation(conn)? != *seen => {
                    Err(StoreError::contention(TagsPublished))
                }
                _ => append::append(conn, request)?,
            };
            if let (Err(conflict), Some((scope, _))) = (&outcome, &decision)
                && conflict.is_conflict()
            {
                turns.lost(scope);
            }
            Ok((outcome.is_ok(), outcome))
        });
        written.await.map_err(StoreError::from).and_then(|outcome| outcome)
    }

    /// Waits for `scope`'s turn (see [`crate::turns`]): on a blocking
    /// thread, or on the calling thread for an inline store. A turn that
    /// comes after the caller gave up is given back at once.
    /// At most `limit` events of `stream` from `from` on, on a reader.
    async fn stream_events(
        &self,
        stream: &StreamId,
        from: StreamRevision,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let stream = stream.clone();
        let result = self
            .run(move |conn| read::read_stream(conn, &stream, from, limit))
            .await;
        result.map_err(StoreError::from)
    }

    async fn take_turn(&self, scope: DecisionScope) -> Result<Turn, SqliteError> {
        let turns = Arc::clone(&self.shared.turns);
        let timeout = self.shared.pool.options().decision_timeout;
        if self.inline {
            return turns.take(scope, timeout);
        }
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(turns.pause(&scope));
            turns.take(scope, timeout)
        })
        .await?
    }
}

/// Records `result` on the call's span, with SQLite's result code when
/// there is one, and returns it.
pub(crate) fn traced<T>(result: Result<T, StoreError>, rows: impl FnOnce(&T) -> usize) -> Result<T, StoreError> {
    factos::record_outcome(&result, rows, |source| match source.downcast_ref::<SqliteError>()? {
        SqliteError::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => Some(format!("{:?}", failure.code)),
        _ => None,
    });
    result
}
