//! The Streams service over the model in [`crate::log`].

// gRPC handlers answer with `tonic::Status`; boxing it in the helpers that
// build one would only add conversions at every call.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;
use tokio::sync::{broadcast, oneshot};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use crate::log::{Appended, Expected, Log, Proposed, Stored};
use crate::proto::event_store::client::server_features::server_features_server::{
    ServerFeatures, ServerFeaturesServer,
};
use crate::proto::event_store::client::server_features::{SupportedMethod, SupportedMethods};
use crate::proto::event_store::client::streams::append_req::options::ExpectedStreamRevision;
use crate::proto::event_store::client::streams::read_req::options::all_options::AllOption;
use crate::proto::event_store::client::streams::read_req::options::filter_options::{Expression, Filter, Window};
use crate::proto::event_store::client::streams::read_req::options::stream_options::RevisionOption;
use crate::proto::event_store::client::streams::read_req::options::{
    CountOption, FilterOption, ReadDirection, StreamOption, uuid_option,
};
use crate::proto::event_store::client::streams::streams_server::{Streams, StreamsServer};
use crate::proto::event_store::client::streams::{
    AppendReq, AppendResp, BatchAppendReq, BatchAppendResp, DeleteReq, DeleteResp, ReadReq, ReadResp, TombstoneReq,
    TombstoneResp, append_req, append_resp, batch_append_req, batch_append_resp, read_resp,
};
use crate::proto::event_store::client::{
    AllStreamPosition, StreamIdentifier, Uuid as ProtoUuid, WrongExpectedVersion, uuid as proto_uuid,
    wrong_expected_version,
};
use crate::proto::google::rpc::Status as RpcStatus;
use crate::quick_ack::QuickAck;

/// Why the server could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FakeError {
    /// No loopback port could be bound.
    #[error("cannot listen on a loopback port")]
    Listen(#[from] std::io::Error),
    /// The process-wide runtime for detached servers could not start.
    #[error("cannot run a detached server: {0}")]
    Detached(String),
}

/// The runtime detached servers run on: its own threads, for the life of
/// the process.
fn detached_runtime() -> Result<&'static tokio::runtime::Runtime, FakeError> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("fake-kurrentdb")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| FakeError::Detached(e.clone()))
}

/// Detached servers, kept running until the process exits.
static DETACHED: Mutex<Vec<FakeKurrentDb>> = Mutex::new(Vec::new());

/// A running in-process server; stops when dropped.
#[derive(Debug)]
pub struct FakeKurrentDb {
    address: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl FakeKurrentDb {
    /// Starts a server with an empty log (but for one system event) on a
    /// random loopback port.
    ///
    /// # Errors
    ///
    /// [`FakeError::Listen`] when no port can be bound.
    pub async fn start() -> Result<Self, FakeError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let service = Service::default();
        service.log().append(
            "$users",
            Expected::Any,
            vec![Proposed {
                id: Uuid::new_v4(),
                event_type: "$UserCreated".into(),
                content_type: "application/json".into(),
                custom_metadata: Vec::new(),
                data: br#"{"loginName":"admin"}"#.to_vec(),
            }],
            ticks_now(),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let incoming =
            tokio_stream::StreamExt::map(tokio_stream::wrappers::TcpListenerStream::new(listener), |stream| {
                let stream = stream?;
                stream.set_nodelay(true)?;
                Ok::<_, std::io::Error>(QuickAck(stream))
            });
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(StreamsServer::new(service))
                .add_service(ServerFeaturesServer::new(Features))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                }),
        );
        Ok(Self { address, _stop: stop })
    }

    /// Starts a server with an empty log (but for one system event) that
    /// runs on threads of its own until the process exits, and returns its
    /// connection string: for test suites that make a store per test on
    /// runtimes that end with the test.
    ///
    /// # Errors
    ///
    /// [`FakeError::Listen`] when no port can be bound,
    /// [`FakeError::Detached`] when its runtime cannot run.
    pub async fn start_detached() -> Result<String, FakeError> {
        let server = detached_runtime()?
            .spawn(Self::start())
            .await
            .map_err(|e| FakeError::Detached(e.to_string()))??;
        let url = server.connection_string();
        DETACHED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(server);
        Ok(url)
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A connection string the official client accepts.
    pub fn connection_string(&self) -> String {
        format!("kurrentdb://{}?tls=false", self.address)
    }
}

/// 100-nanosecond ticks since the Unix epoch: how KurrentDB reports times.
fn ticks_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos() / 100).unwrap_or(u64::MAX))
}

/// How long an append waits, once its request stream has ended, for the
/// client to reset the call instead (see `append`).
const RESET_GRACE: std::time::Duration = std::time::Duration::from_millis(1);

/// How many new events a subscriber may fall behind before the server ends
/// its subscription (the client then resubscribes from its last event).
const LIVE_BUFFER: usize = 4096;

#[derive(Debug, Clone)]
struct Service {
    log: Arc<Mutex<Log>>,
    /// Every event as it is written, for live subscribers.
    live: broadcast::Sender<Stored>,
}

impl Default for Service {
    fn default() -> Self {
        Self {
            log: Arc::default(),
            live: broadcast::channel(LIVE_BUFFER).0,
        }
    }
}

impl Service {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends `proposed` to `stream` as the model decides, and hands what
    /// was written to live subscribers: the one write path of `Append`
    /// and `BatchAppend`.
    fn write(&self, stream: &str, expected: Expected, proposed: Vec<Proposed>) -> Appended {
        let mut log = self.log();
        let before = log.events.len();
        let outcome = log.append(stream, expected, proposed, ticks_now());
        for written in &log.events[before..] {
            // No live subscriber is not an error.
            let _ = self.live.send(written.clone());
        }
        outcome
    }

    /// One `BatchAppend` batch, written whole, as its answer.
    fn batch(
        &self,
        correlation_id: Option<ProtoUuid>,
        options: batch_append_req::Options,
        proposed: Vec<Proposed>,
    ) -> BatchAppendResp {
        use batch_append_req::options::ExpectedStreamPosition as Asked;
        use batch_append_resp::ExpectedStreamPosition as Answered;
        let stream_identifier = options.stream_identifier.clone();
        let (expected, answered) = match options.expected_stream_position {
            Some(Asked::StreamPosition(r)) => (Expected::Exact(r), Answered::StreamPosition(r)),
            Some(Asked::NoStream(())) => (Expected::NoStream, Answered::NoStream(())),
            Some(Asked::StreamExists(())) => (Expected::StreamExists, Answered::StreamExists(())),
            Some(Asked::Any(())) | None => (Expected::Any, Answered::Any(())),
        };
        let result = match stream_name(options.stream_identifier) {
            Err(refused) => {
                batch_append_resp::Result::Error(rpc_status(refused.code() as i32, refused.message(), None))
            }
            Ok(stream) => match self.write(&stream, expected, proposed) {
                Appended::Done { revision, position } => {
                    batch_append_resp::Result::Success(batch_append_resp::Success {
                        current_revision_option: Some(
                            batch_append_resp::success::CurrentRevisionOption::CurrentRevision(revision),
                        ),
                        position_option: Some(batch_append_resp::success::PositionOption::Position(
                            AllStreamPosition {
                                commit_position: position,
                                prepare_position: position,
                            },
                        )),
                    })
                }
                Appended::WrongExpectedVersion { current, expected } => {
                    use wrong_expected_version::{CurrentStreamRevisionOption, ExpectedStreamPositionOption};
                    let details = WrongExpectedVersion {
                        current_stream_revision_option: Some(match current {
                            Some(r) => CurrentStreamRevisionOption::CurrentStreamRevision(r),
                            None => CurrentStreamRevisionOption::CurrentNoStream(()),
                        }),
                        expected_stream_position_option: Some(match expected {
                            Expected::Exact(r) => ExpectedStreamPositionOption::ExpectedStreamPosition(r),
                            Expected::Any => ExpectedStreamPositionOption::ExpectedAny(()),
                            Expected::StreamExists => ExpectedStreamPositionOption::ExpectedStreamExists(()),
                            Expected::NoStream => ExpectedStreamPositionOption::ExpectedNoStream(()),
                        }),
                    };
                    batch_append_resp::Result::Error(rpc_status(
                        tonic::Code::FailedPrecondition as i32,
                        "WrongExpectedVersion",
                        Some(prost_types::Any {
                            type_url: "type.googleapis.com/event_store.client.WrongExpectedVersion".into(),
                            value: prost::Message::encode_to_vec(&details),
                        }),
                    ))
                }
            },
        };
        BatchAppendResp {
            correlation_id,
            result: Some(result),
            stream_identifier,
            expected_stream_position: Some(answered),
        }
    }
}

/// What the server tells clients it serves: the Streams methods it models,
/// `BatchAppend` included (the official clients use it only when listed).
#[derive(Debug, Clone, Copy)]
struct Features;

#[tonic::async_trait]
impl ServerFeatures for Features {
    async fn get_supported_methods(&self, _: Request<()>) -> Result<Response<SupportedMethods>, Status> {
        let streams = "event_store.client.streams.streams";
        let methods = ["read", "append", "batchappend"]
            .into_iter()
            .map(|method| SupportedMethod {
                method_name: method.into(),
                service_name: streams.into(),
                features: Vec::new(),
            })
            .collect();
        Ok(Response::new(SupportedMethods {
            methods,
            event_store_server_version: "25.0.0".into(),
        }))
    }
}

/// A `google.rpc.Status`, as `BatchAppend` reports a refused batch.
fn rpc_status(code: i32, message: &str, details: Option<prost_types::Any>) -> RpcStatus {
    RpcStatus {
        code,
        message: message.to_owned(),
        details,
    }
}

/// A proposed event of `Append` or `BatchAppend` as the model takes it.
fn proposed_event(
    id: Option<ProtoUuid>,
    metadata: &std::collections::HashMap<String, String>,
    custom_metadata: Vec<u8>,
    data: Vec<u8>,
) -> Result<Proposed, Status> {
    let event_type = metadata
        .get("type")
        .cloned()
        .ok_or_else(|| Status::invalid_argument("every event needs a type"))?;
    let content_type = metadata
        .get("content-type")
        .cloned()
        .unwrap_or_else(|| "application/octet-stream".into());
    Ok(Proposed {
        id: uuid_from(id)?,
        event_type,
        content_type,
        custom_metadata,
        data,
    })
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// A response stream fed by `produce` through a channel; the producer
/// stops when the call is dropped (its sends fail).
fn async_stream_of<T, F, Fut>(produce: F) -> BoxStream<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    tokio::spawn(produce(sender));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))
}

fn stream_name(identifier: Option<StreamIdentifier>) -> Result<String, Status> {
    let identifier = identifier.ok_or_else(|| Status::invalid_argument("a stream identifier is required"))?;
    String::from_utf8(identifier.stream_name).map_err(|_| Status::invalid_argument("stream names are UTF-8"))
}

fn uuid_from(proto: Option<ProtoUuid>) -> Result<Uuid, Status> {
    match proto.and_then(|u| u.value) {
        Some(proto_uuid::Value::String(text)) => {
            Uuid::parse_str(&text).map_err(|_| Status::invalid_argument("an event id is not a UUID"))
        }
        Some(proto_uuid::Value::Structured(s)) => {
            let bits = (u128::from(s.most_significant_bits as u64) << 64) | u128::from(s.least_significant_bits as u64);
            Ok(Uuid::from_u128(bits))
        }
        None => Err(Status::invalid_argument("every event needs an id")),
    }
}

fn uuid_to(id: Uuid, as_string: bool) -> ProtoUuid {
    let value = if as_string {
        proto_uuid::Value::String(id.to_string())
    } else {
        let bits = id.as_u128();
        proto_uuid::Value::Structured(proto_uuid::Structured {
            most_significant_bits: (bits >> 64) as u64 as i64,
            least_significant_bits: bits as u64 as i64,
        })
    };
    ProtoUuid { value: Some(value) }
}

fn read_event(event: &Stored, uuid_as_string: bool) -> ReadResp {
    let metadata = [
        ("type".to_owned(), event.event_type.clone()),
        ("content-type".to_owned(), event.content_type.clone()),
        ("created".to_owned(), event.created.to_string()),
    ]
    .into_iter()
    .collect();
    let recorded = read_resp::read_event::RecordedEvent {
        id: Some(uuid_to(event.id, uuid_as_string)),
        stream_identifier: Some(StreamIdentifier {
            stream_name: event.stream.clone().into_bytes(),
        }),
        stream_revision: event.revision,
        prepare_position: event.position,
        commit_position: event.position,
        metadata,
        custom_metadata: event.custom_metadata.clone(),
        data: event.data.clone(),
    };
    ReadResp {
        content: Some(read_resp::Content::Event(read_resp::ReadEvent {
            event: Some(recorded),
            link: None,
            position: Some(read_resp::read_event::Position::CommitPosition(event.position)),
        })),
    }
}

/// A `$all` filter, ready to test events: on the event type or the stream
/// name, by regular expression or by prefixes.
#[derive(Debug, Clone)]
enum Compiled {
    Everything,
    EventType(Matcher),
    Stream(Matcher),
}

#[derive(Debug, Clone)]
enum Matcher {
    Regex(fancy_regex::Regex),
    Prefixes(Vec<String>),
}

impl Matcher {
    fn new(expression: Expression) -> Result<Self, Status> {
        if expression.regex.is_empty() {
            return Ok(Matcher::Prefixes(expression.prefix));
        }
        fancy_regex::Regex::new(&expression.regex)
            .map(Matcher::Regex)
            .map_err(|e| Status::invalid_argument(format!("invalid filter expression: {e}")))
    }

    fn matches(&self, text: &str) -> bool {
        match self {
            // A match that backtracks past the engine's limit is no match,
            // as a .NET match timeout would make it.
            Matcher::Regex(regex) => regex.is_match(text).unwrap_or(false),
            Matcher::Prefixes(prefixes) => prefixes.iter().any(|p| text.starts_with(p.as_str())),
        }
    }
}

impl Compiled {
    fn passes(&self, event: &Stored) -> bool {
        match self {
            Compiled::Everything => true,
            Compiled::EventType(matcher) => matcher.matches(&event.event_type),
            Compiled::Stream(matcher) => matcher.matches(&event.stream),
        }
    }
}

/// The window of a filtered subscription that names none.
const DEFAULT_WINDOW: u64 = 32;

/// What a subscription sends for each event it examines: the event when it
/// passes the filter, a checkpoint after `every` examined events in a row
/// sent nothing, otherwise nothing.
struct Checkpoints {
    every: Option<u64>,
    unsent: u64,
}

impl Checkpoints {
    fn new(every: Option<u64>) -> Self {
        Self { every, unsent: 0 }
    }

    fn examine(&mut self, event: &Stored, passes: bool, uuid_as_string: bool) -> Option<ReadResp> {
        if passes {
            self.unsent = 0;
            return Some(read_event(event, uuid_as_string));
        }
        let every = self.every?;
        self.unsent += 1;
        if self.unsent < every {
            return None;
        }
        self.unsent = 0;
        Some(ReadResp {
            content: Some(read_resp::Content::Checkpoint(read_resp::Checkpoint {
                commit_position: event.position,
                prepare_position: event.position,
                timestamp: Some(prost_types::Timestamp::from(SystemTime::now())),
            })),
        })
    }
}

fn compile(filter: Option<Filter>) -> Result<Compiled, Status> {
    Ok(match filter {
        None => Compiled::Everything,
        Some(Filter::EventType(expression)) => Compiled::EventType(Matcher::new(expression)?),
        Some(Filter::StreamIdentifier(expression)) => Compiled::Stream(Matcher::new(expression)?),
    })
}

impl Service {
    /// A catch-up subscription to `$all`: a confirmation, the events after
    /// the start (all of them from the start, none from the end), a
    /// caught-up message, then every new event as it is written, each
    /// through the filter. The history is taken and the live feed joined
    /// under the log's lock, so no event is missed or sent twice. A
    /// subscriber that falls more than [`LIVE_BUFFER`] events behind is
    /// dropped with `UNAVAILABLE`; the client resubscribes from its last
    /// event.
    ///
    /// A filtered subscription also sends a checkpoint (the position of the
    /// last event it examined) whenever `checkpoint_every` events in a row
    /// were examined and none sent, as a real server does every window ×
    /// checkpoint-interval-multiplier events: a subscriber that sees no
    /// matching events still learns how far the server has looked.
    fn subscribe_to_all(
        &self,
        start: Option<AllOption>,
        filter: Option<Filter>,
        checkpoint_every: Option<u64>,
        uuid_as_string: bool,
    ) -> Result<Response<BoxStream<ReadResp>>, Status> {
        let filter = compile(filter)?;
        let mut checkpoints = Checkpoints::new(checkpoint_every);
        let (history, live, last) = {
            let log = self.log();
            let after = match start {
                Some(AllOption::Start(())) | None => None,
                Some(AllOption::End(())) => Some(log.events.last().map_or(0, |e| e.position)),
                Some(AllOption::Position(p)) => Some(p.commit_position),
            };
            let history: Vec<ReadResp> = log
                .events
                .iter()
                .filter(|e| after.is_none_or(|after| e.position > after))
                .filter_map(|e| checkpoints.examine(e, filter.passes(e), uuid_as_string))
                .collect();
            (history, self.live.subscribe(), log.events.last().map(|e| e.position))
        };
        let confirmation = ReadResp {
            content: Some(read_resp::Content::Confirmation(read_resp::SubscriptionConfirmation {
                subscription_id: Uuid::new_v4().to_string(),
            })),
        };
        let caught_up = ReadResp {
            content: Some(read_resp::Content::CaughtUp(read_resp::CaughtUp {
                timestamp: Some(prost_types::Timestamp::from(SystemTime::now())),
                stream_revision: None,
                position: last.map(|p| read_resp::Position {
                    commit_position: p,
                    prepare_position: p,
                }),
            })),
        };
        let live =
            tokio_stream::StreamExt::filter_map(tokio_stream::wrappers::BroadcastStream::new(live), move |event| {
                match event {
                    Ok(event) => checkpoints
                        .examine(&event, filter.passes(&event), uuid_as_string)
                        .map(Ok),
                    Err(_) => Some(Err(Status::unavailable("the subscriber fell too far behind"))),
                }
            });
        let replay = tokio_stream::iter(
            std::iter::once(confirmation)
                .chain(history)
                .chain(std::iter::once(caught_up))
                .map(Ok),
        );
        Ok(Response::new(Box::pin(tokio_stream::StreamExt::chain(replay, live))))
    }
}

#[tonic::async_trait]
impl Streams for Service {
    type ReadStream = BoxStream<ReadResp>;

    async fn read(&self, request: Request<ReadReq>) -> Result<Response<Self::ReadStream>, Status> {
        let options = request
            .into_inner()
            .options
            .ok_or_else(|| Status::invalid_argument("read options are required"))?;
        if options.resolve_links {
            return Err(Status::unimplemented("links are not modelled by this server"));
        }
        let count = match options.count_option {
            Some(CountOption::Count(count)) => count,
            Some(CountOption::Subscription(_)) => {
                let uuid_as_string = matches!(
                    options.uuid_option.and_then(|o| o.content),
                    Some(uuid_option::Content::String(_))
                );
                let Some(StreamOption::All(all)) = options.stream_option else {
                    return Err(Status::unimplemented(
                        "only subscriptions to $all are modelled by this server",
                    ));
                };
                let (filter, checkpoint_every) = match options.filter_option {
                    Some(FilterOption::Filter(filter)) => {
                        let window = match filter.window {
                            Some(Window::Max(max)) => u64::from(max.max(1)),
                            Some(Window::Count(())) | None => DEFAULT_WINDOW,
                        };
                        let every = window * u64::from(filter.checkpoint_interval_multiplier.max(1));
                        (filter.filter, Some(every))
                    }
                    Some(FilterOption::NoFilter(())) | None => (None, None),
                };
                return self.subscribe_to_all(all.all_option, filter, checkpoint_every, uuid_as_string);
            }
            None => u64::MAX,
        };
        let backwards = options.read_direction == ReadDirection::Backwards as i32;
        let uuid_as_string = matches!(
            options.uuid_option.and_then(|o| o.content),
            Some(uuid_option::Content::String(_))
        );
        let limit = usize::try_from(count).unwrap_or(usize::MAX);
        let log = self.log();
        let responses: Vec<ReadResp> = match options.stream_option {
            Some(StreamOption::Stream(stream)) => {
                let name = stream_name(stream.stream_identifier.clone())?;
                let events = log.stream(&name);
                if events.is_empty() {
                    vec![ReadResp {
                        content: Some(read_resp::Content::StreamNotFound(read_resp::StreamNotFound {
                            stream_identifier: stream.stream_identifier,
                        })),
                    }]
                } else {
                    let admitted = |e: &Stored| match (stream.revision_option, backwards) {
                        (Some(RevisionOption::Start(())) | None, false) => true,
                        (Some(RevisionOption::Start(())) | None, true) => e.revision == 0,
                        (Some(RevisionOption::End(())), false) => false,
                        (Some(RevisionOption::End(())), true) => true,
                        (Some(RevisionOption::Revision(r)), false) => e.revision >= r,
                        (Some(RevisionOption::Revision(r)), true) => e.revision <= r,
                    };
                    let ordered: Box<dyn Iterator<Item = &&Stored>> = if backwards {
                        Box::new(events.iter().rev())
                    } else {
                        Box::new(events.iter())
                    };
                    ordered
                        .filter(|e| admitted(e))
                        .take(limit)
                        .map(|e| read_event(e, uuid_as_string))
                        .collect()
                }
            }
            Some(StreamOption::All(all)) => {
                let filter = match options.filter_option {
                    Some(FilterOption::Filter(filter)) => filter.filter,
                    Some(FilterOption::NoFilter(())) | None => None,
                };
                let filter = compile(filter)?;
                let admitted = |e: &Stored| -> Result<bool, Status> {
                    let in_range = match (&all.all_option, backwards) {
                        (Some(AllOption::Start(())) | None, false) => true,
                        (Some(AllOption::Start(())) | None, true) => false,
                        (Some(AllOption::End(())), false) => false,
                        (Some(AllOption::End(())), true) => true,
                        (Some(AllOption::Position(p)), false) => e.position >= p.commit_position,
                        (Some(AllOption::Position(p)), true) => e.position < p.commit_position,
                    };
                    if !in_range {
                        return Ok(false);
                    }
                    Ok(filter.passes(e))
                };
                let ordered: Box<dyn Iterator<Item = &Stored>> = if backwards {
                    Box::new(log.events.iter().rev())
                } else {
                    Box::new(log.events.iter())
                };
                let mut responses = Vec::new();
                for event in ordered {
                    if responses.len() >= limit {
                        break;
                    }
                    if admitted(event)? {
                        responses.push(read_event(event, uuid_as_string));
                    }
                }
                responses
            }
            None => return Err(Status::invalid_argument("a stream or $all is required")),
        };
        Ok(Response::new(Box::pin(tokio_stream::iter(
            responses.into_iter().map(Ok),
        ))))
    }

    async fn append(&self, request: Request<Streaming<AppendReq>>) -> Result<Response<AppendResp>, Status> {
        let mut messages = request.into_inner();
        let options = match messages.message().await?.and_then(|m| m.content) {
            Some(append_req::Content::Options(options)) => options,
            _ => return Err(Status::invalid_argument("an append starts with its options")),
        };
        let stream = stream_name(options.stream_identifier)?;
        let expected = match options.expected_stream_revision {
            Some(ExpectedStreamRevision::Revision(r)) => Expected::Exact(r),
            Some(ExpectedStreamRevision::NoStream(())) => Expected::NoStream,
            Some(ExpectedStreamRevision::StreamExists(())) => Expected::StreamExists,
            Some(ExpectedStreamRevision::Any(())) | None => Expected::Any,
        };
        let mut proposed = Vec::new();
        while let Some(message) = messages.message().await? {
            let Some(append_req::Content::ProposedMessage(event)) = message.content else {
                return Err(Status::invalid_argument("only events may follow an append's options"));
            };
            proposed.push(proposed_event(
                event.id,
                &event.metadata,
                event.custom_metadata,
                event.data,
            )?);
        }
        // A client that gives up on the call (a dropped future, a
        // deadline) may end its request stream cleanly before it resets the
        // call; a real server aborts such a call and writes nothing. Give
        // the reset a moment to arrive: when it does, the call is dropped
        // here, before anything is written.
        tokio::time::sleep(RESET_GRACE).await;
        let result = match self.write(&stream, expected, proposed) {
            Appended::Done { revision, position } => append_resp::Result::Success(append_resp::Success {
                current_revision_option: Some(append_resp::success::CurrentRevisionOption::CurrentRevision(revision)),
                position_option: Some(append_resp::success::PositionOption::Position(append_resp::Position {
                    commit_position: position,
                    prepare_position: position,
                })),
            }),
            Appended::WrongExpectedVersion { current, expected } => {
                use append_resp::wrong_expected_version::{
                    CurrentRevisionOption, CurrentRevisionOption2060, ExpectedRevisionOption,
                    ExpectedRevisionOption2060,
                };
                append_resp::Result::WrongExpectedVersion(append_resp::WrongExpectedVersion {
                    current_revision_option_20_6_0: Some(match current {
                        Some(r) => CurrentRevisionOption2060::CurrentRevision2060(r),
                        None => CurrentRevisionOption2060::NoStream2060(()),
                    }),
                    expected_revision_option_20_6_0: Some(match expected {
                        Expected::Exact(r) => ExpectedRevisionOption2060::ExpectedRevision2060(r),
                        Expected::StreamExists => ExpectedRevisionOption2060::StreamExists2060(()),
                        Expected::Any | Expected::NoStream => ExpectedRevisionOption2060::Any2060(()),
                    }),
                    current_revision_option: Some(match current {
                        Some(r) => CurrentRevisionOption::CurrentRevision(r),
                        None => CurrentRevisionOption::CurrentNoStream(()),
                    }),
                    expected_revision_option: Some(match expected {
                        Expected::Exact(r) => ExpectedRevisionOption::ExpectedRevision(r),
                        Expected::Any => ExpectedRevisionOption::ExpectedAny(()),
                        Expected::StreamExists => ExpectedRevisionOption::ExpectedStreamExists(()),
                        Expected::NoStream => ExpectedRevisionOption::ExpectedNoStream(()),
                    }),
                })
            }
        };
        Ok(Response::new(AppendResp { result: Some(result) }))
    }

    async fn delete(&self, _: Request<DeleteReq>) -> Result<Response<DeleteResp>, Status> {
        Err(Status::unimplemented("deletes are not modelled by this server"))
    }

    async fn tombstone(&self, _: Request<TombstoneReq>) -> Result<Response<TombstoneResp>, Status> {
        Err(Status::unimplemented("tombstones are not modelled by this server"))
    }

    type BatchAppendStream = BoxStream<BatchAppendResp>;

    /// Batches arrive as chunks sharing a correlation id: the first with the
    /// options, the last marked final. Each batch is written whole when its
    /// final chunk arrives and answered on the response stream; a call that
    /// ends (or is cancelled) leaves unfinished batches unwritten.
    async fn batch_append(
        &self,
        request: Request<Streaming<BatchAppendReq>>,
    ) -> Result<Response<Self::BatchAppendStream>, Status> {
        let mut chunks = request.into_inner();
        let service = self.clone();
        let answers = async_stream_of(
            async move |answer: tokio::sync::mpsc::Sender<Result<BatchAppendResp, Status>>| {
                let mut open: std::collections::HashMap<Vec<u8>, (batch_append_req::Options, Vec<Proposed>)> =
                    std::collections::HashMap::new();
                loop {
                    let chunk = match chunks.message().await {
                        Ok(Some(chunk)) => chunk,
                        Ok(None) => return,
                        Err(refused) => {
                            let _ = answer.send(Err(refused)).await;
                            return;
                        }
                    };
                    let key = chunk
                        .correlation_id
                        .as_ref()
                        .map(prost::Message::encode_to_vec)
                        .unwrap_or_default();
                    let (options, proposed) = match (open.remove(&key), chunk.options) {
                        (Some(batch), _) => batch,
                        (None, Some(options)) => (options, Vec::new()),
                        (None, None) => {
                            let _ = answer
                                .send(Err(Status::invalid_argument("a batch starts with its options")))
                                .await;
                            return;
                        }
                    };
                    let mut proposed = proposed;
                    for event in chunk.proposed_messages {
                        match proposed_event(event.id, &event.metadata, event.custom_metadata, event.data) {
                            Ok(event) => proposed.push(event),
                            Err(refused) => {
                                let _ = answer.send(Err(refused)).await;
                                return;
                            }
                        }
                    }
                    if !chunk.is_final {
                        open.insert(key, (options, proposed));
                        continue;
                    }
                    let written = service.batch(chunk.correlation_id, options, proposed);
                    if answer.send(Ok(written)).await.is_err() {
                        return;
                    }
                }
            },
        );
        Ok(Response::new(answers))
    }
}
