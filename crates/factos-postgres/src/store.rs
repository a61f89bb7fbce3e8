//! [`PgStore`]: the store contract on PostgreSQL.

mod admin;
pub(crate) mod append;
mod forget;
pub(crate) mod read;
mod retag;
mod snapshot;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::time::Instant;

use deadpool_postgres::{Manager, ManagerConfig, Pool, QueueMode, RecyclingMethod, Runtime};
use factos::snapshot::{Snapshot, SnapshotKey, SnapshotOffers, read_after};
use factos::{
    AppendRequest, BoxError, Committed, DecisionScope, EventStore, Query, QueryLimits, ReadOptions, StoreError,
    StoredEvent, StreamId, StreamRevision,
};
use tokio::sync::OnceCell;
use tokio_postgres::{GenericClient, NoTls, Statement};

use crate::config::IntoConfig;
use crate::error::{Limit, PgError};
use crate::follow::{DEFAULT_NOTIFY_INTERVAL, DEFAULT_POLL_INTERVAL, FollowState};
use crate::in_transaction::PgTransactionStore;
use crate::limits::{Limits, PoolOptions, quote_schema};
use crate::locks::{self, Keys, LockMode, LockSet, Locking};
use crate::retry::{self, Backoff};
use crate::schema;
use crate::session::{self, Session};
use crate::statements::{self, Fixed};

/// An event store in a PostgreSQL schema: the connection's `search_path`,
/// or the store's own ([`PgStore::with_schema`]).
///
/// Clones share the pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: Pool,
    mode: LockMode,
    decision_lock_timeout: Duration,
    limits: Limits,
    keys: Arc<OnceCell<Keys>>,
    follow: Arc<FollowState>,
    notify_commits: bool,
    notification_interval: Duration,
    /// The statement that calls the append function in this store's schema.
    call_sql: Arc<str>,
    /// The statement that calls it alone, in autocommit.
    call_alone_sql: Arc<str>,
    /// Set once the server refused an append alone (a connection default
    /// stricter than READ COMMITTED): appends then open a transaction.
    alone_refused: Arc<AtomicBool>,
    prepared_statements: bool,
    query_limits: QueryLimits,
    /// The snapshots being saved in the background.
    offers: SnapshotOffers,
    /// How long an append whose outcome is unknown keeps being re-sent.
    resend_window: Duration,
}

/// A decision in progress: a transaction holding the locks its scope guards
/// (the query's keys, or the stream's key), so no matching event can be
/// committed between the decision's read and its append. Dropping it closes
/// its connection (the server rolls back); the dispatch flows end it with
/// [`EventStore::abandon_decision`] instead, which keeps the connection.
#[derive(Debug)]
pub struct PgDecision {
    session: Session,
    fixed: Fixed,
    held: LockSet,
    began: Instant,
}

/// How long a cancelled statement has to answer before its connection is
/// given up.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// The default of [`PgStore::with_resend_window`]: 30 seconds, three
/// times a Patroni failover with its default leader `ttl`.
pub const DEFAULT_RESEND_WINDOW: Duration = Duration::from_secs(30);

/// The longest pause between two re-sends of an append whose outcome is
/// unknown.
const RESEND_PAUSE_CAP: Duration = Duration::from_millis(500);

/// The default of [`PgStore::with_decision_lock_timeout`].
const DEFAULT_DECISION_LOCK_TIMEOUT: Duration = Duration::from_millis(50);

impl PgStore {
    /// A store over a pool the application already has.
    ///
    /// The pool's own time limits (`wait`, `create`) apply; a pool without
    /// them can wait forever for a connection or a server. See
    /// [`PgStore::connect_with`] for a pool with limits. Build it with
    /// `queue_mode(QueueMode::Lifo)`, as [`PgStore::connect_with`] does:
    /// deadpool's default hands out the connection idle the longest, so
    /// one writer's operations take turns over every open connection and
    /// its server processes, which costs it about a fifth of its appends
    /// per second.
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            mode: LockMode::default(),
            decision_lock_timeout: DEFAULT_DECISION_LOCK_TIMEOUT,
            limits: Limits::default(),
            keys: Arc::new(OnceCell::new()),
            follow: Arc::new(FollowState::new(None, DEFAULT_POLL_INTERVAL)),
            notify_commits: true,
            notification_interval: DEFAULT_NOTIFY_INTERVAL,
            call_sql: append::call_sql(None).into(),
            call_alone_sql: append::call_alone_sql(None).into(),
            alone_refused: Arc::default(),
            prepared_statements: true,
            query_limits: QueryLimits::DEFAULT,
            offers: SnapshotOffers::new(),
            resend_window: DEFAULT_RESEND_WINDOW,
        }
    }

    /// A store with its own pool ([`PoolOptions::default`]: 16 connections,
    /// default time limits) for `target`: a URL
    /// (`postgres://user:password@host:5432/database`), a key-value string
    /// (`host=localhost user=app dbname=app`) or a [`Config`].
    ///
    /// No connection is made yet: the first operation connects (and checks
    /// the schema version).
    ///
    /// # Errors
    ///
    /// [`PgError::InvalidConfig`] when the string cannot be parsed,
    /// [`PgError::BuildPool`] when the pool cannot be built.
    ///
    /// [`Config`]: crate::Config
    pub fn connect(target: impl IntoConfig) -> Result<Self, PgError> {
        Self::connect_with(target, PoolOptions::default())
    }

    /// As [`PgStore::connect`], with the pool built as `options` say.
    ///
    /// # Errors
    ///
    /// As [`PgStore::connect`].
    pub fn connect_with(target: impl IntoConfig, options: PoolOptions) -> Result<Self, PgError> {
        let config = target.into_config()?;
        let config_for_listening = config.clone();
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections)
            .runtime(Runtime::Tokio1)
            // The connection returned last is taken next: a store working
            // one operation at a time keeps one warm server process busy
            // instead of taking turns over all of them (first-in-first-out
            // cost a single writer a fifth of its appends per second once
            // a second connection was open).
            .queue_mode(QueueMode::Lifo)
            .create_timeout(Some(options.connect_timeout))
            .wait_timeout(Some(options.wait_timeout))
            .build()?;
        let mut store = Self::new(pool);
        store.follow = Arc::new(FollowState::new(Some(config_for_listening), DEFAULT_POLL_INTERVAL));
        Ok(store)
    }

    /// Keeps the store's tables in schema `name` (created by
    /// [`PgStore::migrate`] if missing) instead of the connection's
    /// `search_path`. Every transaction of the store sets `search_path` to
    /// it with `SET LOCAL`, which also works behind transaction-mode
    /// poolers. Several stores (several applications, or tests) can share
    /// one database this way without ever contending.
    ///
    /// # Errors
    ///
    /// [`PgError::InvalidSchemaName`] when PostgreSQL would not take `name`
    /// as it is (empty, longer than 63 bytes, a NUL).
    pub fn with_schema(mut self, name: &str) -> Result<Self, PgError> {
        let quoted = quote_schema(name).map_err(|problem| PgError::InvalidSchemaName {
            name: name.to_owned(),
            problem,
        })?;
        self.call_sql = append::call_sql(Some(&quoted)).into();
        self.call_alone_sql = append::call_alone_sql(Some(&quoted)).into();
        self.limits.schema = Some(quoted);
        self.keys = Arc::new(OnceCell::new());
        Ok(self)
    }

    /// How often a follower waiting at the end of the log looks for new
    /// events when no notification woke it ([`DEFAULT_POLL_INTERVAL`] by
    /// default): the longest a follower lags behind a commit whose
    /// `NOTIFY` it did not get (another process with notifications off, a
    /// pooler, a store built with [`PgStore::new`]).
    ///
    /// [`DEFAULT_POLL_INTERVAL`]: crate::DEFAULT_POLL_INTERVAL
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.follow = Arc::new(FollowState::new(self.follow.config.clone(), interval));
        self
    }

    /// Whether commits are announced to other processes' followers with a
    /// `NOTIFY` after each commit (on by default; coalesced, sent outside
    /// the writer's transaction). Off, other processes find new events by
    /// polling.
    pub fn with_commit_notifications(mut self, notify: bool) -> Self {
        self.notify_commits = notify;
        self
    }

    /// The shortest time between two commit notifications of this store
    /// ([`DEFAULT_NOTIFY_INTERVAL`], 20 ms, by default). A commit after a
    /// quiet interval is announced at once; commits within one interval of
    /// the last `NOTIFY` share the next one. So a follower in another
    /// process lags at most this long behind a commit, and a `NOTIFY` (a
    /// small transaction of its own on another connection) is sent at most
    /// once per interval however fast the store appends: sent after every
    /// commit, it cost a single writer about a quarter of its appends per
    /// second (measured in `crates/factos-bench`, BENCHMARKS.md).
    /// Followers in this process are woken at once either way.
    pub fn with_commit_notification_interval(mut self, interval: Duration) -> Self {
        self.notification_interval = interval;
        self
    }

    pub(crate) fn notification_interval(&self) -> Duration {
        self.notification_interval
    }

    /// The statement that puts a transaction in the store's own schema.
    pub(crate) fn search_path(&self) -> Option<String> {
        self.limits.search_path()
    }

    /// The keys of this store's schema, if an operation has resolved them.
    pub(crate) fn cached_keys(&self) -> Option<Keys> {
        self.keys.get().copied()
    }

    /// The advisory-lock key of projection `name` in this store's schema.
    pub(crate) async fn projection_key<C: GenericClient + Sync>(&self, client: &C, name: &str) -> Result<i64, PgError> {
        Ok(self.keys_with(client).await?.projection(name))
    }

    pub(crate) fn follow_state(&self) -> &Arc<FollowState> {
        &self.follow
    }

    pub(crate) fn notifies_commits(&self) -> bool {
        self.notify_commits
    }

    /// The same store on another pool (a standby's), whose followers poll:
    /// they do not listen for notifications, which a standby cannot take.
    pub(crate) fn on_pool(&self, pool: Pool) -> PgStore {
        PgStore {
            pool,
            follow: Arc::new(FollowState::new(None, self.follow.poll_interval)),
            ..self.clone()
        }
    }

    /// The same store for background work that must not keep the store's
    /// follow state alive.
    pub(crate) fn clone_without_follow(&self) -> PgStore {
        self.on_pool(self.pool.clone())
    }

    /// Whether the store prepares its fixed statements once per
    /// connection and runs them by name (the default), or sends every
    /// statement unnamed.
    ///
    /// Prepared statements save the server parsing and planning the same
    /// statement on every call. Turn them off behind a pooler in
    /// transaction mode that does not track them (PgBouncer before 1.21,
    /// or with `max_prepared_statements = 0`): it hands each transaction
    /// to any server connection, where a statement prepared on another one
    /// does not exist (SQLSTATE 26000).
    pub fn with_prepared_statements(mut self, prepared: bool) -> Self {
        self.prepared_statements = prepared;
        self
    }

    /// Holds lock keys as `mode` says.
    pub fn with_lock_mode(mut self, mode: LockMode) -> Self {
        self.mode = mode;
        self
    }

    /// Refuses queries over `limits` ([`QueryLimits::default`] unless set)
    /// with [`factos::StoreError::QueryTooLarge`] before anything is sent.
    pub fn with_query_limits(mut self, limits: QueryLimits) -> Self {
        self.query_limits = limits;
        self
    }

    /// How the store takes its locks (see [`PgStore::with_lock_mode`]).
    pub(crate) fn lock_mode(&self) -> LockMode {
        self.mode
    }

    /// The store's query limits (see [`PgStore::with_query_limits`]).
    pub(crate) fn query_limits(&self) -> &QueryLimits {
        &self.query_limits
    }

    /// How long a decision waits for each lock it needs after its read (the
    /// keys its new events touch), 50 ms by default.
    ///
    /// Only a decision asks for locks while holding others, so only it can
    /// close a wait cycle with other transactions. Giving up after this
    /// timeout (reported as contention; the dispatch retries) breaks such a
    /// cycle long before PostgreSQL's deadlock check would. Ordinary waits
    /// behind a committing writer are far shorter.
    pub fn with_decision_lock_timeout(mut self, timeout: Duration) -> Self {
        self.decision_lock_timeout = timeout;
        self
    }

    /// How long a decision may hold its transaction, from the start of its
    /// read to its append ([`DEFAULT_DECISION_TIMEOUT`] by default).
    ///
    /// A decider that hangs would otherwise hold its context's locks, and
    /// every writer of a matching event would wait for it. The server ends a
    /// decision's session once it has been idle for this long (PostgreSQL's
    /// `idle_in_transaction_session_timeout`, set for that transaction
    /// only), which releases the locks; committing a decision older than
    /// the limit fails with [`PgError::Timeout`] ([`Limit::Decision`]) and
    /// writes nothing.
    ///
    /// [`DEFAULT_DECISION_TIMEOUT`]: crate::DEFAULT_DECISION_TIMEOUT
    pub fn with_decision_timeout(mut self, timeout: Duration) -> Self {
        self.limits.decision = timeout;
        self
    }

    /// The longest one statement of the store may run
    /// ([`DEFAULT_STATEMENT_TIMEOUT`] by default; `None` keeps the
    /// server's): the `statement_timeout` of the store's transactions, and
    /// for an append sent alone (no transaction to carry it) a cancel the
    /// client sends when it runs past the limit. A statement cancelled
    /// either way fails with [`PgError::Timeout`] ([`Limit::Statement`]).
    ///
    /// [`DEFAULT_STATEMENT_TIMEOUT`]: crate::DEFAULT_STATEMENT_TIMEOUT
    pub fn with_statement_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.limits.statement = timeout;
        self
    }

    /// How long an append whose connection was lost before its answer
    /// keeps re-sending it ([`DEFAULT_RESEND_WINDOW`] by default).
    ///
    /// Such an append (or a decision's commit) may or may not have
    /// committed. The store sends the same request again, with the same
    /// event ids, on a new connection: the server answers with the original
    /// records if the first one committed (an identical re-send), and
    /// otherwise checks the condition or expected revision again and
    /// appends. So the caller gets one definite answer, never a duplicate
    /// or a second decision. Across a failover the re-sends go on, with
    /// growing pauses (at most half a second), until a new primary answers
    /// or the window passes ([`PgError::OutcomeUnknown`]). Set it above
    /// the cluster's failover time (Patroni: about its `ttl` plus
    /// `loop_wait`).
    pub fn with_resend_window(mut self, window: Duration) -> Self {
        self.resend_window = window;
        self
    }

    /// The connection pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs the store inside `transaction`, which the application controls:
    /// events appended through the returned store commit or roll back with
    /// the application's own writes. See [`PgTransactionStore`]. A store
    /// with a schema of its own ([`PgStore::with_schema`]) sets the
    /// transaction's `search_path` to it (`SET LOCAL`, for the rest of the
    /// transaction).
    ///
    /// # Errors
    ///
    /// [`PgError::NotMigrated`] or [`PgError::SchemaTooNew`] when the schema
    /// is not the version this crate writes; [`PgError::Postgres`] when it
    /// cannot be read.
    pub async fn in_transaction<'t>(
        &self,
        transaction: &'t tokio_postgres::Transaction<'t>,
    ) -> Result<PgTransactionStore<'t>, PgError> {
        if let Some(search_path) = self.limits.search_path() {
            transaction.batch_execute(&search_path).await?;
        }
        let keys = self.keys_with(transaction).await?;
        Ok(PgTransactionStore::new(
            transaction,
            self.locking(keys, true),
            self.query_limits,
        ))
    }

    /// Creates or upgrades the schema (idempotent; safe to run from several
    /// processes at once). A store with a schema of its own
    /// ([`PgStore::with_schema`]) creates that schema first if it is
    /// missing.
    ///
    /// # Errors
    ///
    /// [`PgError::SchemaTooNew`] when a newer factos-postgres wrote the
    /// schema; [`PgError::Postgres`] when a migration fails (then it is
    /// rolled back entirely).
    pub async fn migrate(&self) -> Result<(), PgError> {
        let session = Session::begin(&self.pool, &self.limits.begin(false, true)).await?;
        let migrated = async {
            let row = session
                .client()
                .query_typed("SELECT current_schema()::text", &[])
                .await?;
            let schema: Option<String> = row.first().map(|r| r.try_get(0)).transpose()?;
            schema::migrate(session.client(), Keys::new(&schema.unwrap_or_default())).await
        };
        let outcome = migrated.await;
        session.end(outcome).await
    }

    /// The lock keys of this store's schema, after checking once per store
    /// that the schema has the version this crate writes (the check is
    /// cached only when it passes, so a store can be migrated later).
    async fn keys_with<C: GenericClient + Sync>(&self, client: &C) -> Result<Keys, PgError> {
        self.keys
            .get_or_try_init(|| async { Ok::<_, PgError>(Keys::new(&schema::check(client).await?)) })
            .await
            .copied()
    }

    fn locking(&self, keys: Keys, restore_timeout: bool) -> Locking {
        Locking {
            keys,
            mode: self.mode,
            decision_lock_timeout: self.decision_lock_timeout,
            restore_timeout,
        }
    }

    /// Begins a transaction (a decision's, with its time limit, when
    /// `decision`); its locking needs no timeout restored, since the
    /// transaction ends right after.
    pub(crate) async fn begin(&self, decision: bool) -> Result<(Session, Locking), PgError> {
        let session = Session::begin(&self.pool, &self.limits.begin(decision, false)).await?;
        match self.keys_with(session.client()).await {
            Ok(keys) => Ok((session, self.locking(keys, false))),
            Err(error) => session.end(Err(error)).await,
        }
    }

    /// `error` in the caller's terms: a statement timeout as such, and a
    /// decision's lost connection as the decision timeout when the decision
    /// ran past it (the server ended its session).
    fn classify(&self, error: PgError, began: Option<Instant>) -> PgError {
        match began {
            Some(began) if began.elapsed() >= self.limits.decision && error.is_connection_lost() => {
                self.decision_timeout(Some(error))
            }
            _ => error.with_statement_limit(self.limits.statement),
        }
    }

    fn decision_timeout(&self, source: Option<PgError>) -> PgError {
        PgError::Timeout {
            limit: Limit::Decision,
            after: self.limits.decision,
            source: source.map(|e| Box::new(e) as BoxError),
        }
    }
}

/// What a decision read: the locks it holds, the snapshot it starts from
/// when it asked for one (with the tag generation it read under), and the
/// scope's events (after the snapshot).
pub(crate) struct DecisionRead {
    pub(crate) held: LockSet,
    pub(crate) snapshot: Option<(u64, Option<Snapshot>)>,
    pub(crate) events: Vec<StoredEvent>,
}

/// Reads the events of `scope` for a decision, after taking the locks that
/// keep them valid until the transaction ends; with a snapshot `key`, first
/// the snapshot under it and then only the events after it.
pub(crate) async fn read_for_decision<C: GenericClient + Sync>(
    client: &C,
    locking: Locking,
    scope: &DecisionScope,
    key: Option<&SnapshotKey>,
    prepared_locks: Option<&Statement>,
) -> Result<DecisionRead, PgError> {
    let mut held = LockSet::new();
    match scope {
        DecisionScope::Query(query) => locking.keys.guard(&mut held, query),
        DecisionScope::Stream(stream) => locking.keys.lock_stream(&mut held, stream),
    }
    let read = async {
        let snapshot = match key {
            Some(key) => Some(snapshot::load(client, key).await?),
            None => None,
        };
        let (position, revision) = read_after(snapshot.as_ref().and_then(|(_, found)| found.as_ref()));
        let events = match scope {
            DecisionScope::Query(query) => read::read(client, query, ReadOptions::forwards().from(position)).await?,
            DecisionScope::Stream(stream) => read::read_stream(client, stream, revision, usize::MAX).await?,
        };
        Ok((snapshot, events))
    };
    let (snapshot, events) = locked(client, locking.mode, &held.locks(), prepared_locks, read).await?;
    Ok(DecisionRead { held, snapshot, events })
}

/// Reads `query` after taking its guard locks, so that no matching event can
/// become visible later below a position this read returns.
pub(crate) async fn read_consistent<C: GenericClient + Sync>(
    client: &C,
    locking: Locking,
    query: &Query,
    options: ReadOptions,
    prepared_locks: Option<&Statement>,
) -> Result<Vec<StoredEvent>, PgError> {
    let mut guards = LockSet::new();
    locking.keys.guard(&mut guards, query);
    locked(
        client,
        locking.mode,
        &guards.locks(),
        prepared_locks,
        read::read(client, query, options),
    )
    .await
}

/// Takes `locks`, then runs `read`. Where the locks are one statement, both
/// go in one round trip, pipelined in that order: the server runs the read
/// after the locks are held, with a snapshot taken then.
async fn locked<C, T, R>(
    client: &C,
    mode: LockMode,
    locks: &[locks::Lock],
    prepared_locks: Option<&Statement>,
    read: R,
) -> Result<T, PgError>
where
    C: GenericClient + Sync,
    R: Future<Output = Result<T, PgError>>,
{
    let planned = locks::plan(mode, locks);
    let acquired = locks::acquire(client, mode, &planned, prepared_locks);
    if mode.is_one_statement() {
        let ((), value) = tokio::try_join!(biased; acquired, read)?;
        Ok(value)
    } else {
        acquired.await?;
        read.await
    }
}

impl EventStore for PgStore {
    type Transaction = PgDecision;

    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "postgres", operation = "read", query_items = query.items().len(), rows, code, error))]
    async fn read(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        self.query_limits.check(query)?;
        traced(self.run_read(query, options).await, Vec::len)
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "postgres", operation = "read_stream", %stream, rows, code, error))]
    async fn read_stream(&self, stream: &StreamId, from: StreamRevision) -> Result<Vec<StoredEvent>, StoreError> {
        traced(self.run_read_stream(stream, from, usize::MAX).await, Vec::len)
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "postgres", operation = "read_stream_page", %stream, limit = limit, rows, code, error))]
    async fn read_stream_page(
        &self,
        stream: &StreamId,
        from: StreamRevision,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        traced(self.run_read_stream(stream, from, limit).await, Vec::len)
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "postgres", operation = "append", stream = %request.stream, rows, code, error))]
    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        self.query_limits.check_append(&request)?;
        let outcome = self.run_append(request).await;
        if outcome.is_ok() {
            self.committed();
        }
        traced(outcome, |c| c.records.len())
    }

    #[tracing::instrument(
        level = "debug",
        name = "store",
        skip_all,
        fields(backend = "postgres", operation = "begin_decision", rows, code, error)
    )]
    async fn begin_decision(&self, scope: &DecisionScope) -> Result<(PgDecision, Vec<StoredEvent>), StoreError> {
        self.query_limits.check_scope(scope)?;
        let begun = self.run_begin_decision(scope, None).await;
        traced(begun.map(|(decision, read)| (decision, read.events)), |(_, events)| {
            events.len()
        })
    }

    #[tracing::instrument(
        level = "debug",
        name = "store",
        skip_all,
        fields(backend = "postgres", operation = "abandon_decision")
    )]
    async fn abandon_decision(&self, decision: PgDecision) {
        decision.session.abandon().await;
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "postgres", operation = "commit_decision", stream = %request.stream, rows, code, error))]
    async fn commit_decision(&self, decision: PgDecision, request: AppendRequest) -> Result<Committed, StoreError> {
        let outcome = self.run_commit_decision(decision, request).await;
        if outcome.is_ok() {
            self.committed();
        }
        traced(outcome, |c| c.records.len())
    }
}

/// Records `result` on the call's span, with PostgreSQL's SQLSTATE when
/// there is one, and returns it.
pub(crate) fn traced<T>(result: Result<T, StoreError>, rows: impl FnOnce(&T) -> usize) -> Result<T, StoreError> {
    factos::record_outcome(&result, rows, |source| {
        let code = source.downcast_ref::<PgError>()?.code()?;
        Some(code.code().to_owned())
    });
    result
}

/// The store calls, before tracing wraps them.
impl PgStore {
    async fn run_read(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        let mut backoff = Backoff::new();
        loop {
            let outcome = async {
                let locking = self.locking(self.keys().await?, false);
                let (session, _, read) = pipelined!(self, false, self.commits_in_pipeline(), |client, fixed| {
                    read_consistent(client, locking, query, options, fixed.locks.as_ref())
                })?;
                self.end_read(session, read).await
            };
            match outcome.await {
                Err(lost) if lost.is_transient_conflict() && backoff.retry().await => continue,
                outcome => return Ok(outcome.map_err(|e| self.classify(e, None))?),
            }
        }
    }

    async fn run_read_stream(
        &self,
        stream: &StreamId,
        from: StreamRevision,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        // In a transaction like every call, so that the store's schema and
        // time limits apply and its schema version is checked.
        let outcome = async {
            self.keys().await?;
            let (session, _, read) = pipelined!(self, false, self.commits_in_pipeline(), |client, _fixed| {
                read::read_stream(client, stream, from, limit)
            })?;
            self.end_read(session, read).await
        };
        Ok(outcome.await.map_err(|e| self.classify(e, None))?)
    }

    async fn run_append(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        if let Err(invalid) = request.validate() {
            return Err(invalid.into());
        }
        match self.append_attempts(&request).await {
            Ok(outcome) => outcome,
            Err(lost) if lost.is_connection_lost() => self.resend(&request, lost).await,
            Err(other) => Err(self.classify(other, None).into()),
        }
    }

    /// Resolves an append whose connection was lost before its answer
    /// (see [`PgStore::with_resend_window`]): sends `request` again, at
    /// once and then after growing pauses while no primary answers.
    async fn resend(&self, request: &AppendRequest, lost: PgError) -> Result<Committed, StoreError> {
        let deadline = Instant::now() + self.resend_window;
        let mut pause = retry::pause(1);
        let mut last = lost;
        loop {
            tracing::info!(error = %last, "an append's outcome is unknown: sending it again with the same event ids");
            match self.append_attempts(request).await {
                Ok(outcome) => return outcome,
                Err(error) if error.is_unavailable() => last = error,
                Err(error) => return Err(self.classify(error, None).into()),
            }
            if Instant::now() + pause >= deadline {
                let unknown = PgError::OutcomeUnknown {
                    window: self.resend_window,
                    source: Box::new(last),
                };
                return Err(unknown.into());
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).clamp(Duration::from_millis(10), RESEND_PAUSE_CAP);
        }
    }

    /// Appends `request`, running it again when it lost a wait cycle; the
    /// contract's outcome, or the failure that ended the attempts.
    async fn append_attempts(&self, request: &AppendRequest) -> Result<Result<Committed, StoreError>, PgError> {
        let mut backoff = Backoff::new();
        loop {
            let attempt = async {
                let locking = self.locking(self.keys().await?, false);
                let call = append::Call::new(locking, &LockSet::new(), request)?;
                if call.needs_client_check() {
                    let (session, locking) = self.begin(false).await?;
                    let outcome = append::append(session.client(), locking, &LockSet::new(), request.clone()).await;
                    return session.end(outcome).await;
                }
                if !self.alone_refused.load(Ordering::Relaxed) {
                    match self.append_alone(&call).await {
                        Ok(rows) => return self.answered(&call, request, &rows).await,
                        Err(refused) if refused.is_isolation_refused() => {
                            tracing::info!(
                                "the connections' default isolation is stricter than READ COMMITTED: \
                                 appends open a transaction that sets it"
                            );
                            self.alone_refused.store(true, Ordering::Relaxed);
                        }
                        Err(error) => return Err(error),
                    }
                }
                // The connections default to a stricter isolation: one
                // round trip of BEGIN (READ COMMITTED), the call, COMMIT.
                let params = call.typed_params();
                let (session, _, rows) = pipelined!(self, false, true, |client, fixed| {
                    statements::query(client, fixed.append.as_ref(), &self.call_sql, &params)
                })?;
                // The server answered the COMMIT (a rollback if the call
                // failed): the connection is clean.
                session.release();
                drop(params);
                self.answered(&call, request, &rows?).await
            };
            match attempt.await {
                // A lost wait cycle, or an identical re-send racing its
                // original (the next run finds the winner's records):
                // nothing was written, every check runs again.
                Err(transient)
                    if (transient.is_event_id_race() || transient.is_transient_conflict()) && backoff.retry().await => {
                }
                outcome => return outcome,
            }
        }
    }

    /// Sends `call` alone, in autocommit (one statement, its own
    /// transaction, one round trip; see `sql/schema_v4.sql`), and returns
    /// the function's answer.
    ///
    /// A connection lost before the answer leaves the outcome unknown: the
    /// caller re-sends ([`PgStore::resend`]). A connection to a server
    /// that has become a standby is closed, not pooled again.
    async fn append_alone(&self, call: &append::Call<'_>) -> Result<Vec<tokio_postgres::Row>, PgError> {
        let params = call.typed_params();
        let mut tries = session::retries(&self.pool);
        let (session, fixed) = loop {
            if let Some(prepared) = self.prepared_connection(&mut tries).await? {
                break prepared;
            }
        };
        let sent = statements::query(
            session.client(),
            fixed.append_alone.as_ref(),
            &self.call_alone_sql,
            &params,
        );
        match self.within_statement_limit(session.client(), sent).await? {
            Ok(rows) => {
                session.release();
                Ok(rows)
            }
            Err(error) => {
                let error = PgError::from(error);
                if error.is_connection_lost() || error.is_read_only() {
                    drop(session);
                } else {
                    // The server answered: the statement's transaction
                    // ended with it, the connection is clean.
                    session.release();
                }
                Err(error)
            }
        }
    }

    /// Runs `work` (a statement in flight on `client`) within the store's
    /// statement time limit, which a statement sent without a transaction
    /// cannot carry: past the limit the statement is cancelled (the server
    /// answers SQLSTATE 57014, which the store reports as the statement
    /// timeout; a statement that finished meanwhile keeps its answer). The
    /// outer error: no answer even after the cancel; the caller must then
    /// discard the connection.
    async fn within_statement_limit<T>(
        &self,
        client: &tokio_postgres::Client,
        work: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<Result<T, tokio_postgres::Error>, PgError> {
        let Some(limit) = self.limits.statement else {
            return Ok(work.await);
        };
        tokio::pin!(work);
        if let Ok(answer) = tokio::time::timeout(limit, &mut work).await {
            return Ok(answer);
        }
        // A failed cancel request (a server gone) shows in `work` itself.
        let _ = client.cancel_token().cancel_query(tokio_postgres::NoTls).await;
        match tokio::time::timeout(CANCEL_GRACE, work).await {
            Ok(answer) => Ok(answer),
            Err(_) => Err(PgError::Timeout {
                limit: Limit::Statement,
                after: limit,
                source: None,
            }),
        }
    }

    /// The contract's outcome of an append function's answer; an answer
    /// that found the ids taken reads them (another round trip, for re-sends
    /// and duplicates only).
    async fn answered(
        &self,
        call: &append::Call<'_>,
        request: &AppendRequest,
        rows: &[tokio_postgres::Row],
    ) -> Result<Result<Committed, StoreError>, PgError> {
        let row = rows.first().ok_or(PgError::UnexpectedAnswer("no row"))?;
        match call.answer(row)? {
            append::Answer::Done(outcome) => Ok(outcome),
            append::Answer::IdsTaken => {
                let (session, _, read) = pipelined!(self, false, self.commits_in_pipeline(), |client, _fixed| {
                    append::replay(client, request)
                })?;
                self.end_read(session, read).await
            }
        }
    }

    async fn run_begin_decision(
        &self,
        scope: &DecisionScope,
        key: Option<&SnapshotKey>,
    ) -> Result<(PgDecision, DecisionRead), StoreError> {
        let mut backoff = Backoff::new();
        loop {
            let began = Instant::now();
            let attempt = async {
                let locking = self.locking(self.keys().await?, false);
                // One round trip: BEGIN, the locks, the read.
                let (session, fixed, read) = pipelined!(self, true, false, |client, fixed| {
                    read_for_decision(client, locking, scope, key, fixed.locks.as_ref())
                })?;
                let mut read = match read {
                    Ok(read) => read,
                    Err(error) => {
                        session.abandon().await;
                        return Err(error);
                    }
                };
                let held = std::mem::take(&mut read.held);
                Ok::<_, PgError>((
                    PgDecision {
                        session,
                        fixed,
                        held,
                        began,
                    },
                    read,
                ))
            };
            match attempt.await {
                Ok(begun) => return Ok(begun),
                Err(error) if error.is_transient_conflict() && backoff.retry().await => {}
                Err(error) => return Err(self.classify(error, Some(began)).into()),
            }
        }
    }

    async fn run_commit_decision(&self, decision: PgDecision, request: AppendRequest) -> Result<Committed, StoreError> {
        let PgDecision {
            session,
            fixed,
            held,
            began,
        } = decision;
        if began.elapsed() >= self.limits.decision {
            // The server ends (or has ended) the session at this limit;
            // refusing here makes the outcome the same either way.
            session.abandon().await;
            return Err(self.decision_timeout(None).into());
        }
        if let Err(invalid) = request.validate() {
            session.abandon().await;
            return Err(invalid.into());
        }
        let outcome = async {
            let locking = self.locking(self.keys().await?, false);
            let call = append::Call::new(locking, &held, &request)?;
            if call.needs_client_check() {
                let outcome = append::append(session.client(), locking, &held, request.clone()).await;
                return Ok(Err(session.end(outcome).await));
            }
            // One round trip: the second pass's lock timeout, the call,
            // COMMIT (which rolls back if the call failed).
            let client = session.client();
            let params = call.typed_params();
            let (timeout, rows, ended) = tokio::join!(
                biased;
                async {
                    match &call.lock_timeout {
                        Some(setting) => locks::set_lock_timeout(client, setting, fixed.lock_timeout.as_ref())
                            .await
                            .map(drop),
                        None => Ok(()),
                    }
                },
                statements::query(client, fixed.append.as_ref(), &self.call_sql, &params),
                client.batch_execute("COMMIT"),
            );
            drop(params);
            ended?;
            session.release();
            let rows = timeout.and(rows.map_err(PgError::from))?;
            Ok(Ok((call, rows)))
        };
        let outcome = match outcome.await {
            Ok(Ok((call, rows))) => self.answered(&call, &request, &rows).await,
            Ok(Err(done)) => done,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(outcome) => outcome,
            // The COMMIT may have reached the server: the decision's
            // request, re-sent with its condition and event ids, says.
            Err(lost) if lost.is_connection_lost() => self.resend(&request, lost).await,
            Err(error) => {
                if error.is_transient_conflict() {
                    // The dispatch retries at once; a short random pause
                    // first keeps the broken cycle's members apart.
                    tokio::time::sleep(retry::pause(retry::ATTEMPTS)).await;
                }
                Err(self.classify(error, Some(began)).into())
            }
        }
    }

    /// The lock keys of this store's schema, checking the schema version in
    /// a transaction of its own the first time.
    async fn keys(&self) -> Result<Keys, PgError> {
        if let Some(keys) = self.cached_keys() {
            return Ok(keys);
        }
        let (session, locking) = self.begin(false).await?;
        session.end(Ok(locking.keys)).await
    }

    /// A pooled connection with its fixed statements prepared (once per
    /// connection); `None` when the server had closed it and another
    /// should be tried (see [`pipelined!`]).
    async fn prepared_connection(&self, tries: &mut usize) -> Result<Option<(Session, Fixed)>, PgError> {
        *tries = tries.saturating_sub(1);
        let session = Session::connect(&self.pool).await?;
        match Fixed::prepare(
            session.object(),
            self.prepared_statements,
            [&self.call_sql, &self.call_alone_sql],
        )
        .await
        {
            Ok(fixed) => Ok(Some((session, fixed))),
            Err(error) if error.is_connection_lost() && *tries > 0 => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Whether a pipeline whose `BEGIN` failed with `error` should run again
    /// on another connection: the server had closed this one while it sat
    /// idle, so nothing ran.
    fn stale(error: &PgError, tries: usize) -> bool {
        let stale = error.is_connection_lost() && tries > 0;
        if stale {
            tracing::debug!(%error, "replacing a pooled connection the server had closed");
        }
        stale
    }

    /// Ends a transaction that only read: the `COMMIT` went in the
    /// pipeline where the lock mode takes its locks in one statement
    /// ([`PgStore::commits_in_pipeline`]), and follows otherwise.
    async fn end_read<T>(&self, session: Session, value: Result<T, PgError>) -> Result<T, PgError> {
        if self.commits_in_pipeline() {
            // The server answered the COMMIT: the transaction is over
            // (rolled back if a statement in it failed).
            session.release();
            return value;
        }
        session.end(value).await
    }

    /// Whether a read's `COMMIT` can go in its pipeline: only when its
    /// locks are one statement, so that every statement precedes it.
    fn commits_in_pipeline(&self) -> bool {
        self.mode.is_one_statement()
    }
}

/// Opens a transaction on a pooled connection of `$store` (a decision's when
/// `$decision`) and pipelines `$work`'s statements behind its `BEGIN`, and a
/// `COMMIT` behind them when `$commit`: one round trip when `$work` sends
/// every statement when first polled (it must, when `$commit`, so that all
/// of them precede the `COMMIT`). Evaluates to the session, its fixed
/// statements and `$work`'s outcome, or the error that ended the
/// transaction. A connection the server closed while idle is replaced.
macro_rules! pipelined {
    ($store:expr, $decision:expr, $commit:expr, |$client:ident, $fixed:ident| $work:expr) => {{
        let store: &PgStore = $store;
        let begin = store.limits.begin($decision, false);
        let mut tries = session::retries(&store.pool);
        loop {
            let Some((session, $fixed)) = store.prepared_connection(&mut tries).await? else {
                continue;
            };
            let $client = session.client();
            let (began, value, ended) = tokio::join!(
                biased;
                $client.batch_execute(&begin),
                $work,
                async {
                    match $commit {
                        true => $client.batch_execute("COMMIT").await,
                        false => Ok(()),
                    }
                },
            );
            match began.map_err(PgError::from) {
                Err(error) if PgStore::stale(&error, tries) => continue,
                Err(error) => break Err(error),
                Ok(()) => {}
            }
            break match ended {
                Ok(()) => Ok((session, $fixed, value)),
                Err(error) => Err(PgError::from(error)),
            };
        }
    }};
}
use pipelined;

#[cfg(test)]
mod wait_cycle_tests;
