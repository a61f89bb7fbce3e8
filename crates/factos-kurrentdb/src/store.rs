//! [`KurrentStore`]: the store contract over the official client.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use factos::{
    AppendRequest, Committed, DecisionScope, EventStore, ExpectedRevision, Query, QueryLimits, ReadOptions, StoreError,
    StoredEvent, StreamId, StreamRevision, UnsupportedAppendCondition,
};
use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, ReadAllOptions, ReadStreamOptions, RecordedEvent, StreamPosition,
    StreamState, SubscriptionFilter,
};

use crate::BACKEND;
use crate::error::KurrentError;
use crate::filter::{Scope, refuse_predicates};
use crate::follow::Watch;
use crate::mapping::{from_recorded, is_system, kurrent_position, refuse_reserved, to_event_data};

/// How many events one `$all` read asks the server for.
const PAGE: usize = 512;

const CONDITIONS: &str = "KurrentDB's appends check one stream's revision; it cannot enforce FailIfEventsMatch(query, after) \
     over events of other streams. Use dispatch_stream with a stream per consistency boundary, or a backend that \
     enforces query conditions (SQLite, PostgreSQL)";

/// A factos event store on KurrentDB.
///
/// Cheap to clone (the client is a handle to one connection). See the
/// [crate docs](crate) for what it guarantees and what it refuses.
#[derive(Clone)]
pub struct KurrentStore {
    client: Client,
    scope: Scope,
    watch: Arc<Watch>,
    poll_interval: Duration,
    query_limits: QueryLimits,
}

/// How often a waiting follower reads again when no commit woke it.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

impl fmt::Debug for KurrentStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KurrentStore")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl KurrentStore {
    /// A store on a client the application already has.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            scope: Scope::default(),
            watch: Arc::default(),
            poll_interval: POLL_INTERVAL,
            query_limits: QueryLimits::DEFAULT,
        }
    }

    /// Refuses queries over `limits` ([`QueryLimits::default`] unless set)
    /// with [`StoreError::QueryTooLarge`] before anything is sent, as every
    /// backend does with the same request.
    pub fn with_query_limits(mut self, limits: QueryLimits) -> Self {
        self.query_limits = limits;
        self
    }

    pub(crate) fn query_limits(&self) -> &QueryLimits {
        &self.query_limits
    }

    /// How often a waiting follower reads again when no commit woke it
    /// (500 ms by default). Followers are woken by a KurrentDB
    /// subscription; polling is the safety net for when it fails.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The same database, seen as only the streams whose names start with
    /// `prefix` (several applications, tenants or test runs sharing one
    /// KurrentDB). The store names its streams without the prefix and
    /// writes them with it; its reads filter `$all` on the server by the
    /// prefix, so event types are then matched here, not on the server.
    ///
    /// # Errors
    ///
    /// [`KurrentError::InvalidPrefix`] for an empty prefix, one starting
    /// with `$` (system streams) or holding a control character.
    pub fn scoped(mut self, prefix: &str) -> Result<Self, KurrentError> {
        let problem = if prefix.is_empty() {
            Some("it is empty")
        } else if is_system(prefix) {
            Some("streams starting with `$` are KurrentDB's system streams")
        } else if prefix.chars().any(char::is_control) {
            Some("it holds a control character")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(KurrentError::InvalidPrefix {
                prefix: prefix.to_owned(),
                problem,
            });
        }
        self.scope = Scope::prefixed(prefix);
        self.watch = Arc::default();
        Ok(self)
    }

    /// A store on a new client for `connection_string`
    /// (`kurrentdb://admin:changeit@localhost:2113?tls=false`; every
    /// setting the official client knows, TLS ones included, passes
    /// through). The client connects lazily, on the first call.
    ///
    /// # Errors
    ///
    /// [`KurrentError::InvalidConnectionString`], or
    /// [`KurrentError::Client`] when called outside a tokio runtime.
    pub fn connect(connection_string: &str) -> Result<Self, KurrentError> {
        let settings = connection_string
            .parse::<ClientSettings>()
            .map_err(KurrentError::InvalidConnectionString)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| KurrentError::Client(e.into()))?;
        let client = Client::with_runtime_handle(runtime, settings).map_err(|e| KurrentError::Client(e.into()))?;
        Ok(Self::new(client))
    }

    /// The official client underneath, for what factos does not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn scope(&self) -> &Scope {
        &self.scope
    }

    pub(crate) fn watch(&self) -> &Watch {
        &self.watch
    }

    pub(crate) fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// One page of `$all` in `backwards` or forwards order from `start`,
    /// through `filter`: the raw events, system ones included if the filter
    /// let them through.
    pub(crate) async fn read_all_page(
        &self,
        start: StreamPosition<kurrentdb::Position>,
        backwards: bool,
        filter: &SubscriptionFilter,
        count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let options = ReadAllOptions::default()
            .position(start)
            .filter(filter.clone())
            .max_count(count);
        let options = if backwards {
            options.backwards()
        } else {
            options.forwards()
        };
        let mut read = self.client.read_all(&options).await.map_err(backend)?;
        let mut page = Vec::new();
        while let Some(resolved) = read.next().await.map_err(backend)? {
            if let Some(event) = resolved.event {
                page.push(event);
            }
        }
        Ok(page)
    }

    /// The raw events of the database stream `stream` as `options` select
    /// them; empty when the stream does not exist.
    pub(crate) async fn raw_stream(
        &self,
        stream: &str,
        options: &ReadStreamOptions,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut read = match self.client.read_stream(stream, options).await {
            Ok(read) => read,
            Err(kurrentdb::Error::ResourceNotFound) => return Ok(Vec::new()),
            Err(e) => return Err(backend(e)),
        };
        let mut events = Vec::new();
        loop {
            match read.next().await {
                Ok(Some(resolved)) => events.extend(resolved.event),
                Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => return Ok(events),
                Err(e) => return Err(backend(e)),
            }
        }
    }

    /// `count` events of `stream` from revision `from` on, with the
    /// fingerprints they were written with; empty when the stream does not
    /// exist.
    async fn read_stream_events(
        &self,
        stream: &StreamId,
        from: StreamRevision,
        count: usize,
    ) -> Result<Vec<(StoredEvent, Option<u64>)>, StoreError> {
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Position(from.value()))
            .max_count(count);
        self.raw_stream(&self.scope.stream_name(stream), &options)
            .await?
            .iter()
            .filter(|event| !is_system(&event.event_type))
            .map(|event| from_recorded(event, stream.as_str()))
            .collect()
    }

    /// `count` events of `stream` from revision `from` on, without their
    /// fingerprints.
    async fn stream_records(
        &self,
        stream: &StreamId,
        from: StreamRevision,
        count: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let events = self.read_stream_events(stream, from, count).await?;
        Ok(events.into_iter().map(|(record, _)| record).collect())
    }

    /// The records of `request` as the stream holds them after the server
    /// acknowledged it with `last` as the stream's revision: written now,
    /// or found written by an earlier send (KurrentDB acknowledges a
    /// re-send of ids it recognises without writing them again).
    async fn confirm(&self, request: &AppendRequest, last: u64) -> Result<Committed, StoreError> {
        let count = request.events.len();
        let unconfirmed = |problem: String| {
            StoreError::backend(KurrentError::Unconfirmed {
                stream: request.stream.as_str().to_owned(),
                revision: last,
                problem,
            })
        };
        let first = (last + 1)
            .checked_sub(count as u64)
            .ok_or_else(|| unconfirmed(format!("the stream cannot hold {count} events up to there")))?;
        let existing = self
            .read_stream_events(&request.stream, StreamRevision::new(first), count)
            .await?;
        let written = with_ids_of(request, existing);
        if written.is_empty() {
            return Err(unconfirmed("none of the batch's events are there".into()));
        }
        request.replayed(written)
    }

    /// The error for a batch the server refused because some of its ids
    /// are events of the stream already: the stream is searched for them
    /// (a rare path; it reads the whole stream).
    async fn partly_written(&self, request: &AppendRequest) -> Result<Committed, StoreError> {
        let existing = with_ids_of(
            request,
            self.read_stream_events(&request.stream, StreamRevision::FIRST, usize::MAX)
                .await?,
        );
        if existing.is_empty() {
            return Err(StoreError::backend(KurrentError::Unconfirmed {
                stream: request.stream.as_str().to_owned(),
                revision: 0,
                problem: "it refused the batch as a wrong expected version that holds, and no event of the \
                          batch is in the stream"
                    .into(),
            }));
        }
        request.replayed(existing)
    }

    async fn read_matching(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        refuse_predicates(query)?;
        let limit = options.limit.unwrap_or(usize::MAX);
        let mut budget = options.budget();
        let mut found = Vec::new();
        if !budget.has_room() {
            return Ok(found);
        }
        let filter = self.scope.server_filter(query);
        let exact = self.scope.decided_by_server(query);
        let backwards = options.direction == factos::Direction::Backwards;
        let mut start = match (options.from, backwards) {
            (None, false) => StreamPosition::Start,
            (None, true) => StreamPosition::End,
            (Some(from), false) => StreamPosition::Position(kurrent_position(from)),
            (Some(from), true) => {
                // A backwards read from a position starts below it; the
                // event at `from` itself is the first forwards from there.
                let at = self
                    .read_all_page(StreamPosition::Position(kurrent_position(from)), false, &filter, 1)
                    .await?;
                if let Some(event) = at.first()
                    && let Some(stream) = self.scope.sees(event)
                {
                    let (record, _) = from_recorded(event, stream)?;
                    if record.position == from && record.matches(query) {
                        budget.take(&record);
                        found.push(record);
                    }
                }
                StreamPosition::Position(kurrent_position(from))
            }
        };
        let mut last_seen: Option<u64> = None;
        while budget.has_room() {
            let wanted = if exact { (limit - found.len()).min(PAGE) } else { PAGE };
            // A forwards page resumes at the last event seen, inclusive.
            let count = wanted + usize::from(!backwards && last_seen.is_some());
            let page = self.read_all_page(start, backwards, &filter, count).await?;
            let complete = page.len() < count;
            for event in &page {
                let position = event.position.commit;
                if !backwards && last_seen.is_some_and(|seen| position <= seen) {
                    continue;
                }
                last_seen = Some(position);
                let Some(stream) = self.scope.sees(event) else {
                    continue;
                };
                let (record, _) = from_recorded(event, stream)?;
                if options.admits(record.position) && record.matches(query) {
                    let room = budget.take(&record);
                    found.push(record);
                    if !room {
                        return Ok(found);
                    }
                }
            }
            match last_seen {
                Some(seen) if !complete => {
                    start = StreamPosition::Position(kurrentdb::Position {
                        commit: seen,
                        prepare: seen,
                    });
                }
                _ => break,
            }
        }
        Ok(found)
    }

    async fn append_batch(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        request.validate()?;
        if request.condition.is_some() {
            return Err(refused_condition().into());
        }
        refuse_reserved(&request.stream, &request.events)?;
        let fingerprint = request.fingerprint();
        let events = request
            .events
            .iter()
            .map(|event| to_event_data(event, fingerprint))
            .collect::<Result<Vec<_>, _>>()?;
        let options = AppendToStreamOptions::default().stream_state(stream_state(request.expected));
        let stream = self.scope.stream_name(&request.stream);
        match self.client.append_to_stream(stream, &options, events).await {
            Ok(written) => {
                self.watch.committed();
                self.confirm(&request, written.next_expected_version).await
            }
            Err(kurrentdb::Error::WrongExpectedVersion { current, .. }) => {
                let actual = match current {
                    kurrentdb::CurrentRevision::Current(revision) => Some(StreamRevision::new(revision)),
                    kurrentdb::CurrentRevision::NoStream => None,
                };
                if request.expected.is_satisfied_by(actual) {
                    // Not the revision: KurrentDB answers a batch that
                    // repeats only part of a written one ("corrupted
                    // idempotency") this way.
                    return self.partly_written(&request).await;
                }
                Err(factos::RevisionMismatch {
                    stream: request.stream,
                    expected: request.expected,
                    actual,
                }
                .into())
            }
            Err(e) => Err(backend(e)),
        }
    }
}

/// The records among `records` that carry an id of `request`, with their
/// fingerprints (0 for events written by other tools, which no request
/// has), as [`AppendRequest::replayed`] takes them.
fn with_ids_of(request: &AppendRequest, records: Vec<(StoredEvent, Option<u64>)>) -> Vec<(StoredEvent, u64)> {
    records
        .into_iter()
        .filter(|(record, _)| request.events.iter().any(|e| e.id == record.id))
        .map(|(record, fingerprint)| (record, fingerprint.unwrap_or_default()))
        .collect()
}

/// The refusal of every append condition and query-scoped decision.
fn refused_condition() -> UnsupportedAppendCondition {
    UnsupportedAppendCondition {
        backend: BACKEND,
        reason: CONDITIONS.into(),
    }
}

/// KurrentDB's expected state for a factos expected revision: one to one.
fn stream_state(expected: ExpectedRevision) -> StreamState {
    match expected {
        ExpectedRevision::Any => StreamState::Any,
        ExpectedRevision::NoStream => StreamState::NoStream,
        ExpectedRevision::StreamExists => StreamState::StreamExists,
        ExpectedRevision::Exact(revision) => StreamState::StreamRevision(revision.value()),
    }
}

fn backend(error: kurrentdb::Error) -> StoreError {
    StoreError::backend(KurrentError::Kurrent(error))
}

/// Records `result` on the call's span and returns it.
fn traced<T>(result: Result<T, StoreError>, rows: impl FnOnce(&T) -> usize) -> Result<T, StoreError> {
    factos::record_outcome(&result, rows, |_| None);
    result
}

impl EventStore for KurrentStore {
    /// Nothing: a stream decision is checked by the append's expected
    /// revision.
    type Transaction = ();

    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "kurrentdb", operation = "read", query_items = query.items().len(), rows, code, error))]
    async fn read(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        self.query_limits.check(query)?;
        traced(self.read_matching(query, options).await, Vec::len)
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "kurrentdb", operation = "read_stream", %stream, rows, code, error))]
    async fn read_stream(&self, stream: &StreamId, from: StreamRevision) -> Result<Vec<StoredEvent>, StoreError> {
        traced(self.stream_records(stream, from, usize::MAX).await, Vec::len)
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "kurrentdb", operation = "read_stream_page", %stream, limit = limit, rows, code, error))]
    async fn read_stream_page(
        &self,
        stream: &StreamId,
        from: StreamRevision,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        traced(self.stream_records(stream, from, limit).await, Vec::len)
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "kurrentdb", operation = "append", stream = %request.stream, rows, code, error))]
    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        self.query_limits.check_append(&request)?;
        traced(self.append_batch(request).await, |c| c.records.len())
    }

    #[tracing::instrument(
        level = "debug",
        name = "store",
        skip_all,
        fields(backend = "kurrentdb", operation = "begin_decision", rows, code, error)
    )]
    async fn begin_decision(&self, scope: &DecisionScope) -> Result<((), Vec<StoredEvent>), StoreError> {
        self.query_limits.check_scope(scope)?;
        let result = match scope {
            DecisionScope::Query(_) => Err(refused_condition().into()),
            DecisionScope::Stream(stream) => self.read_stream(stream, StreamRevision::FIRST).await.map(|e| ((), e)),
        };
        traced(result, |(_, events)| events.len())
    }

    async fn abandon_decision(&self, (): ()) {}

    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = "kurrentdb", operation = "commit_decision", stream = %request.stream, rows, code, error))]
    async fn commit_decision(&self, (): (), request: AppendRequest) -> Result<Committed, StoreError> {
        traced(self.append_batch(request).await, |c| c.records.len())
    }
}
