//! [`D1Client`]: a native store that forwards every contract call to the
//! test worker's `factos-d1` store.

use factos::{
    AppendRequest, Committed, DecisionScope, EventStore, Query, ReadOptions, StoreError, StoredEvent, StreamId,
    StreamRevision,
};

use crate::harness::D1Worker;
use crate::wire::{Answer, Call, Op, WireAppend, WireQuery, WireRecord};

/// The store of one D1 database of the test worker, over HTTP.
#[derive(Debug, Clone)]
pub struct D1Client {
    http: reqwest::Client,
    url: String,
    db: u32,
}

fn records(records: Vec<WireRecord>) -> Result<Vec<StoredEvent>, StoreError> {
    records
        .iter()
        .map(|r| r.to_record().map_err(StoreError::backend))
        .collect()
}

impl D1Client {
    /// A store on a fresh, migrated D1 database of `worker`.
    ///
    /// # Errors
    ///
    /// When the worker cannot be reached or migrating fails.
    pub async fn fresh(worker: &D1Worker) -> Result<Self, StoreError> {
        let client = Self {
            http: reqwest::Client::new(),
            url: format!("{}/call", worker.url()),
            db: worker.fresh_database(),
        };
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
        })
        .await
    }

    async fn read_stream(&self, stream: &StreamId, from: StreamRevision) -> Result<Vec<StoredEvent>, StoreError> {
        self.events(Op::ReadStream {
            stream: stream.as_str().to_owned(),
            from: from.value(),
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
