//! The in-memory reference store.
//!
//! Exact and simple on purpose: it is the model that property tests compare
//! every backend against, and a convenient store for application tests.
//! Everything happens under one mutex; decisions are optimistic (read,
//! decide, append with a condition), so it also exercises the retry path of
//! the dispatch flows.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{StoreError, UnsupportedAppendCondition, UnsupportedQuery};
use crate::event::{EventId, Timestamp};
use crate::follow::{
    Checkpoints, CommitSignal, Cursor, EffectKey, Follow, FollowBatch, ParkedEffect, deliver_in_position_order,
};
use crate::forget::{KEY_LEN, SubjectKey, SubjectKeys};
use crate::limits::QueryLimits;
use crate::name::StreamId;
use crate::position::{Position, StreamRevision};
use crate::query::Query;
use crate::recorded::StoredEvent;
use crate::retag::{AddedTag, TagHistory, TagsPublished};
use crate::snapshot::{Snapshot, SnapshotKey, SnapshotRead, SnapshotStore, read_after};
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
///
/// It implements the follow contract ([`crate::Follow`]: delivery order is
/// position order, commits wake followers at once) and keeps checkpoints
/// and parked effects in memory ([`crate::Checkpoints`]), so runners can be
/// tested on it, adds tags to its history ([`crate::retag`]), keeps
/// snapshots ([`crate::snapshot`]) and subjects' data keys
/// ([`crate::forget`]).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    log: Arc<Mutex<Log>>,
    commits: Arc<CommitSignal>,
    limits: QueryLimits,
}

#[derive(Debug, Default)]
struct Log {
    /// Events in position order; the event at index `i` has position `i + 1`.
    events: Vec<(StoredEvent, u64)>,
    by_id: HashMap<EventId, usize>,
    heads: HashMap<StreamId, StreamRevision>,
    checkpoints: HashMap<String, Cursor>,
    parked: Vec<ParkedEffect>,
    /// Tags staged by each retag, not yet visible.
    staged: HashMap<String, BTreeSet<AddedTag>>,
    /// How many publishes added tags: a decision that read under an older
    /// generation may not commit.
    tag_generation: u64,
    /// The newest snapshot under each key.
    snapshots: HashMap<SnapshotKey, Snapshot>,
    /// Each subject's data key, or that it was forgotten.
    subject_keys: HashMap<String, SubjectKey>,
}

/// A decision on a [`MemoryStore`]: for a query's context, the tag
/// generation it was read under (see [`crate::retag`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryDecision {
    tag_generation: Option<u64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same store (clones share the log) refusing queries over
    /// `limits` instead of [`QueryLimits::default`].
    pub fn with_query_limits(mut self, limits: QueryLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Refuses a query over the limits, or with SQL predicates.
    fn admit(&self, query: &Query) -> Result<(), StoreError> {
        self.limits.check(query)?;
        refuse_predicates(query)
    }

    /// Appends `request`; for a decision on a query, only if no tags were
    /// published since it read under `tag_generation`.
    fn append_under(&self, request: AppendRequest, tag_generation: Option<u64>) -> Result<Committed, StoreError> {
        self.limits.check_append(&request)?;
        let committed = {
            let mut log = self.lock();
            if tag_generation.is_some_and(|seen| seen != log.tag_generation) {
                return Err(StoreError::contention(TagsPublished));
            }
            log.append(request)?
        };
        self.commits.bump();
        Ok(committed)
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        // A panic while holding the lock cannot leave the log half-written
        // (appends push only after every check), so a poisoned lock is safe
        // to keep using.
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Log {
    /// Keeps `snapshot` unless a later one is kept under its key or tags
    /// were published since its stamp; whether it was kept.
    fn save_snapshot(&mut self, snapshot: Snapshot) -> bool {
        let newer_kept = self
            .snapshots
            .get(&snapshot.key)
            .is_some_and(|kept| kept.position > snapshot.position);
        if snapshot.stamp != self.tag_generation || newer_kept {
            return false;
        }
        self.snapshots.insert(snapshot.key.clone(), snapshot);
        true
    }

    /// A decision's read of `scope`, after the event `after` folded into a
    /// snapshot (from the start without one).
    fn begin(&self, scope: &DecisionScope, after: Option<&Snapshot>) -> (MemoryDecision, Vec<StoredEvent>) {
        let (position, revision) = read_after(after);
        let events = match scope {
            DecisionScope::Query(query) => self.read(query, ReadOptions::forwards().from(position)),
            DecisionScope::Stream(stream) => self.read_stream(stream, revision, usize::MAX),
        };
        // A stream's context does not depend on tags.
        let decision = MemoryDecision {
            tag_generation: matches!(scope, DecisionScope::Query(_)).then_some(self.tag_generation),
        };
        (decision, events)
    }

    fn read(&self, query: &Query, options: ReadOptions) -> Vec<StoredEvent> {
        let matching = |(event, _): &&(StoredEvent, u64)| options.admits(event.position) && event.matches(query);
        let in_order: Box<dyn Iterator<Item = &(StoredEvent, u64)>> = match options.direction {
            Direction::Forwards => Box::new(self.events.iter()),
            Direction::Backwards => Box::new(self.events.iter().rev()),
        };
        let mut budget = options.budget();
        let mut page = Vec::new();
        for (event, _) in in_order.filter(matching) {
            if !budget.has_room() {
                break;
            }
            budget.take(event);
            page.push(event.clone());
        }
        page
    }

    fn read_stream(&self, stream: &StreamId, from: StreamRevision, limit: usize) -> Vec<StoredEvent> {
        self.events
            .iter()
            .filter(|(event, _)| &event.stream == stream && event.revision >= from)
            .take(limit)
            .map(|(event, _)| event.clone())
            .collect()
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

fn refuse_predicates(query: &Query) -> Result<(), StoreError> {
    if query.has_predicates() {
        return Err(UnsupportedQuery {
            backend: BACKEND,
            reason: PREDICATES.into(),
        }
        .into());
    }
    Ok(())
}

impl Follow for MemoryStore {
    async fn read_after(&self, query: &Query, after: Option<Cursor>, limit: usize) -> Result<FollowBatch, StoreError> {
        self.admit(query)?;
        let log = self.lock();
        // The event at index `i` has position `i + 1`: the one after
        // position `p` is at index `p`.
        let start = after.map_or(0, |cursor| {
            usize::try_from(cursor.position().value()).unwrap_or(usize::MAX)
        });
        let window: Vec<StoredEvent> = log
            .events
            .iter()
            .skip(start)
            .take(limit)
            .map(|(event, _)| event.clone())
            .collect();
        let end = window.last().map(|event| Cursor::new(0, event.position));
        let examined = window.len();
        let matching = window.into_iter().filter(|event| event.matches(query)).collect();
        Ok(FollowBatch {
            events: deliver_in_position_order(matching),
            end,
            examined,
        })
    }

    fn commit_count(&self) -> u64 {
        self.commits.count()
    }

    async fn commit_mark(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn settled(&self, _mark: u64) -> Result<bool, StoreError> {
        // Every append is readable once it returns.
        Ok(true)
    }

    async fn wait_for_commit(&self, seen: u64) {
        // Every commit to this store happens in this process and bumps the
        // signal, so there is nothing to poll.
        self.commits.changed_since(seen).await;
    }
}

impl Checkpoints for MemoryStore {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Cursor>, StoreError> {
        Ok(self.lock().checkpoints.get(name).copied())
    }

    async fn save_checkpoint(&self, name: &str, cursor: Cursor) -> Result<(), StoreError> {
        self.lock().checkpoints.insert(name.to_owned(), cursor);
        Ok(())
    }

    async fn park_effect(&self, parked: ParkedEffect) -> Result<(), StoreError> {
        let mut state = self.lock();
        state
            .parked
            .retain(|p| (p.runner.as_str(), p.key) != (parked.runner.as_str(), parked.key));
        state.parked.push(ParkedEffect {
            retry_requested: false,
            ..parked
        });
        Ok(())
    }

    async fn parked_effects(&self, runner: &str) -> Result<Vec<ParkedEffect>, StoreError> {
        Ok(self
            .lock()
            .parked
            .iter()
            .filter(|p| p.runner == runner)
            .cloned()
            .collect())
    }

    async fn retry_parked(&self, runner: &str, key: EffectKey) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let found = state.parked.iter_mut().find(|p| p.runner == runner && p.key == key);
        Ok(found.map(|p| p.retry_requested = true).is_some())
    }

    async fn discard_parked(&self, runner: &str, key: EffectKey) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let before = state.parked.len();
        state.parked.retain(|p| !(p.runner == runner && p.key == key));
        Ok(state.parked.len() < before)
    }
}

impl TagHistory for MemoryStore {
    async fn stage_tags(&self, name: &str, tags: Vec<AddedTag>) -> Result<(), StoreError> {
        self.lock().staged.entry(name.to_owned()).or_default().extend(tags);
        Ok(())
    }

    async fn publish_tags(&self, name: &str) -> Result<u64, StoreError> {
        let mut log = self.lock();
        let staged = log.staged.remove(name).unwrap_or_default();
        let mut added = 0;
        for (position, tag) in staged {
            let index = usize::try_from(position.value()).ok().and_then(|p| p.checked_sub(1));
            if let Some((event, _)) = index.and_then(|i| log.events.get_mut(i))
                && event.tags.insert(tag)
            {
                added += 1;
            }
        }
        if added > 0 {
            log.tag_generation += 1;
            log.snapshots.clear();
        }
        Ok(added)
    }
}

impl EventStore for MemoryStore {
    type Transaction = MemoryDecision;

    async fn read(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        self.admit(query)?;
        Ok(self.lock().read(query, options))
    }

    async fn read_stream(&self, stream: &StreamId, from: StreamRevision) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(self.lock().read_stream(stream, from, usize::MAX))
    }

    async fn read_stream_page(
        &self,
        stream: &StreamId,
        from: StreamRevision,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(self.lock().read_stream(stream, from, limit))
    }

    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        self.append_under(request, None)
    }

    async fn begin_decision(&self, scope: &DecisionScope) -> Result<(MemoryDecision, Vec<StoredEvent>), StoreError> {
        if let DecisionScope::Query(query) = scope {
            self.admit(query)?;
        }
        Ok(self.lock().begin(scope, None))
    }

    async fn abandon_decision(&self, _: MemoryDecision) {}

    async fn commit_decision(&self, decision: MemoryDecision, request: AppendRequest) -> Result<Committed, StoreError> {
        self.append_under(request, decision.tag_generation)
    }
}

impl SnapshotStore for MemoryStore {
    async fn begin_decision_from_snapshot(
        &self,
        scope: &DecisionScope,
        key: &SnapshotKey,
    ) -> Result<(MemoryDecision, SnapshotRead), StoreError> {
        if let DecisionScope::Query(query) = scope {
            self.admit(query)?;
        }
        let log = self.lock();
        let snapshot = log.snapshots.get(key).cloned();
        let (decision, events) = log.begin(scope, snapshot.as_ref());
        let read = SnapshotRead {
            snapshot,
            events,
            stamp: log.tag_generation,
        };
        Ok((decision, read))
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<bool, StoreError> {
        Ok(self.lock().save_snapshot(snapshot))
    }

    /// Saves at once: the store is a map under a mutex.
    fn offer_snapshot(&self, snapshot: Snapshot) {
        let key = snapshot.key.clone();
        let saved = self.lock().save_snapshot(snapshot);
        crate::snapshot::log_offer_outcome(&key, &Ok(saved));
    }
}

impl SubjectKeys for MemoryStore {
    async fn keys_for_writing(&self, wanted: Vec<(String, [u8; KEY_LEN])>) -> Result<Vec<SubjectKey>, StoreError> {
        let mut log = self.lock();
        Ok(wanted
            .into_iter()
            .map(|(subject, fresh)| {
                log.subject_keys
                    .entry(subject)
                    .or_insert(SubjectKey::Key(fresh))
                    .clone()
            })
            .collect())
    }

    async fn keys_for_reading(&self, subjects: &[String]) -> Result<Vec<Option<SubjectKey>>, StoreError> {
        let log = self.lock();
        Ok(subjects.iter().map(|s| log.subject_keys.get(s).cloned()).collect())
    }

    /// Also starts a new generation (like a publish of tags), which retires
    /// every snapshot and refuses one read before.
    async fn forget(&self, subject: &str) -> Result<bool, StoreError> {
        let mut log = self.lock();
        let had_key = matches!(
            log.subject_keys.insert(subject.to_owned(), SubjectKey::Forgotten),
            Some(SubjectKey::Key(_))
        );
        log.tag_generation += 1;
        log.snapshots.clear();
        Ok(had_key)
    }
}
