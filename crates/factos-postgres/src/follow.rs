//! Following the log on PostgreSQL without blocking writers: the
//! transaction-id horizon.
//!
//! Positions come from a sequence when a writer inserts, and become visible
//! when it commits, so position 12 can be visible while 11 is still in
//! flight. Instead of taking lock keys (a follower of everything would wait
//! for every writer on each poll and hold new ones off), a follower reads
//! in the order of `(tx, position)`, where `tx` is the writing transaction's
//! id, and only rows whose transaction is older than the oldest one still
//! running (`pg_snapshot_xmin(pg_current_snapshot())`, taken in the same
//! statement). Every transaction below that horizon has ended, and every
//! later insert gets an id at or above it, so nothing can ever appear below
//! a follower's cursor: no skips, no duplicates, and writers never wait for
//! followers.
//!
//! **Delivery order** is `(tx, position)`, not position. Where it matters it
//! agrees with position order: a decision takes its guard keys before its
//! read and its transaction id only at its insert, so every event it read
//! (and every earlier event of its stream, serialised by the stream key)
//! has a smaller id than its own events. Only events that no decision
//! related to each other may swap. The exception is a store used inside an
//! application's own transaction ([`crate::PgStore::in_transaction`]) that
//! wrote other rows before appending: that transaction's id is older than
//! its append, so its events can be delivered before events it read.
//!
//! **Row locks.** With [`LockMode::RowLocks`]
//! the argument above fails: `FOR SHARE` / `FOR UPDATE` give a transaction
//! its id when it takes its first row lock, not at its insert, so a writer
//! that got its id and then waited for a decision could be ordered before
//! an append to its stream that committed first, or before the events a
//! later decision read. A follower in that mode therefore reads in
//! position order instead, after taking the key every writer touches,
//! `(*, *)`, exclusively for the read (what a consistent read of every
//! event takes): every writer in flight has committed or rolled back, and
//! every later one takes its positions after the read. Positions agree
//! with each stream's revisions (appends to one stream are serialised by
//! its key) and come after everything a decision read. The price: each
//! read waits for the writers in flight (and for the decisions they wait
//! for) and holds new writers off while it runs. Its cursors carry
//! transaction id 0; a checkpoint taken in one mode is not valid in the
//! other (the store must not change modes under a follower's checkpoint).
//!
//! **Cost and lag.** A long-running transaction anywhere in the database
//! (even one that never touches the events) holds the horizon back: the
//! followers lag behind it, they do not lose anything. Commits wake
//! followers through `LISTEN`/`NOTIFY` (sent after the commit, coalesced,
//! off the writer's path, at most one per
//! [`PgStore::with_commit_notification_interval`](crate::PgStore::with_commit_notification_interval));
//! followers in the writer's own process are woken at once. Polling every
//! [`PgStore::with_poll_interval`](crate::PgStore::with_poll_interval) is
//! the safety net, and the only mechanism behind transaction-mode poolers
//! and for stores built with [`PgStore::new`](crate::PgStore::new), which
//! has no connection config to listen with.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use factos::{
    Checkpoints, CommitSignal, Cursor, Delivered, EffectKey, EventId, Follow, FollowBatch, ParkedEffect, Position,
    Query, StoreError,
};
use factos_sql::{Bounds, Dialect};
use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_postgres::types::Type;
use tokio_postgres::{AsyncMessage, Config, GenericClient, NoTls};

use crate::error::PgError;
use crate::locks::{self, LockMode, LockSet, Locking};
use crate::store::PgStore;
use crate::store::read::{COLUMNS, Params, event_from_row, to_sql};

/// The default of [`PgStore::with_poll_interval`].
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The default of [`PgStore::with_commit_notification_interval`]: the
/// shortest time between two `NOTIFY`s of one store.
///
/// [`PgStore::with_commit_notification_interval`]: crate::PgStore::with_commit_notification_interval
pub const DEFAULT_NOTIFY_INTERVAL: Duration = Duration::from_millis(20);

/// How long a follower woken by a commit waits for more before it reads.
const DEFAULT_GATHER: Duration = Duration::from_millis(20);

/// What the clones of one store share for following the log.
#[derive(Debug)]
pub(crate) struct FollowState {
    pub(crate) commits: CommitSignal,
    /// Asks the notifier task to announce commits.
    pending: Arc<Notify>,
    notifier: AtomicBool,
    listener: AtomicBool,
    /// How to open the listening connection, when the store was built from
    /// a config.
    pub(crate) config: Option<Config>,
    pub(crate) poll_interval: Duration,
    /// How long a woken follower waits for more commits before it reads.
    pub(crate) gather: Duration,
}

impl FollowState {
    pub(crate) fn new(config: Option<Config>, poll_interval: Duration) -> Self {
        Self {
            commits: CommitSignal::new(),
            pending: Arc::new(Notify::new()),
            notifier: AtomicBool::new(false),
            listener: AtomicBool::new(false),
            config,
            poll_interval,
            gather: DEFAULT_GATHER,
        }
    }
}

impl Drop for FollowState {
    fn drop(&mut self) {
        // Lets the notifier task see that the store is gone.
        self.pending.notify_one();
    }
}

/// Examines up to `limit` events after `after` in `(tx, position)` order
/// below the horizon, and returns those matching `query`.
pub(crate) async fn read_after<C: GenericClient + Sync>(
    client: &C,
    query: &Query,
    after: Option<Cursor>,
    limit: usize,
) -> Result<FollowBatch, PgError> {
    let (commit, position) = match after {
        Some(cursor) => (cursor.commit(), to_sql("position", cursor.position().value())?),
        None => (0, 0),
    };
    let commit = commit.to_string();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let window = client
        .query_typed(
            include_str!("sql/follow_window.sql"),
            &[(&commit, Type::TEXT), (&position, Type::INT8), (&limit, Type::INT8)],
        )
        .await?;
    let Some(last) = window.last() else {
        return Ok(FollowBatch::default());
    };
    let end_commit: i64 = last.try_get(0)?;
    let end_position: i64 = last.try_get(1)?;
    let (mut low, mut high) = (i64::MAX, i64::MIN);
    for row in &window {
        let p: i64 = row.try_get(1)?;
        low = low.min(p);
        high = high.max(p);
    }
    // The rows between the cursor and the window's end are fixed: all their
    // transactions ended before the window was read.
    let mut params = vec![
        factos_sql::SqlValue::Text(commit),
        factos_sql::SqlValue::Integer(position),
        factos_sql::SqlValue::Text(end_commit.to_string()),
        factos_sql::SqlValue::Integer(end_position),
    ];
    let filter = factos_sql::matching(
        query,
        Bounds {
            min: Some(low),
            max: Some(high),
        },
        Dialect::Postgres,
        &mut params,
    )?;
    let sql = format!(
        "SELECT {COLUMNS}, tx::text::int8 FROM events \
         WHERE (tx, position) > ($1::text::xid8, $2) AND (tx, position) <= ($3::text::xid8, $4) AND {filter} \
         ORDER BY tx, position"
    );
    let rows = client.query_typed(&sql, &Params(params).typed()).await?;
    let events = rows
        .iter()
        .map(|row| {
            let tx: i64 = row.try_get(10)?;
            let record = event_from_row(row)?;
            Ok(Delivered {
                cursor: Cursor::new(u64::try_from(tx).unwrap_or(0), record.position),
                record,
            })
        })
        .collect::<Result<Vec<_>, PgError>>()?;
    Ok(FollowBatch {
        events,
        examined: window.len(),
        end: Some(Cursor::new(
            u64::try_from(end_commit).unwrap_or(0),
            Position::new(u64::try_from(end_position).unwrap_or(0)),
        )),
    })
}

/// [`read_after`] for [`LockMode::RowLocks`](crate::LockMode::RowLocks):
/// the next window of at most `limit` events after `after` in position
/// order, read while holding the key every writer touches (see the module
/// docs), and those of them matching `query`.
async fn read_after_locked<C: GenericClient + Sync>(
    client: &C,
    locking: Locking,
    query: &Query,
    after: Option<Cursor>,
    limit: usize,
) -> Result<FollowBatch, PgError> {
    let mut guards = LockSet::new();
    locking.keys.guard(&mut guards, &Query::all());
    locks::acquire(client, locking.mode, &locks::plan(locking.mode, &guards.locks()), None).await?;
    let from = match after {
        Some(cursor) => to_sql("position", cursor.position().value())?,
        None => 0,
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let window = client
        .query_typed(
            "SELECT count(*), max(position) FROM \
             (SELECT position FROM events WHERE position > $1 ORDER BY position LIMIT $2) AS w",
            &[(&from, Type::INT8), (&limit, Type::INT8)],
        )
        .await?;
    let (examined, end): (i64, Option<i64>) = match window.first() {
        Some(row) => (row.try_get(0)?, row.try_get(1)?),
        None => (0, None),
    };
    let Some(end) = end else {
        return Ok(FollowBatch::default());
    };
    let mut params = vec![factos_sql::SqlValue::Integer(from), factos_sql::SqlValue::Integer(end)];
    let filter = factos_sql::matching(
        query,
        Bounds {
            min: Some(from + 1),
            max: Some(end),
        },
        Dialect::Postgres,
        &mut params,
    )?;
    let sql =
        format!("SELECT {COLUMNS} FROM events WHERE position > $1 AND position <= $2 AND {filter} ORDER BY position");
    let rows = client.query_typed(&sql, &Params(params).typed()).await?;
    let events = rows
        .iter()
        .map(|row| {
            let record = event_from_row(row)?;
            Ok(Delivered {
                cursor: Cursor::new(0, record.position),
                record,
            })
        })
        .collect::<Result<Vec<_>, PgError>>()?;
    Ok(FollowBatch {
        events,
        examined: usize::try_from(examined).unwrap_or(0),
        end: Some(Cursor::new(0, Position::new(u64::try_from(end).unwrap_or(0)))),
    })
}

impl PgStore {
    /// The next transaction id to be assigned: every transaction that
    /// committed before now has a smaller one.
    pub(crate) async fn mark(&self) -> Result<u64, PgError> {
        let client = crate::session::get(self.pool()).await?;
        let row = client
            .query_typed("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::int8", &[])
            .await?;
        let mark: Option<i64> = row.first().map(|r| r.try_get(0)).transpose()?;
        Ok(mark.map_or(0, |m| u64::try_from(m).unwrap_or(0)))
    }

    /// Whether the followers' horizon passed `mark`: every transaction
    /// below it ended.
    pub(crate) async fn settled_at(&self, mark: u64) -> Result<bool, PgError> {
        let client = crate::session::get(self.pool()).await?;
        let mark = i64::try_from(mark).unwrap_or(i64::MAX);
        let row = client
            .query_typed(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8 >= $1",
                &[(&mark, Type::INT8)],
            )
            .await?;
        Ok(row.first().map(|r| r.try_get(0)).transpose()?.unwrap_or(true))
    }

    /// How long the oldest transaction still running in the cluster that
    /// holds a transaction id has been open: followers lag behind it (they
    /// cannot read past it), so this is the lag to watch and alert on.
    /// `None` when no such transaction runs.
    ///
    /// It reads `pg_stat_activity`; a role without `pg_read_all_stats`
    /// sees only its own sessions' times.
    ///
    /// # Errors
    ///
    /// [`PgError::Postgres`] when the view cannot be read.
    pub async fn horizon_age(&self) -> Result<Option<Duration>, PgError> {
        let client = crate::session::get(self.pool()).await?;
        let row = client.query_typed(include_str!("sql/horizon_age.sql"), &[]).await?;
        let seconds: Option<f64> = row.first().map(|r| r.try_get(0)).transpose()?.flatten();
        Ok(seconds.map(|s| Duration::from_secs_f64(s.max(0.0))))
    }

    /// Records a commit of this store: wakes this process's followers at
    /// once and asks the notifier to tell other processes'.
    pub(crate) fn committed(&self) {
        let state = self.follow_state();
        state.commits.bump();
        if self.notifies_commits() {
            self.start_notifier();
            state.pending.notify_one();
        }
    }

    /// Starts, once per store, the task that sends `NOTIFY` after commits:
    /// outside the writers' transactions (a `NOTIFY` inside one would take
    /// a database-wide lock at commit), one at a time, at least the store's
    /// notification interval apart, coalescing the commits in between (the
    /// first commit after a quiet interval is announced at once).
    fn start_notifier(&self) {
        let state = self.follow_state();
        if state.notifier.swap(true, Ordering::AcqRel) {
            return;
        }
        let pending = Arc::clone(&state.pending);
        let weak: Weak<FollowState> = Arc::downgrade(state);
        let store = self.clone_without_follow();
        drop(tokio::spawn(async move {
            loop {
                pending.notified().await;
                if weak.upgrade().is_none() {
                    return;
                }
                if let Err(error) = store.notify().await {
                    tracing::debug!(%error, "could not announce a commit; followers will poll");
                }
                tokio::time::sleep(store.notification_interval()).await;
            }
        }));
    }

    /// Sends one `NOTIFY` on this schema's channel, in one round trip: the
    /// channel is derived from the schema, which the commit being
    /// announced has already resolved.
    ///
    /// A `NOTIFY` needs a transaction id, so its commit writes a commit
    /// record; with `synchronous_commit` off for that transaction only, the
    /// commit does not wait for its WAL flush. Nothing is lost by that: a
    /// notification only wakes followers, which read the log itself (and
    /// poll when one goes missing), and the commit it announces was
    /// flushed before its writer was answered.
    async fn notify(&self) -> Result<(), PgError> {
        let Some(keys) = self.cached_keys() else {
            return Ok(());
        };
        let client = crate::session::get(self.pool()).await?;
        // The channel is `factos_` and 16 hex digits: nothing to quote.
        client
            .batch_execute(&format!(
                "BEGIN; SET LOCAL synchronous_commit = off; SELECT pg_notify('{}', ''); COMMIT",
                keys.channel()
            ))
            .await?;
        Ok(())
    }

    /// Starts, once per store, the task that `LISTEN`s for other processes'
    /// commits on a connection of its own, reconnecting after failures.
    fn start_listener(&self) {
        let state = self.follow_state();
        let Some(config) = state.config.clone() else {
            return;
        };
        if state.listener.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(state);
        let store = self.clone_without_follow();
        drop(tokio::spawn(async move {
            while weak.upgrade().is_some() {
                if let Err(error) = listen(&store, &config, &weak).await {
                    tracing::debug!(%error, "commit listener failed; followers poll meanwhile");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
    }
}

/// Listens until the connection fails or the store is gone.
async fn listen(store: &PgStore, config: &Config, weak: &Weak<FollowState>) -> Result<(), PgError> {
    let channel = {
        let (session, locking) = store.begin(false).await?;
        session.end(Ok(())).await?;
        locking.keys.channel()
    };
    let (client, mut connection) = config.connect(NoTls).await?;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {channel}");
    let listening = client.batch_execute(&statement);
    tokio::pin!(listening);
    // The connection's messages must be polled for the LISTEN to complete.
    loop {
        tokio::select! {
            done = &mut listening => { done?; break; }
            message = messages.next() => match message {
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error.into()),
                None => return Ok(()),
            },
        }
    }
    while let Some(message) = messages.next().await {
        let Some(state) = weak.upgrade() else {
            return Ok(());
        };
        match message? {
            AsyncMessage::Notification(_) => state.commits.bump(),
            _ => continue,
        }
    }
    Ok(())
}

impl Follow for PgStore {
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "postgres", operation = "read_after", query_items = query.items().len(), rows, code, error))]
    async fn read_after(&self, query: &Query, after: Option<Cursor>, limit: usize) -> Result<FollowBatch, StoreError> {
        self.query_limits().check(query)?;
        let read = async {
            if self.lock_mode() == LockMode::RowLocks {
                let (session, locking) = self.begin(false).await?;
                let batch = read_after_locked(session.client(), locking, query, after, limit).await;
                return session.end(batch).await;
            }
            if self.search_path().is_none() && self.cached_keys().is_some() {
                // The connection's own schema, already checked: two
                // statements in autocommit, no transaction needed (the
                // horizon and the rows it bounds are one statement).
                let client = crate::session::get(self.pool()).await?;
                return read_after(&**client, query, after, limit).await;
            }
            let (session, _) = self.begin(false).await?;
            let batch = read_after(session.client(), query, after, limit).await;
            session.end(batch).await
        };
        crate::store::traced(read.await.map_err(StoreError::from), |batch| batch.events.len())
    }

    fn commit_count(&self) -> u64 {
        self.follow_state().commits.count()
    }

    async fn commit_mark(&self) -> Result<u64, StoreError> {
        Ok(self.mark().await?)
    }

    async fn settled(&self, mark: u64) -> Result<bool, StoreError> {
        Ok(self.settled_at(mark).await?)
    }

    async fn wait_for_commit(&self, seen: u64) {
        self.start_listener();
        let state = self.follow_state();
        tokio::select! {
            () = state.commits.changed_since(seen) => {
                // Gather the commits of the next moment into one read:
                // under a steady stream of commits a follower reads a few
                // events at a time instead of one read per commit.
                tokio::time::sleep(state.gather).await;
            }
            () = tokio::time::sleep(state.poll_interval) => {}
        }
    }
}

impl Checkpoints for PgStore {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Cursor>, StoreError> {
        let load = async {
            let (session, _) = self.begin(false).await?;
            let cursor = load_checkpoint(session.client(), name).await;
            session.end(cursor).await
        };
        Ok(load.await?)
    }

    async fn save_checkpoint(&self, name: &str, cursor: Cursor) -> Result<(), StoreError> {
        let save = async {
            let (session, _) = self.begin(false).await?;
            let saved = save_checkpoint(session.client(), name, cursor).await;
            session.end(saved).await
        };
        Ok(save.await?)
    }

    async fn park_effect(&self, parked: ParkedEffect) -> Result<(), StoreError> {
        let park = async {
            let (session, _) = self.begin(false).await?;
            let position = to_sql("position", parked.position().value())?;
            let cursor = parked.cursor.to_string();
            let done = session
                .client()
                .execute_typed(
                    include_str!("sql/park_effect.sql"),
                    &[
                        (&parked.runner, Type::TEXT),
                        (parked.key.event.as_uuid(), Type::UUID),
                        (&i64::from(parked.key.index), Type::INT8),
                        (&position, Type::INT8),
                        (&i64::from(parked.attempts), Type::INT8),
                        (&parked.error, Type::TEXT),
                        (&cursor, Type::TEXT),
                    ],
                )
                .await
                .map(drop)
                .map_err(PgError::from);
            session.end(done).await
        };
        Ok(park.await?)
    }

    async fn parked_effects(&self, runner: &str) -> Result<Vec<ParkedEffect>, StoreError> {
        let load = async {
            let (session, _) = self.begin(false).await?;
            let rows = session
                .client()
                .query_typed(
                    "SELECT event_id, effect_index, cursor, attempts, error, retry_requested_at IS NOT NULL \
                     FROM factos_parked_effects WHERE runner = $1 ORDER BY parked_at, position, effect_index",
                    &[(&runner, Type::TEXT)],
                )
                .await
                .map_err(PgError::from);
            session.end(rows).await
        };
        let rows = load.await?;
        rows.iter()
            .map(|row| {
                let id: uuid::Uuid = row.try_get(0)?;
                let index: i64 = row.try_get(1)?;
                let cursor: String = row.try_get(2)?;
                let attempts: i64 = row.try_get(3)?;
                Ok(ParkedEffect {
                    runner: runner.to_owned(),
                    key: EffectKey {
                        event: EventId::from_uuid(id),
                        index: u32::try_from(index).unwrap_or(u32::MAX),
                    },
                    cursor: cursor.parse().map_err(|source| PgError::CorruptParkedEffect {
                        runner: runner.to_owned(),
                        source,
                    })?,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    error: row.try_get(4)?,
                    retry_requested: row.try_get(5)?,
                })
            })
            .collect::<Result<_, PgError>>()
            .map_err(StoreError::from)
    }

    async fn retry_parked(&self, runner: &str, key: EffectKey) -> Result<bool, StoreError> {
        self.change_parked(
            "UPDATE factos_parked_effects SET retry_requested_at = COALESCE(retry_requested_at, clock_timestamp()) \
             WHERE runner = $1 AND event_id = $2 AND effect_index = $3",
            runner,
            key,
        )
        .await
    }

    async fn discard_parked(&self, runner: &str, key: EffectKey) -> Result<bool, StoreError> {
        self.change_parked(
            "DELETE FROM factos_parked_effects WHERE runner = $1 AND event_id = $2 AND effect_index = $3",
            runner,
            key,
        )
        .await
    }
}

impl PgStore {
    /// Runs `statement` on `runner`'s parked effect `key` (`$1`, `$2`,
    /// `$3`): whether it touched a row.
    async fn change_parked(&self, statement: &str, runner: &str, key: EffectKey) -> Result<bool, StoreError> {
        let (session, _) = self.begin(false).await?;
        let event = *key.event.as_uuid();
        let index = i64::from(key.index);
        let changed = session
            .client()
            .execute_typed(
                statement,
                &[(&runner, Type::TEXT), (&event, Type::UUID), (&index, Type::INT8)],
            )
            .await
            .map_err(PgError::from);
        Ok(session.end(changed).await? > 0)
    }
}

/// The cursor stored under `name`, if any, in the caller's transaction.
pub(crate) async fn load_checkpoint<C: GenericClient + Sync>(
    client: &C,
    name: &str,
) -> Result<Option<Cursor>, PgError> {
    let rows = client
        .query_typed(
            "SELECT cursor FROM factos_checkpoints WHERE name = $1",
            &[(&name, Type::TEXT)],
        )
        .await?;
    rows.first()
        .map(|row| row.try_get::<_, String>(0)?.parse().map_err(PgError::CorruptCheckpoint))
        .transpose()
}

/// Stores `cursor` under `name` in the caller's transaction.
pub(crate) async fn save_checkpoint<C: GenericClient + Sync>(
    client: &C,
    name: &str,
    cursor: Cursor,
) -> Result<(), PgError> {
    let text = cursor.to_string();
    client
        .execute_typed(
            include_str!("sql/save_checkpoint.sql"),
            &[(&name, Type::TEXT), (&text, Type::TEXT)],
        )
        .await?;
    Ok(())
}
