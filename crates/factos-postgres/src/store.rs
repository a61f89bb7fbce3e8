//! [`PgStore`]: the store contract on PostgreSQL.

pub(crate) mod append;
pub(crate) mod read;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use factos::{
    AppendRequest, Committed, DecisionScope, EventStore, Query, ReadOptions, StoreError, StoredEvent, StreamId,
    StreamRevision,
};
use tokio::sync::OnceCell;
use tokio_postgres::{GenericClient, NoTls};

use crate::error::PgError;
use crate::in_transaction::PgTransactionStore;
use crate::locks::{self, Keys, LockMode, LockSet, Locking};
use crate::schema;
use crate::session::Session;

/// An event store in a PostgreSQL schema (the connection's `search_path`).
///
/// Clones share the pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: Pool,
    mode: LockMode,
    decision_lock_timeout: Duration,
    keys: Arc<OnceCell<Keys>>,
}

/// A decision in progress: a transaction holding the locks its scope guards
/// (the query's keys, or the stream's key), so no matching event can be
/// committed between the decision's read and its append. Dropping it rolls
/// back.
#[derive(Debug)]
pub struct PgDecision {
    session: Session,
    held: LockSet,
}

/// The default of [`PgStore::with_decision_lock_timeout`].
const DEFAULT_DECISION_LOCK_TIMEOUT: Duration = Duration::from_millis(50);

/// How many times a plain `append` runs when PostgreSQL aborts it for a
/// concurrent transaction (a deadlock between lock holders) or its insert
/// races an identical re-send (the next run finds the winner's records).
/// Re-running is safe: the aborted attempt wrote nothing and every check
/// runs again.
const APPEND_ATTEMPTS: u32 = 5;

impl PgStore {
    /// A store over a pool the application already has.
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            mode: LockMode::default(),
            decision_lock_timeout: DEFAULT_DECISION_LOCK_TIMEOUT,
            keys: Arc::new(OnceCell::new()),
        }
    }

    /// A store with its own pool of at most `max_connections` connections.
    ///
    /// # Errors
    ///
    /// [`PgError::BuildPool`] when the pool cannot be built (no connection
    /// is made yet).
    pub fn connect(config: tokio_postgres::Config, max_connections: usize) -> Result<Self, PgError> {
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Ok(Self::new(Pool::builder(manager).max_size(max_connections).build()?))
    }

    /// Holds lock keys as `mode` says.
    pub fn with_lock_mode(mut self, mode: LockMode) -> Self {
        self.mode = mode;
        self
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

    /// The connection pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs the store inside `transaction`, which the application controls:
    /// events appended through the returned store commit or roll back with
    /// the application's own writes. See [`PgTransactionStore`].
    ///
    /// # Errors
    ///
    /// [`PgError::Postgres`] when the schema name cannot be read.
    pub async fn in_transaction<'t>(
        &self,
        transaction: &'t tokio_postgres::Transaction<'t>,
    ) -> Result<PgTransactionStore<'t>, PgError> {
        let keys = self.keys_with(transaction).await?;
        Ok(PgTransactionStore::new(transaction, self.locking(keys, true)))
    }

    /// Creates or upgrades the schema (idempotent; safe to run from several
    /// processes at once).
    ///
    /// # Errors
    ///
    /// [`PgError::SchemaTooNew`] when a newer factos-postgres wrote the
    /// schema; [`PgError::Postgres`] when a migration fails (then it is
    /// rolled back entirely).
    pub async fn migrate(&self) -> Result<(), PgError> {
        let session = Session::begin(&self.pool).await?;
        let keys = self.keys_with(session.client()).await?;
        schema::migrate(session.client(), keys).await?;
        session.finish(true).await
    }

    /// The lock keys of this store's schema, read once from the server.
    async fn keys_with<C: GenericClient + Sync>(&self, client: &C) -> Result<Keys, PgError> {
        self.keys
            .get_or_try_init(|| async {
                let row = client.query_typed("SELECT current_schema()::text", &[]).await?;
                let schema: Option<String> = row.first().map(|r| r.try_get(0)).transpose()?;
                Ok::<_, PgError>(Keys::new(&schema.unwrap_or_default()))
            })
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

    /// Begins a transaction; its locking needs no timeout restored, since
    /// the transaction ends right after.
    async fn begin(&self) -> Result<(Session, Locking), PgError> {
        let session = Session::begin(&self.pool).await?;
        let keys = self.keys_with(session.client()).await?;
        Ok((session, self.locking(keys, false)))
    }
}

/// Reads the events of `scope` for a decision, after taking the locks that
/// keep them valid until the transaction ends; returns the locks held.
pub(crate) async fn read_for_decision<C: GenericClient + Sync>(
    client: &C,
    locking: Locking,
    scope: &DecisionScope,
) -> Result<(LockSet, Vec<StoredEvent>), PgError> {
    let mut held = LockSet::new();
    match scope {
        DecisionScope::Query(query) => locking.keys.guard(&mut held, query),
        DecisionScope::Stream(stream) => locking.keys.lock_stream(&mut held, stream),
    }
    let read = async {
        match scope {
            DecisionScope::Query(query) => read::read(client, query, ReadOptions::forwards()).await,
            DecisionScope::Stream(stream) => read::read_stream(client, stream, StreamRevision::FIRST).await,
        }
    };
    let events = locked(client, locking.mode, &held.locks(), read).await?;
    Ok((held, events))
}

/// Reads `query` after taking its guard locks, so that no matching event can
/// become visible later below a position this read returns.
pub(crate) async fn read_consistent<C: GenericClient + Sync>(
    client: &C,
    locking: Locking,
    query: &Query,
    options: ReadOptions,
) -> Result<Vec<StoredEvent>, PgError> {
    let mut guards = LockSet::new();
    locking.keys.guard(&mut guards, query);
    locked(
        client,
        locking.mode,
        &guards.locks(),
        read::read(client, query, options),
    )
    .await
}

/// Takes `locks`, then runs `read`. Where the locks are one statement, both
/// go in one round trip, pipelined in that order: the server runs the read
/// after the locks are held, with a snapshot taken then.
async fn locked<C, T, R>(client: &C, mode: LockMode, locks: &[locks::Lock], read: R) -> Result<T, PgError>
where
    C: GenericClient + Sync,
    R: Future<Output = Result<T, PgError>>,
{
    if mode.is_one_statement() {
        let ((), value) = tokio::try_join!(biased; locks::acquire(client, mode, locks), read)?;
        Ok(value)
    } else {
        locks::acquire(client, mode, locks).await?;
        read.await
    }
}

impl EventStore for PgStore {
    type Transaction = PgDecision;

    async fn read(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        let (session, locking) = self.begin().await?;
        let events = read_consistent(session.client(), locking, query, options).await?;
        session.finish(true).await?;
        Ok(events)
    }

    async fn read_stream(&self, stream: &StreamId, from: StreamRevision) -> Result<Vec<StoredEvent>, StoreError> {
        let client = self.pool.get().await.map_err(PgError::from)?;
        Ok(read::read_stream(&**client, stream, from).await?)
    }

    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        let mut attempt = 1;
        loop {
            let (session, locking) = self.begin().await?;
            match append::append(session.client(), locking, &LockSet::new(), request.clone()).await {
                Ok(outcome) => {
                    session.finish(outcome.is_ok()).await?;
                    return outcome;
                }
                Err(transient)
                    if (transient.is_event_id_race() || transient.is_transient_conflict())
                        && attempt < APPEND_ATTEMPTS =>
                {
                    attempt += 1
                }
                Err(other) => return Err(other.into()),
            }
        }
    }

    async fn begin_decision(&self, scope: &DecisionScope) -> Result<(PgDecision, Vec<StoredEvent>), StoreError> {
        let (session, locking) = self.begin().await?;
        let (held, events) = read_for_decision(session.client(), locking, scope).await?;
        Ok((PgDecision { session, held }, events))
    }

    async fn commit_decision(&self, decision: PgDecision, request: AppendRequest) -> Result<Committed, StoreError> {
        let PgDecision { session, held } = decision;
        let keys = self.keys_with(session.client()).await?;
        let outcome = append::append(session.client(), self.locking(keys, false), &held, request).await?;
        session.finish(outcome.is_ok()).await?;
        outcome
    }
}
