//! [`SqliteStore`]: the store contract on SQLite.

pub(crate) mod append;
pub(crate) mod read;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use factos::{
    AppendRequest, CommitSignal, Committed, DecisionScope, EventStore, Query, ReadOptions, StoreError, StoredEvent,
    StreamId, StreamRevision,
};
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::SqliteError;
use crate::pool::{Pool, Pooled, SqliteOptions, Target};
use crate::schema;

/// An event store in one SQLite database file (or in memory).
///
/// Clones share the connections. Every database call runs on tokio's
/// blocking threads, so the async API never blocks the runtime; such a
/// store therefore needs a tokio runtime. Synchronous applications use
/// [`SqliteStore::inline`] instead, which runs calls on the calling thread.
///
/// Writers in one process queue on an async lock instead of spinning on
/// SQLite's busy handler; writers in other processes are waited for up to
/// [`SqliteOptions::busy_timeout`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
    inline: bool,
}

#[derive(Debug)]
struct Shared {
    pool: Arc<Pool>,
    writer: Arc<Semaphore>,
    migrated: AtomicBool,
    /// Commits made through this store, for followers.
    commits: CommitSignal,
    /// A connection of its own and the `data_version` it last saw, for
    /// noticing other processes' commits.
    watch: Mutex<Option<(Connection, i64)>>,
}

/// A decision in progress: a connection inside `BEGIN IMMEDIATE`, holding
/// the database's write lock from the read until the commit, so no writer
/// can invalidate the decision and no retry is ever needed. Dropping it
/// rolls back.
#[derive(Debug)]
pub struct SqliteDecision {
    conn: Pooled,
    _writer: OwnedSemaphorePermit,
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
        Ok(Self {
            shared: Arc::new(Shared {
                pool,
                writer: Arc::new(Semaphore::new(1)),
                migrated: AtomicBool::new(version == schema::SCHEMA_VERSION),
                commits: CommitSignal::new(),
                watch: Mutex::new(None),
            }),
            inline: false,
        })
    }

    /// The same store (sharing connections and the writer queue), running
    /// every database call on the calling thread instead of a tokio blocking
    /// thread: for synchronous applications, which drive its futures with
    /// any executor, and for code already on a blocking thread. Its futures
    /// need no tokio runtime; they block while the database works, so do
    /// not poll them on an async runtime's worker threads.
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
        let _writer = self.writer().await;
        self.shared.pool.get().await.run(self.inline, schema::migrate).await?;
        self.shared.migrated.store(true, Ordering::Release);
        Ok(())
    }

    async fn writer(&self) -> OwnedSemaphorePermit {
        match Arc::clone(&self.shared.writer).acquire_owned().await {
            Ok(permit) => permit,
            Err(closed) => unreachable!("writer semaphore closed: {closed}"),
        }
    }

    async fn connection(&self) -> Result<Pooled, SqliteError> {
        if !self.shared.migrated.load(Ordering::Acquire) {
            return Err(SqliteError::NotMigrated);
        }
        Ok(self.shared.pool.get().await)
    }

    pub(crate) fn commits(&self) -> &CommitSignal {
        &self.shared.commits
    }

    pub(crate) fn is_inline(&self) -> bool {
        self.inline
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

    /// Runs `work` on a pooled connection on a blocking thread, holding
    /// this process's writer turn, for work that writes.
    pub(crate) async fn run_writing<T, F>(&self, work: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, SqliteError> + Send + 'static,
    {
        let _writer = self.writer().await;
        self.run(work).await
    }

    /// Runs `work` on a pooled connection on a blocking thread.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, SqliteError> + Send + 'static,
    {
        let (_, value) = self.connection().await?.run(self.inline, work).await?;
        Ok(value)
    }
}

fn read_scope(conn: &Connection, scope: &DecisionScope) -> Result<Vec<StoredEvent>, SqliteError> {
    match scope {
        DecisionScope::Query(query) => read::read(conn, query, ReadOptions::forwards()),
        DecisionScope::Stream(stream) => read::read_stream(conn, stream, StreamRevision::FIRST),
    }
}

impl EventStore for SqliteStore {
    type Transaction = SqliteDecision;

    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "sqlite", operation = "read", query_items = query.items().len(), rows, code, error))]
    async fn read(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        let query = query.clone();
        let result = self.run(move |conn| read::read(conn, &query, options)).await;
        traced(result.map_err(StoreError::from), Vec::len)
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "sqlite", operation = "read_stream", %stream, rows, code, error))]
    async fn read_stream(&self, stream: &StreamId, from: StreamRevision) -> Result<Vec<StoredEvent>, StoreError> {
        let stream = stream.clone();
        let result = self.run(move |conn| read::read_stream(conn, &stream, from)).await;
        traced(result.map_err(StoreError::from), Vec::len)
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "sqlite", operation = "append", stream = %request.stream, rows, code, error))]
    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        let _writer = self.writer().await;
        let result = self
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let outcome = append::append(&tx, request)?;
                if outcome.is_ok() {
                    tx.commit()?;
                }
                Ok(outcome)
            })
            .await;
        traced(result.map_err(StoreError::from).and_then(|outcome| outcome), |c| {
            c.records.len()
        })
    }

    #[tracing::instrument(
        level = "debug",
        name = "store",
        skip_all,
        fields(backend = "sqlite", operation = "begin_decision", rows, code, error)
    )]
    async fn begin_decision(&self, scope: &DecisionScope) -> Result<(SqliteDecision, Vec<StoredEvent>), StoreError> {
        let writer = self.writer().await;
        let scope = scope.clone();
        let begun = async {
            self.connection()
                .await?
                .run(self.inline, move |conn| {
                    conn.execute_batch("BEGIN IMMEDIATE")?;
                    read_scope(conn, &scope)
                })
                .await
        };
        let result = begun
            .await
            .map(|(conn, events)| (SqliteDecision { conn, _writer: writer }, events));
        traced(result.map_err(StoreError::from), |(_, events)| events.len())
    }

    #[tracing::instrument(
        level = "debug",
        name = "store",
        skip_all,
        fields(backend = "sqlite", operation = "abandon_decision")
    )]
    async fn abandon_decision(&self, decision: SqliteDecision) {
        // The pooled connection rolls back when it goes back to the pool.
        drop(decision);
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "sqlite", operation = "commit_decision", stream = %request.stream, rows, code, error))]
    async fn commit_decision(&self, decision: SqliteDecision, request: AppendRequest) -> Result<Committed, StoreError> {
        let SqliteDecision { conn, _writer } = decision;
        let result = conn
            .run(self.inline, move |conn| {
                let outcome = append::append(conn, request)?;
                conn.execute_batch(if outcome.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
                Ok(outcome)
            })
            .await
            .map(|(_, outcome)| outcome);
        traced(result.map_err(StoreError::from).and_then(|outcome| outcome), |c| {
            c.records.len()
        })
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
