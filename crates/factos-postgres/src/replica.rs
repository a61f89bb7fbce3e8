//! Readers on a hot standby: [`PgReplica`].
//!
//! A standby replays the primary's WAL, so it holds the same rows with the
//! same transaction ids, and its snapshots know which of the primary's
//! transactions were still running at the replayed point: a transaction id
//! the standby has not seen yet is above every one it has (ids are
//! assigned in order, and replaying any id marks every smaller unseen one
//! as running). So the followers' horizon works on a standby as on the
//! primary: below `pg_snapshot_xmin(pg_current_snapshot())` every
//! transaction has ended, and nothing can appear there later.
//!
//! What a standby cannot do, and a replica therefore never does: take a
//! lock that means anything to the primary, write (checkpoints and parked
//! effects go to the primary), `LISTEN` (its followers poll). Decisions
//! and conditions run on the primary only; [`PgReplica`] has none.

use std::time::{Duration, Instant};

use factos::{
    Checkpoints, Cursor, EffectKey, Follow, FollowBatch, ParkedEffect, Query, ReadOptions, StoreError, StoredEvent,
};
use tokio_postgres::types::Type;

use crate::config::IntoConfig;
use crate::error::{Limit, PgError};
use crate::limits::PoolOptions;
use crate::locks::LockMode;
use crate::store::{PgStore, read};

/// A hot standby of a [`PgStore`]'s primary, for everything that only
/// reads the log: subscriptions, projections' event sources, effect
/// runners' event sources, and reads for views.
///
/// - **Followers** ([`Follow`]) read the standby up to its settled
///   transaction-id horizon, exactly as on the primary: each event once, in
///   the same `(transaction, position)` order, never one below a cursor
///   later. They lag by the standby's replay delay. A follower's
///   [`commit_mark`](Follow::commit_mark) is taken on the primary, so a
///   catch-up returns only once the standby has replayed every commit the
///   primary had made at the call.
/// - **Checkpoints and parked effects** ([`Checkpoints`]) are kept on the
///   primary, so a runner can move between the primary and any replica.
/// - **Reads** ([`PgReplica::read`]) return the events of transactions
///   below the standby's horizon: a set that only grows at its end in
///   transaction order. It may be stale; it never shows a commit the
///   primary has not made.
/// - **Read your writes**: [`PgReplica::wait_for_primary`] waits until the
///   standby has replayed everything the primary had written when called
///   (every append acknowledged before).
///
/// Requires [`LockMode::Advisory`] (the default) or
/// [`LockMode::TableLock`]: followers in [`LockMode::RowLocks`] take row
/// locks, which a standby refuses.
#[derive(Debug, Clone)]
pub struct PgReplica {
    standby: PgStore,
    primary: PgStore,
}

/// How often [`PgReplica::wait_for_primary`] looks at the standby's replay.
const REPLAY_POLL: Duration = Duration::from_millis(5);

impl PgStore {
    /// A replica of this store on the hot standby `target` (a URL, a
    /// key-value string or a [`Config`](crate::Config); with several hosts,
    /// add `target_session_attrs=standby` or `prefer-standby`), in the same
    /// schema, with a pool as [`PoolOptions::default`] says.
    ///
    /// # Errors
    ///
    /// [`PgError::InvalidConfig`] or [`PgError::BuildPool`] as for
    /// [`PgStore::connect`]; [`PgError::ReplicaNeedsAdvisoryLocks`] in
    /// [`LockMode::RowLocks`].
    pub fn replica(&self, target: impl IntoConfig) -> Result<PgReplica, PgError> {
        self.replica_with(target, PoolOptions::default())
    }

    /// As [`PgStore::replica`], with the standby's pool built as `options`
    /// say.
    ///
    /// # Errors
    ///
    /// As [`PgStore::replica`].
    pub fn replica_with(&self, target: impl IntoConfig, options: PoolOptions) -> Result<PgReplica, PgError> {
        if self.lock_mode() == LockMode::RowLocks {
            return Err(PgError::ReplicaNeedsAdvisoryLocks);
        }
        let standby = PgStore::connect_with(target, options)?;
        Ok(PgReplica {
            standby: self.on_pool(standby.pool().clone()),
            primary: self.clone(),
        })
    }
}

impl PgReplica {
    /// The events matching `query` as `options` say, among those of
    /// transactions below the standby's horizon.
    ///
    /// # Errors
    ///
    /// As [`factos::EventStore::read`].
    pub async fn read(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        self.standby.query_limits().check(query)?;
        let read = async {
            let (session, _) = self.standby.begin(false).await?;
            let events = read::read_settled(session.client(), query, options).await;
            session.end(events).await
        };
        Ok(read.await?)
    }

    /// Waits until the standby has replayed everything the primary had
    /// written when this was called, so that every append acknowledged
    /// before the call is visible to reads and followers on the replica.
    ///
    /// # Errors
    ///
    /// [`PgError::Timeout`] when the standby has not caught up within
    /// `timeout`; [`PgError`] when either server cannot be reached.
    pub async fn wait_for_primary(&self, timeout: Duration) -> Result<(), PgError> {
        let started = Instant::now();
        let written: String = {
            let client = crate::session::get(self.primary.pool()).await?;
            client
                .query_typed("SELECT pg_current_wal_lsn()::text", &[])
                .await?
                .first()
                .ok_or(PgError::UnexpectedAnswer("no WAL position"))?
                .try_get(0)?
        };
        let client = crate::session::get(self.standby.pool()).await?;
        loop {
            let replayed: bool = client
                .query_typed(
                    "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, true)",
                    &[(&written, Type::TEXT)],
                )
                .await?
                .first()
                .ok_or(PgError::UnexpectedAnswer("no replay position"))?
                .try_get(0)?;
            if replayed {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(PgError::Timeout {
                    limit: Limit::Replay,
                    after: timeout,
                    source: None,
                });
            }
            tokio::time::sleep(REPLAY_POLL).await;
        }
    }

    /// The store on the primary this replica follows.
    pub fn primary(&self) -> &PgStore {
        &self.primary
    }
}

impl Follow for PgReplica {
    async fn read_after(&self, query: &Query, after: Option<Cursor>, limit: usize) -> Result<FollowBatch, StoreError> {
        self.standby.read_after(query, after, limit).await
    }

    fn commit_count(&self) -> u64 {
        self.standby.commit_count()
    }

    async fn commit_mark(&self) -> Result<u64, StoreError> {
        self.primary.commit_mark().await
    }

    async fn settled(&self, mark: u64) -> Result<bool, StoreError> {
        self.standby.settled(mark).await
    }

    async fn wait_for_commit(&self, seen: u64) {
        self.standby.wait_for_commit(seen).await;
    }
}

impl Checkpoints for PgReplica {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Cursor>, StoreError> {
        self.primary.load_checkpoint(name).await
    }

    async fn save_checkpoint(&self, name: &str, cursor: Cursor) -> Result<(), StoreError> {
        self.primary.save_checkpoint(name, cursor).await
    }

    async fn park_effect(&self, parked: ParkedEffect) -> Result<(), StoreError> {
        self.primary.park_effect(parked).await
    }

    async fn parked_effects(&self, runner: &str) -> Result<Vec<ParkedEffect>, StoreError> {
        self.primary.parked_effects(runner).await
    }

    async fn retry_parked(&self, runner: &str, key: EffectKey) -> Result<bool, StoreError> {
        self.primary.retry_parked(runner, key).await
    }

    async fn discard_parked(&self, runner: &str, key: EffectKey) -> Result<bool, StoreError> {
        self.primary.discard_parked(runner, key).await
    }
}
