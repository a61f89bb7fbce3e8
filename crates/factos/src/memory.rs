//! The in-memory reference store.
//!
//! Exact and simple on purpose: it is the model that property tests compare
//! every backend against, and a convenient store for application tests.
//! Everything happens under one mutex; decisions are optimistic (read,
//! decide, append with a condition), so it also exercises the retry path of
//! the dispatch flows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{StoreError, UnsupportedAppendCondition, UnsupportedQuery};
use crate::event::{EventId, Timestamp};
use crate::name::StreamId;
use crate::position::{Position, StreamRevision};
use crate::query::Query;
use crate::recorded::StoredEvent;
use crate::store::{AppendRequest, Committed, DecisionScope, Direction, EventStore, ReadOptions};

const BACKEND: &str = "the in-memory store";
const PREDICATES: &str = "SQL predicates need a SQL backend";

/// A thread-safe in-memory event store. Clones share the same log.
///
/// ```
/// use factos::{AppendRequest, EventId, EventStore, EventType, MemoryStore, NewEvent, Query, ReadOptions, StreamId};
///
/// # futures::executor::block_on(async {
/// let store = MemoryStore::new();
/// let event = NewEvent::new(EventId::random(), EventType::new("Greeted")?, b"hi".to_vec());
/// let committed = store.append(AppendRequest::new(StreamId::new("greetings")?, vec![event])).await?;
/// assert_eq!(committed.records[0].position.value(), 1);
/// assert_eq!(store.read(&Query::all(), ReadOptions::forwards()).await?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    log: Arc<Mutex<Log>>,
}

#[derive(Debug, Default)]
struct Log {
    /// Events in position order; the event at index `i` has position `i + 1`.
    events: Vec<(StoredEvent, u64)>,
    by_id: HashMap<EventId, usize>,
    heads: HashMap<StreamId, StreamRevision>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        // A panic while holding the lock cannot leave the log half-written
        // (appends push only after every check), so a poisoned lock is safe
        // to keep using.
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Log {
    fn read(&self, query: &Query, options: ReadOptions) -> Vec<StoredEvent> {
        let matching = |(event, _): &&(StoredEvent, u64)| options.admits(event.position) && event.matches(query);
        let limit = options.limit.unwrap_or(usize::MAX);
        match options.direction {
            Direction::Forwards => self
                .events
                .iter()
                .filter(matching)
                .take(limit)
                .map(|(e, _)| e.clone())
                .collect(),
            Direction::Backwards => self
                .events
                .iter()
                .rev()
                .filter(matching)
                .take(limit)
                .map(|(e, _)| e.clone())
                .collect(),
        }
    }

    fn append(&mut self, request: AppendRequest) -> Result<Committed, StoreError> {
        request.validate()?;
        if request.condition.as_ref().is_some_and(|c| c.query.has_predicates()) {
            return Err(UnsupportedAppendCondition {
                backend: BACKEND,
                reason: PREDICATES.into(),
            }
            .into());
        }
        let existing: Vec<(StoredEvent, u64)> = request
            .events
            .iter()
            .filter_map(|event| self.by_id.get(&event.id).map(|&index| self.events[index].clone()))
            .collect();
        if !existing.is_empty() {
            return request.replayed(existing);
        }
        let current = self.heads.get(&request.stream).copied();
        request.check_revision(current)?;
        let first_match_after = request.condition.as_ref().and_then(|condition| {
            self.events
                .iter()
                .rev()
                .take_while(|(event, _)| condition.rejects(event.position))
                .filter(|(event, _)| event.matches(&condition.query))
                .last()
                .map(|(event, _)| event.position)
        });
        request.check_condition(first_match_after)?;
        let fingerprint = request.fingerprint();
        let stream = request.stream.clone();
        let positions = (self.events.len() as u64 + 1..).map(Position::new);
        let committed = request.into_committed(positions, current, Timestamp::now());
        for record in &committed.records {
            self.by_id.insert(record.id, self.events.len());
            self.events.push((record.clone(), fingerprint));
        }
        self.heads.insert(stream, committed.revision);
        Ok(committed)
    }
}

impl EventStore for MemoryStore {
    type Transaction = ();

    async fn read(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        if query.has_predicates() {
            return Err(UnsupportedQuery {
                backend: BACKEND,
                reason: PREDICATES.into(),
            }
            .into());
        }
        Ok(self.lock().read(query, options))
    }

    async fn read_stream(&self, stream: &StreamId, from: StreamRevision) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(self
            .lock()
            .events
            .iter()
            .filter(|(event, _)| &event.stream == stream && event.revision >= from)
            .map(|(event, _)| event.clone())
            .collect())
    }

    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        self.lock().append(request)
    }

    async fn begin_decision(&self, scope: &DecisionScope) -> Result<((), Vec<StoredEvent>), StoreError> {
        let events = match scope {
            DecisionScope::Query(query) => self.read(query, ReadOptions::forwards()).await?,
            DecisionScope::Stream(stream) => self.read_stream(stream, StreamRevision::FIRST).await?,
        };
        Ok(((), events))
    }

    async fn abandon_decision(&self, (): ()) {}

    async fn commit_decision(&self, (): (), request: AppendRequest) -> Result<Committed, StoreError> {
        self.append(request).await
    }
}
