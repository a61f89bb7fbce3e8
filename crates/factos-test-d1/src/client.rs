//! [`D1Client`]: a native store that forwards every contract call to the
//! test worker's `factos-d1` store.

use std::sync::Arc;
use std::time::Duration;

use factos::{
    AppendRequest, BatchOutcome, Checkpoints, CommitSignal, Committed, Cursor, DecisionScope, EffectKey, EventStore,
    Follow, FollowBatch, ParkedEffect, Projection, ProjectionBatch, Query, ReadModelStore, ReadOptions, StoreError,
    StoredEvent, StreamId, StreamRevision,
};

use crate::harness::D1Worker;
use crate::wire::{Answer, Call, Op, WireAppend, WireParked, WireParkedKey, WireQuery, WireRecord};

/// The store of one D1 database of the test worker, over HTTP.
#[derive(Debug, Clone)]
pub struct D1Client {
    http: reqwest::Client,
    url: String,
    db: u32,
    /// Commits made through this client (and its clones).
    commits: Arc<CommitSignal>,
}

/// How often a waiting follower of the client reads again: the worker
/// cannot call back, so the client polls (`factos-d1` itself polls the same
/// way inside a worker).
const POLL_INTERVAL: Duration = Duration::from_millis(50);

fn records(records: Vec<WireRecord>) -> Result<Vec<StoredEvent>, StoreError> {
    records
        .iter()
        .map(|r| r.to_record().map_err(StoreError::backend))
        .collect()
}

impl D1Client {
    /// The store of database `db` of the worker at `url` (the values a
    /// client's [`url`](D1Client::url) and [`db`](D1Client::db) gave), as
    /// another process reaches it.
    pub fn attach(url: &str, db: u32) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: format!("{}/call", url.trim_end_matches('/')),
            db,
            commits: Arc::default(),
        }
    }

    /// The worker's base URL.
    pub fn url(&self) -> &str {
        self.url.trim_end_matches("/call")
    }

    /// The store's D1 database (binding `DB{db}`).
    pub fn db(&self) -> u32 {
        self.db
    }

    /// The counts of the tally read model ([`D1Tally`]), empty when it does
    /// not exist yet.
    ///
    /// # Errors
    ///
    /// When the worker cannot be reached or D1 fails.
    pub async fn tallies(&self) -> Result<std::collections::BTreeMap<String, i64>, StoreError> {
        match self.call(Op::Tallies, None).await? {
            Answer::Tallies { counts } => Ok(counts.into_iter().collect()),
            other => Err(StoreError::backend(format!("expected tallies, got {other:?}"))),
        }
    }

    async fn projected(&self, op: Op) -> Result<BatchOutcome, StoreError> {
        match self.call(op, None).await? {
            Answer::Projected(outcome) => Ok(outcome.to_outcome()),
            other => Err(StoreError::backend(format!("expected a batch outcome, got {other:?}"))),
        }
    }

    /// A store on a fresh, migrated D1 database of `worker`.
    ///
    /// # Errors
    ///
    /// When the worker cannot be reached or migrating fails.
    pub async fn fresh(worker: &D1Worker) -> Result<Self, StoreError> {
        let client = Self::attach(worker.url(), worker.fresh_database());
        match client.call(Op::Migrate, None).await? {
            Answer::Migrated { .. } => Ok(client),
            other => Err(StoreError::backend(format!("migrate answered {other:?}"))),
        }
    }

    /// Sends `op` and returns the answer, turning a failure into the store
    /// error it stands for (`request`: the append it was for).
    async fn call(&self, op: Op, request: Option<&AppendRequest>) -> Result<Answer, StoreError> {
        let call = Call { db: self.db, op };
        let response = self
            .http
            .post(&self.url)
            .json(&call)
            .send()
            .await
            .map_err(StoreError::backend)?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(StoreError::backend(format!("the worker answered {status}: {body}")));
        }
        match response.json::<Answer>().await.map_err(StoreError::backend)? {
            Answer::Failed(failure) => Err(failure.into_error(request)),
            answer => Ok(answer),
        }
    }

    async fn events(&self, op: Op) -> Result<Vec<StoredEvent>, StoreError> {
        match self.call(op, None).await? {
            Answer::Events { events } => records(events),
            other => Err(StoreError::backend(format!("expected events, got {other:?}"))),
        }
    }

    async fn committed(&self, request: AppendRequest, decision: bool) -> Result<Committed, StoreError> {
        let wire = WireAppend::from_request(&request).map_err(StoreError::backend)?;
        let op = if decision {
            Op::CommitDecision(wire)
        } else {
            Op::Append(wire)
        };
        match self.call(op, Some(&request)).await? {
            Answer::Committed {
                records: wire,
                revision,
            } => Ok(Committed {
                records: records(wire)?,
                revision: StreamRevision::new(revision),
            }),
            other => Err(StoreError::backend(format!("expected a commit, got {other:?}"))),
        }
    }
}

fn wire_query(query: &Query) -> Result<WireQuery, StoreError> {
    WireQuery::from_query(query).map_err(StoreError::backend)
}

impl EventStore for D1Client {
    type Transaction = ();

    async fn read(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        self.events(Op::Read {
            query: wire_query(query)?,
            from: options.from.map(|p| p.value()),
            limit: options.limit,
            backwards: options.direction == factos::Direction::Backwards,
            // The worker is 32-bit wasm: a budget past 4 GiB is no budget
            // it could reach.
            max_bytes: options.max_bytes.map(|bytes| bytes.min(u32::MAX as usize)),
        })
        .await
    }

    async fn read_stream(&self, stream: &StreamId, from: StreamRevision) -> Result<Vec<StoredEvent>, StoreError> {
        self.events(Op::ReadStream {
            stream: stream.as_str().to_owned(),
            from: from.value(),
            limit: None,
        })
        .await
    }

    async fn read_stream_page(
        &self,
        stream: &StreamId,
        from: StreamRevision,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.events(Op::ReadStream {
            stream: stream.as_str().to_owned(),
            from: from.value(),
            limit: Some(u64::try_from(limit).unwrap_or(u64::MAX)),
        })
        .await
    }

    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        self.committed(request, false).await
    }

    async fn begin_decision(&self, scope: &DecisionScope) -> Result<((), Vec<StoredEvent>), StoreError> {
        let op = match scope {
            DecisionScope::Query(query) => Op::BeginDecision {
                query: Some(wire_query(query)?),
                stream: None,
            },
            DecisionScope::Stream(stream) => Op::BeginDecision {
                query: None,
                stream: Some(stream.as_str().to_owned()),
            },
        };
        Ok(((), self.events(op).await?))
    }

    async fn abandon_decision(&self, (): ()) {}

    async fn commit_decision(&self, (): (), request: AppendRequest) -> Result<Committed, StoreError> {
        self.committed(request, true).await
    }
}

impl Follow for D1Client {
    async fn read_after(&self, query: &Query, after: Option<Cursor>, limit: usize) -> Result<FollowBatch, StoreError> {
        let op = Op::ReadAfter {
            query: wire_query(query)?,
            after: after.map(|c| c.to_string()),
            limit,
        };
        match self.call(op, None).await? {
            Answer::Batch { events, end, examined } => {
                crate::wire::to_batch(events, end, examined).map_err(StoreError::backend)
            }
            other => Err(StoreError::backend(format!("expected a follow batch, got {other:?}"))),
        }
    }

    fn commit_count(&self) -> u64 {
        self.commits.count()
    }

    async fn commit_mark(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn settled(&self, _mark: u64) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn wait_for_commit(&self, seen: u64) {
        let _ = tokio::time::timeout(POLL_INTERVAL, self.commits.changed_since(seen)).await;
    }
}

impl Checkpoints for D1Client {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Cursor>, StoreError> {
        match self.call(Op::LoadCheckpoint { name: name.to_owned() }, None).await? {
            Answer::Checkpoint { cursor } => crate::wire::cursor(&cursor).map_err(StoreError::backend),
            other => Err(StoreError::backend(format!("expected a checkpoint, got {other:?}"))),
        }
    }

    async fn save_checkpoint(&self, name: &str, cursor: Cursor) -> Result<(), StoreError> {
        let op = Op::SaveCheckpoint {
            name: name.to_owned(),
            cursor: cursor.to_string(),
        };
        match self.call(op, None).await? {
            Answer::Done => Ok(()),
            other => Err(StoreError::backend(format!("expected done, got {other:?}"))),
        }
    }

    async fn park_effect(&self, parked: ParkedEffect) -> Result<(), StoreError> {
        let op = Op::ParkEffect(WireParked::from_parked(&parked));
        match self.call(op, None).await? {
            Answer::Done => Ok(()),
            other => Err(StoreError::backend(format!("expected done, got {other:?}"))),
        }
    }

    async fn parked_effects(&self, runner: &str) -> Result<Vec<ParkedEffect>, StoreError> {
        match self
            .call(
                Op::ParkedEffects {
                    runner: runner.to_owned(),
                },
                None,
            )
            .await?
        {
            Answer::Parked { effects } => effects
                .iter()
                .map(|parked| parked.to_parked().map_err(StoreError::backend))
                .collect(),
            other => Err(StoreError::backend(format!("expected parked effects, got {other:?}"))),
        }
    }

    async fn retry_parked(&self, runner: &str, key: EffectKey) -> Result<bool, StoreError> {
        changed(
            self.call(Op::RetryParked(WireParkedKey::new(runner, key)), None)
                .await?,
        )
    }

    async fn discard_parked(&self, runner: &str, key: EffectKey) -> Result<bool, StoreError> {
        changed(
            self.call(Op::DiscardParked(WireParkedKey::new(runner, key)), None)
                .await?,
        )
    }
}

/// What a change of a parked effect answered.
fn changed(answer: Answer) -> Result<bool, StoreError> {
    match answer {
        Answer::Changed { changed } => Ok(changed),
        other => Err(StoreError::backend(format!("expected a change, got {other:?}"))),
    }
}

/// The tally read model of the projection cases (see
/// `factos_conformance::tally_sql`), kept by the worker's `factos-d1` store:
/// its statements are built in the worker, and each batch runs there as one
/// D1 batch behind the checkpoint's compare-and-set.
#[derive(Debug, Clone, Copy)]
pub struct D1Tally {
    /// Whether it fails on a poisoned event.
    pub refuse_poison: bool,
}

impl Projection for D1Tally {
    type Event = StoredEvent;
    fn name(&self) -> &str {
        "tally"
    }
    fn query(&self) -> Query {
        Query::all()
    }
}

impl ReadModelStore<D1Tally> for D1Client {
    async fn commit_batch(
        &self,
        tally: D1Tally,
        batch: ProjectionBatch<StoredEvent>,
    ) -> (Option<D1Tally>, Result<BatchOutcome, StoreError>) {
        let op = Op::ProjectTally {
            refuse_poison: tally.refuse_poison,
            after: batch.after.map(|c| c.to_string()),
            end: batch.end.to_string(),
            // The tally's events are whole stored records (`StoredCodec`).
            events: batch
                .events
                .iter()
                .map(|d| (d.cursor.to_string(), WireRecord::from_record(&d.record.event)))
                .collect(),
        };
        (Some(tally), self.projected(op).await)
    }

    async fn reset_projection(&self, tally: D1Tally) -> (Option<D1Tally>, Result<BatchOutcome, StoreError>) {
        (Some(tally), self.projected(Op::ResetTally).await)
    }
}
