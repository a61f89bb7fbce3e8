//! The model-based property test: random sequences of appends (with and
//! without conditions, expected revisions, re-sends and reused ids) and reads
//! give the same results on the backend under test and on the in-memory
//! reference store, and both agree with outcomes predicted from first
//! principles over the log.
//!
//! Positions are compared by their place in the log, not by value: a backend
//! may leave gaps (a PostgreSQL sequence does after a rollback).

use std::collections::HashMap;

use factos::{
    AppendCondition, AppendRequest, Committed, EventId, ExpectedRevision, LocalEventStore, MemoryStore, Metadata,
    NewEvent, Query, QueryItem, ReadOptions, StoreError, StoredEvent, StreamRevision,
};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::capabilities::Capabilities;
use crate::fixtures::{stream, tag, ty};

/// The event types the generated operations use.
pub const TYPES: [&str; 3] = ["A", "B", "C"];
/// The tags the generated operations use.
pub const TAGS: [&str; 3] = ["x", "y", "z"];
/// The streams the generated operations use.
pub const STREAMS: [&str; 3] = ["s0", "s1", "s2"];

/// One generated query item: bit masks over [`TYPES`] and [`TAGS`].
#[derive(Debug, Clone)]
pub struct ItemSpec(u8, u8);

/// One generated operation.
#[derive(Debug, Clone)]
pub enum Op {
    /// Append a batch.
    Append {
        /// Index into [`STREAMS`].
        stream: usize,
        /// Per event: type index and tag mask.
        events: Vec<(usize, u8)>,
        /// 0 any, 1 no stream, 2 exists, 3.. exact revision `n - 3`.
        expected: u8,
        /// The condition's query and the log place of `after` (`None`: no
        /// position).
        condition: Option<(Vec<ItemSpec>, Option<Index>)>,
        /// Give the first event the id of an earlier event.
        reuse_id: Option<Index>,
    },
    /// Send an earlier append request again, unchanged.
    Resend(Index),
    /// Read by query.
    Read {
        /// The query.
        query: Vec<ItemSpec>,
        /// The log place of `from`.
        from: Option<Index>,
        /// The limit.
        limit: Option<usize>,
        /// Direction.
        backwards: bool,
    },
    /// Read a stream from a revision.
    ReadStream {
        /// Index into [`STREAMS`].
        stream: usize,
        /// From this revision.
        from: u64,
    },
}

fn item_spec() -> impl Strategy<Value = ItemSpec> {
    (0u8..8, 0u8..8).prop_map(|(t, g)| ItemSpec(t, g))
}

fn op(caps: Capabilities) -> impl Strategy<Value = Op> {
    let append = (
        0..STREAMS.len(),
        prop::collection::vec((0..TYPES.len(), 0u8..8), 0..4),
        0u8..7,
        prop::option::weighted(
            0.6,
            (
                prop::collection::vec(item_spec(), 0..3),
                prop::option::weighted(0.7, any::<Index>()),
            ),
        ),
        prop::option::weighted(0.1, any::<Index>()),
    )
        .prop_map(move |(stream, events, expected, condition, reuse_id)| Op::Append {
            stream,
            events,
            expected,
            // What the backend cannot enforce is left out: its refusals are
            // checked by the cases.
            condition: condition.filter(|_| caps.query_conditions),
            reuse_id: reuse_id.filter(|_| caps.unique_event_ids),
        });
    let read = (
        prop::collection::vec(item_spec(), 0..3),
        prop::option::weighted(0.4, any::<Index>()),
        prop::option::weighted(0.4, 0usize..5),
        any::<bool>(),
    )
        .prop_map(|(query, from, limit, backwards)| Op::Read {
            query,
            from,
            limit,
            backwards,
        });
    prop_oneof![
        6 => append,
        1 => any::<Index>().prop_map(Op::Resend),
        3 => read,
        1 => (0..STREAMS.len(), 0u64..4).prop_map(|(stream, from)| Op::ReadStream { stream, from }),
    ]
}

/// Random operation sequences of what a backend with `caps` enforces:
/// without query conditions, appends carry expected revisions only; without
/// store-wide unique ids, no new batch reuses an earlier id (re-sends of
/// whole batches remain).
pub fn ops(caps: Capabilities) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(caps), 1..40)
}

fn query(specs: &[ItemSpec]) -> Query {
    Query::new(specs.iter().map(|ItemSpec(types, tags)| {
        QueryItem::types(
            TYPES
                .iter()
                .enumerate()
                .filter(|(i, _)| types & (1 << i) != 0)
                .map(|(_, t)| ty(t)),
        )
        .with_tags(
            TAGS.iter()
                .enumerate()
                .filter(|(i, _)| tags & (1 << i) != 0)
                .map(|(_, t)| tag(t)),
        )
    }))
}

/// What an operation did, in terms both stores can be compared by.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Appended(Vec<(EventId, usize, StreamRevision)>),
    Rejected(&'static str),
    Read(Vec<EventId>),
}

/// One store under test with the requests it was sent.
struct Subject<'s, S> {
    store: &'s S,
    sent: Vec<(AppendRequest, bool)>,
}

impl<S: LocalEventStore> Subject<'_, S> {
    async fn log(&self) -> Result<Vec<StoredEvent>, StoreError> {
        self.store.read(&Query::all(), ReadOptions::forwards()).await
    }

    async fn run(&mut self, op: &Op, ids: &[EventId], fresh: &mut impl FnMut() -> EventId) -> Result<Outcome, String> {
        let log = self.log().await.map_err(|e| format!("full read failed: {e}"))?;
        check_log(&log)?;
        let place = |index: &Index| (!log.is_empty()).then(|| log[index.index(log.len())].position);
        match op {
            Op::Append {
                stream: s,
                events,
                expected,
                condition,
                reuse_id,
            } => {
                let mut new: Vec<NewEvent> = events
                    .iter()
                    .map(|&(t, tags)| {
                        NewEvent::new(fresh(), ty(TYPES[t]), vec![t as u8, tags])
                            .with_tags(
                                TAGS.iter()
                                    .enumerate()
                                    .filter(|(i, _)| tags & (1 << i) != 0)
                                    .map(|(_, g)| tag(g)),
                            )
                            .with_metadata(Metadata::new().with("n", format!("{tags}")))
                    })
                    .collect();
                if let (Some(first), Some(reuse)) = (new.first_mut(), reuse_id)
                    && !ids.is_empty()
                {
                    first.id = ids[reuse.index(ids.len())];
                }
                let expected = match expected {
                    0 => ExpectedRevision::Any,
                    1 => ExpectedRevision::NoStream,
                    2 => ExpectedRevision::StreamExists,
                    n => ExpectedRevision::Exact(StreamRevision::new(u64::from(n - 3))),
                };
                let mut request = AppendRequest::new(stream(STREAMS[*s]), new).expect(expected);
                if let Some((specs, after)) = condition {
                    request = request.condition(AppendCondition::new(query(specs), after.as_ref().and_then(place)));
                }
                self.append(request, &log).await
            }
            Op::Resend(index) => match self.sent.is_empty() {
                true => Ok(Outcome::Read(Vec::new())),
                false => {
                    let request = self.sent[index.index(self.sent.len())].0.clone();
                    self.append(request, &log).await
                }
            },
            Op::Read {
                query: specs,
                from,
                limit,
                backwards,
            } => {
                let mut options = if *backwards {
                    ReadOptions::backwards()
                } else {
                    ReadOptions::forwards()
                };
                options.from = from.as_ref().and_then(place);
                options.limit = *limit;
                let q = query(specs);
                let read = self
                    .store
                    .read(&q, options)
                    .await
                    .map_err(|e| format!("read failed: {e}"))?;
                let mut expected: Vec<&StoredEvent> = log
                    .iter()
                    .filter(|e| options.admits(e.position) && e.matches(&q))
                    .collect();
                if *backwards {
                    expected.reverse();
                }
                expected.truncate(limit.unwrap_or(usize::MAX));
                let expected: Vec<StoredEvent> = expected.into_iter().cloned().collect();
                if read != expected {
                    return Err(format!(
                        "read {q:?} {options:?} returned {read:?}, the log says {expected:?}"
                    ));
                }
                Ok(Outcome::Read(read.iter().map(|e| e.id).collect()))
            }
            Op::ReadStream { stream: s, from } => {
                let read = self
                    .store
                    .read_stream(&stream(STREAMS[*s]), StreamRevision::new(*from))
                    .await
                    .map_err(|e| format!("read_stream failed: {e}"))?;
                let expected: Vec<StoredEvent> = log
                    .iter()
                    .filter(|e| e.stream.as_str() == STREAMS[*s] && e.revision.value() >= *from)
                    .cloned()
                    .collect();
                if read != expected {
                    return Err(format!("read_stream returned {read:?}, the log says {expected:?}"));
                }
                Ok(Outcome::Read(read.iter().map(|e| e.id).collect()))
            }
        }
    }

    async fn append(&mut self, request: AppendRequest, log: &[StoredEvent]) -> Result<Outcome, String> {
        let predicted = predict(&request, log, &self.sent);
        let result = self.store.append(request.clone()).await;
        let outcome = match &result {
            Ok(committed) => {
                let after = self.log().await.map_err(|e| format!("full read failed: {e}"))?;
                Outcome::Appended(appended(committed, &after)?)
            }
            Err(StoreError::ConditionFailed(_)) => Outcome::Rejected("condition"),
            Err(StoreError::RevisionMismatch(_)) => Outcome::Rejected("revision"),
            Err(StoreError::DuplicateEventId(_)) => Outcome::Rejected("duplicate"),
            Err(StoreError::InvalidAppend(_)) => Outcome::Rejected("invalid"),
            Err(other) => return Err(format!("append failed: {other}")),
        };
        let kind = match &outcome {
            Outcome::Appended(_) => "accepted",
            Outcome::Rejected(kind) => kind,
            Outcome::Read(_) => "read",
        };
        if kind != predicted {
            return Err(format!(
                "append {request:?} was {kind}, but the log says {predicted}: {result:?}"
            ));
        }
        self.sent.push((request, result.is_ok()));
        Ok(outcome)
    }
}

/// Positions strictly increase through the whole log.
fn check_log(log: &[StoredEvent]) -> Result<(), String> {
    match log.windows(2).find(|w| w[0].position >= w[1].position) {
        Some(w) => Err(format!(
            "positions out of order: {} then {}",
            w[0].position, w[1].position
        )),
        None => Ok(()),
    }
}

fn appended(committed: &Committed, log: &[StoredEvent]) -> Result<Vec<(EventId, usize, StreamRevision)>, String> {
    committed
        .records
        .iter()
        .map(|record| match log.iter().position(|e| e == record) {
            Some(index) => Ok((record.id, index, record.revision)),
            None => Err(format!("committed record {record:?} is not in the log as returned")),
        })
        .collect()
}

/// The outcome the contract prescribes, checked in the contract's order:
/// validity, taken ids (an identical re-send of an accepted request is
/// accepted), expected revision, condition.
fn predict(request: &AppendRequest, log: &[StoredEvent], sent: &[(AppendRequest, bool)]) -> &'static str {
    if request.validate().is_err() {
        return "invalid";
    }
    let taken: HashMap<EventId, &StoredEvent> = log.iter().map(|e| (e.id, e)).collect();
    if request.events.iter().any(|e| taken.contains_key(&e.id)) {
        let replay = sent.iter().any(|(earlier, accepted)| *accepted && earlier == request);
        return if replay { "accepted" } else { "duplicate" };
    }
    let head = log
        .iter()
        .filter(|e| e.stream == request.stream)
        .map(|e| e.revision)
        .max();
    if !request.expected.is_satisfied_by(head) {
        return "revision";
    }
    if let Some(condition) = &request.condition
        && log
            .iter()
            .any(|e| e.matches(&condition.query) && condition.rejects(e.position))
    {
        return "condition";
    }
    "accepted"
}

/// Runs `ops` against `store` and a fresh reference store side by side.
///
/// # Errors
///
/// A description of the first difference or broken expectation.
pub async fn run_against_reference<S: LocalEventStore>(store: &S, ops: &[Op]) -> Result<(), String> {
    let reference = MemoryStore::new();
    let mut subject = Subject {
        store,
        sent: Vec::new(),
    };
    let mut model = Subject {
        store: &reference,
        sent: Vec::new(),
    };
    let mut ids: Vec<EventId> = Vec::new();
    let mut counter = 0u128;
    for (step, op) in ops.iter().enumerate() {
        let start = counter;
        let mut fresh_subject = || {
            counter += 1;
            sequential_id(counter)
        };
        let got = subject
            .run(op, &ids, &mut fresh_subject)
            .await
            .map_err(|e| format!("step {step} (backend): {e}"))?;
        let mut replay = start;
        let mut fresh_model = || {
            replay += 1;
            sequential_id(replay)
        };
        let want = model
            .run(op, &ids, &mut fresh_model)
            .await
            .map_err(|e| format!("step {step} (reference): {e}"))?;
        if got != want {
            return Err(format!(
                "step {step}: {op:?}\n backend:   {got:?}\n reference: {want:?}"
            ));
        }
        if let Outcome::Appended(records) = &got {
            ids.extend(records.iter().map(|(id, _, _)| *id));
        }
    }
    Ok(())
}

/// The `n`-th id of a run: the same on both stores, so re-sends and reused
/// ids mean the same thing to both.
fn sequential_id(n: u128) -> EventId {
    EventId::from_bytes((0x0000_0000_0000_4000_8000_0000_0000_0000 | n).to_be_bytes())
}
