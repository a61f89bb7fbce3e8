//! `factos serve`: the store over HTTP, for programs in any language.
//!
//! * `GET /read?query=<json>&options=<json>`: a JSON array of records
//!   (the `export` form: `type`, `tags`, `data`, `position`, `id`,
//!   `stream`, `revision`, `metadata`, `recordedAt`). A page ends at
//!   `--max-read` events or once its events add up to `--max-read-bytes`
//!   (at least one event): when more may follow, a `Link: <...>; rel="next"`
//!   header gives the request for the next page (the same query, options
//!   with `from` after the page); its absence means the answer is complete.
//! * `POST /append` with `{events, condition?: {failIfEventsMatch, after?},
//!   stream?, expected?}`: `{durationInMicroseconds, appendConditionFailed,
//!   positions}`; a failed condition is a normal answer (200, `positions`
//!   empty). A failed stream expectation or a taken id is a 409.
//! * `GET /subscribe?query=<json>&after=<cursor>`: new events as
//!   server-sent events (`id` is the cursor; `Last-Event-ID` resumes).
//! * `GET /health`: 200 when the store answers, 503 when it does not.
//! * `GET /stats`: the store at a glance (counts, types, tags, appends over
//!   the last ten minutes, checkpoints and how far behind they are, parked
//!   effects).
//! * `POST /parked/discard` with `{runner, effect}`: discards a parked
//!   effect; `POST /parked/retry` with the same asks its runner to hand it
//!   over again (each writes an audit line to standard error).
//! * `GET /console`: the operator's console, a web page over this API
//!   (see [`console`]).
//! * `GET /read?stream=<id>&revision=<n>`: the events of one stream from a
//!   revision on, in revision order, paged like query reads.
//!
//! Malformed input is a 400 with `{"error": "..."}` naming the problem;
//! a store that fails is a 503; nothing answers 500.
//!
//! Bounded resources: at most `--max-connections` (512) connections at
//! once; a client that takes longer than `--header-timeout` (10 s) to send
//! a request's headers, idle keep-alive connections included, is
//! disconnected. On SIGINT or SIGTERM the server stops accepting, ends
//! every event stream, lets requests in flight finish for at most
//! `--shutdown-timeout` (10 s), and exits 0.

mod api_doc;
mod connections;
mod console;
mod wire;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query as UrlQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use factos::{Cursor, Query, ReadOptions, StoreError, Subscription};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use self::api_doc::{AppendAnswer, ErrorBody, HealthAnswer, RequestRefusals, StoreRefusals};
use self::wire::{AppendJson, OptionsJson, QueryJson};
use crate::cli::ServeArgs;
use crate::error::{CliError, one_line};
use crate::follow::end_cursor;
use crate::record::RecordOut;
use crate::store::{CliStore, schema_mismatch};

#[derive(Debug, Clone)]
struct Served<S> {
    store: S,
    token: Option<String>,
    max_read: usize,
    max_read_bytes: usize,
    /// Turns true when the server shuts down: event streams end.
    stopping: watch::Receiver<bool>,
}

pub async fn run<S: CliStore>(store: S, args: &ServeArgs) -> Result<(), CliError> {
    let seconds = |name: &str, value: f64| {
        Duration::try_from_secs_f64(value).map_err(|_| CliError::Usage(format!("{name} must be a number of seconds")))
    };
    let bounds = connections::Bounds {
        max_connections: args.max_connections.max(1),
        header_timeout: seconds("--header-timeout", args.header_timeout)?,
        shutdown_timeout: seconds("--shutdown-timeout", args.shutdown_timeout)?,
    };
    let signals = shutdown_signals()?;
    let (stopping, _) = watch::channel(false);
    if args.token.as_deref().is_some_and(|token| token.trim().is_empty()) {
        return Err(CliError::Usage(
            "the token is empty (--token or FACTOS_TOKEN): every request would be refused; give a token or none".into(),
        ));
    }
    let served = Served {
        store,
        token: args.token.clone(),
        max_read: args.max_read.max(1),
        max_read_bytes: args.max_read_bytes.max(1),
        stopping: stopping.subscribe(),
    };
    let app = Router::new()
        .route("/read", get(read::<S>))
        .route("/append", post(append::<S>))
        .route("/subscribe", get(subscribe::<S>))
        .route("/stats", get(console::stats::<S>))
        .route("/parked/discard", post(console::discard::<S>))
        .route("/parked/retry", post(console::retry::<S>))
        .route_layer(middleware::from_fn_with_state(served.clone(), authorize::<S>))
        .route("/health", get(health::<S>))
        .route("/openapi.json", get(openapi_json))
        .route("/console", get(console::page))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such endpoint: use /read, /append, /subscribe, /stats, /health or /console",
            )
        })
        .method_not_allowed_fallback(|request: Request| async move {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not allowed on {}", request.method(), request.uri().path()),
            )
        })
        .layer(middleware::from_fn(within_request_bounds))
        .layer(DefaultBodyLimit::max(args.max_body))
        .with_state(served);
    let listener = tokio::net::TcpListener::bind(args.listen.as_str())
        .await
        .map_err(CliError::io(format!("cannot listen on {}", args.listen)))?;
    let address = listener
        .local_addr()
        .map_err(CliError::io("cannot read the listening address"))?;
    println!("listening on http://{address}");
    if !address.ip().is_loopback() && args.token.is_none() {
        eprintln!("warning: serving on {address} without --token: anyone who can reach it can read and append");
    }
    let shutdown = async {
        signals.await;
        eprintln!("shutting down: closing event streams, finishing requests in flight");
        stopping.send_replace(true);
    };
    if !connections::serve(listener, app, bounds, shutdown).await {
        eprintln!(
            "stopped with requests still in flight after {:?}",
            bounds.shutdown_timeout
        );
    }
    Ok(())
}

/// Completes on the first SIGINT (Ctrl-C) or SIGTERM.
fn shutdown_signals() -> Result<impl std::future::Future<Output = ()>, CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).map_err(CliError::io("cannot watch for SIGINT"))?;
    let mut terminate = signal(SignalKind::terminate()).map_err(CliError::io("cannot watch for SIGTERM"))?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// `{"error": message}` with `status`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    ApiError {
        status,
        message: message.into(),
    }
    .into_response()
}

/// A refused request: its status and what was wrong.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// A store error: conflicts 409, refusals 400, failures 503.
    fn store(failure: &StoreError) -> Self {
        let status = match failure {
            StoreError::RevisionMismatch(_) | StoreError::DuplicateEventId(_) | StoreError::Contention(_) => {
                StatusCode::CONFLICT
            }
            StoreError::Backend(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self {
            status,
            message: one_line(failure),
        }
    }
}

/// A body that could not be read (over `--max-body`, say), with the
/// status and words axum gives it.
impl From<BytesRejection> for ApiError {
    fn from(rejected: BytesRejection) -> Self {
        Self {
            status: rejected.status(),
            message: rejected.body_text(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(ErrorBody { error: self.message })).into_response()
    }
}

/// Checks `Authorization: Bearer <token>` when the server has a token.
async fn authorize<S: CliStore>(State(served): State<Served<S>>, request: Request, next: Next) -> Response {
    let Some(token) = &served.token else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match given {
        Some(given) if same(given.as_bytes(), token.as_bytes()) => next.run(request).await,
        _ => {
            let mut response = error(StatusCode::UNAUTHORIZED, "a bearer token is required");
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            response
        }
    }
}

/// The longest request target (path and query) served: 32 KiB (most
/// HTTP stacks refuse targets over 64 KiB; send large queries to `/append`
/// in its body, or read with fewer items at a time).
pub const MAX_URI_BYTES: usize = 32 * 1024;

/// The most bytes of request headers served: 64 KiB.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Refuses, with a JSON body, a request whose target or headers are
/// longer than served (hyper's own, larger, limit answers without a body).
async fn within_request_bounds(request: Request, next: Next) -> Response {
    let target = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return error(
            StatusCode::URI_TOO_LONG,
            format!(
                "the request target has {target} bytes; at most {MAX_URI_BYTES} are served (send large queries in smaller parts)"
            ),
        );
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers > MAX_HEADER_BYTES {
        return error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request headers have {headers} bytes; at most {MAX_HEADER_BYTES} are served"),
        );
    }
    next.run(request).await
}

/// Compares in time that depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Asks the store for its schema version: a round trip that, unlike a
/// read of every event, takes no lock writers wait for (probes come often).
/// This API as an OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses(
        (status = 200, description = "This document", content_type = "application/json", body = Object),
        RequestRefusals,
    ))]
async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], api_doc::document()).into_response()
}

/// Whether the store answers with the schema this server writes.
#[utoipa::path(get, path = "/health", tag = "service",
    responses(
        (status = 200, description = "The store answers", body = HealthAnswer),
        RequestRefusals,
        (status = 503, description = "The store does not answer, or has another schema version", body = ErrorBody),
    ))]
async fn health<S: CliStore>(State(served): State<Served<S>>) -> Response {
    match served.store.schema_version().await {
        Ok(version) if version.is_current() => axum::Json(HealthAnswer { status: "ok".into() }).into_response(),
        Ok(version) => error(StatusCode::SERVICE_UNAVAILABLE, one_line(&schema_mismatch(version))),
        Err(failure) => error(StatusCode::SERVICE_UNAVAILABLE, one_line(&failure)),
    }
}

#[derive(Debug, Deserialize)]
struct ReadParams {
    query: Option<String>,
    options: Option<String>,
    stream: Option<String>,
    revision: Option<u64>,
}

/// Parses a JSON parameter, naming it when it is malformed.
fn param<T: serde::de::DeserializeOwned>(name: &str, text: Option<&str>) -> Result<Option<T>, ApiError> {
    text.map(|text| serde_json::from_str(text))
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
}

fn query_param(text: Option<&str>) -> Result<Query, ApiError> {
    match param::<QueryJson>("query", text)? {
        Some(query) => query
            .into_query()
            .map_err(|e| ApiError::bad_request(format!("query: {e}"))),
        None => Ok(Query::all()),
    }
}

/// A page of `stream`'s events from `revision` on, ending at `--max-read`
/// events or `--max-read-bytes`, with a `Link` to the next page when more
/// may follow.
async fn stream_page<S: CliStore>(served: &Served<S>, stream: &str, revision: u64) -> Result<Response, ApiError> {
    let stream = factos::StreamId::new(stream).map_err(|e| ApiError::bad_request(format!("stream: {e}")))?;
    let mut events = served
        .store
        .read_stream_page(&stream, factos::StreamRevision::new(revision), served.max_read)
        .await
        .map_err(|failure| ApiError::store(&failure))?;
    // The page a read by position would make of them: the same limits and
    // the same rule for whether more may follow.
    let page = ReadOptions::forwards()
        .limit(served.max_read)
        .max_bytes(served.max_read_bytes);
    let mut budget = page.budget();
    if let Some(last) = events.iter().position(|event| !budget.take(event)) {
        events.truncate(last + 1);
    }
    let next = events.last().filter(|_| page.next_page(&events).is_some()).map(|last| {
        let revision = last.revision.value().saturating_add(1).to_string();
        vec![("stream", stream.as_str().to_owned()), ("revision", revision)]
    });
    Ok(with_next_link(
        axum::Json(events.iter().map(RecordOut::new).collect::<Vec<_>>()).into_response(),
        next,
    ))
}

/// `response` with a `Link` header to the next page, `GET /read` with the
/// parameters `next`, when there is one.
fn with_next_link(mut response: Response, next: Option<Vec<(&str, String)>>) -> Response {
    let link = next
        .and_then(|pairs| serde_urlencoded::to_string(pairs).ok())
        .and_then(|query| header::HeaderValue::from_str(&format!("</read?{query}>; rel=\"next\"")).ok());
    if let Some(link) = link {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

/// The events matching a query, a page at a time.
#[utoipa::path(get, path = "/read", tag = "events",
    params(
        ("query" = Option<String>, Query, description = "A `QueryJson` as JSON text; absent: every event",
            example = r#"{"items":[{"types":["TicketSold"],"tags":["concert:42"]}]}"#),
        ("options" = Option<String>, Query, description = "An `OptionsJson` as JSON text",
            example = r#"{"from":1,"limit":100}"#),
        ("stream" = Option<String>, Query, description = "Instead of a query: the events of this stream, in revision order"),
        ("revision" = Option<u64>, Query, description = "With `stream`: from this revision on (0 when absent)"),
    ),
    security((), ("token" = [])),
    responses(
        (status = 200, description = "A page of records, in position order as the options say (in revision order for a `stream`). It ends at \
            `--max-read` events or `--max-read-bytes`; when more may follow, a `Link` header gives the request \
            for the next page, and its absence means the answer is complete.", body = [RecordOut],
            headers(("Link" = String, description = "`</read?...>; rel=\"next\"`: the next page"))),
        (status = 400, description = "A malformed query or options, or a query over the store's limits", body = ErrorBody),
        StoreRefusals,
        RequestRefusals,
    ))]
async fn read<S: CliStore>(
    State(served): State<Served<S>>,
    params: Result<UrlQuery<ReadParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let UrlQuery(params) = params.map_err(|rejected| ApiError::bad_request(rejected.body_text()))?;
    if let Some(stream) = params.stream {
        return stream_page(&served, &stream, params.revision.unwrap_or(0)).await;
    }
    let query = query_param(params.query.as_deref())?;
    let asked = param::<OptionsJson>("options", params.options.as_deref())?.unwrap_or_default();
    let options = asked.to_options(served.max_read, served.max_read_bytes);
    let events = served
        .store
        .read(&query, options)
        .await
        .map_err(|failure| ApiError::store(&failure))?;
    let next = asked.next_page(&options, &events).map(|options| {
        let mut pairs = vec![("options", options)];
        if let Some(query) = params.query {
            pairs.insert(0, ("query", query));
        }
        pairs
    });
    let records: Vec<RecordOut<'_>> = events.iter().map(RecordOut::new).collect();
    Ok(with_next_link(axum::Json(records).into_response(), next))
}

/// Appends events atomically to one stream, if the condition and the
/// stream expectation hold. A failed condition is a normal answer.
#[utoipa::path(post, path = "/append", tag = "events",
    request_body = AppendJson,
    security((), ("token" = [])),
    responses(
        (status = 200, description = "Appended, or the condition failed and nothing was written", body = AppendAnswer),
        (status = 400, description = "A malformed request, or a condition query over the store's limits", body = ErrorBody),
        (status = 409, description = "The stream was not at the expected revision, or an event id is taken by another event, or a transient conflict", body = ErrorBody),
        (status = 413, description = "The body is larger than `--max-body`", body = ErrorBody),
        StoreRefusals,
        RequestRefusals,
    ))]
async fn append<S: CliStore>(
    State(served): State<Served<S>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let request = serde_json::from_slice::<AppendJson>(&body)
        .map_err(|e| e.to_string())
        .and_then(AppendJson::into_request)
        .map_err(ApiError::bad_request)?;
    let began = Instant::now();
    let outcome = served.store.append(request).await;
    let micros = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
    let positions: Vec<u64> = match outcome {
        Ok(committed) => committed.records.iter().map(|r| r.position.value()).collect(),
        Err(StoreError::ConditionFailed(_)) => {
            return Ok(axum::Json(AppendAnswer {
                duration_in_microseconds: micros,
                append_condition_failed: true,
                positions: Vec::new(),
            })
            .into_response());
        }
        Err(failure) => return Err(ApiError::store(&failure)),
    };
    Ok(axum::Json(AppendAnswer {
        duration_in_microseconds: micros,
        append_condition_failed: false,
        positions,
    })
    .into_response())
}

#[derive(Debug, Deserialize)]
struct SubscribeParams {
    query: Option<String>,
    after: Option<String>,
}

/// Events sent ahead of a slow client, per subscription.
const SUBSCRIBER_BUFFER: usize = 256;

/// New events matching a query as server-sent events: `record` events
/// (data: a record; id: its cursor), and an `error` event before the
/// stream ends on a store failure. Resume with `after` or `Last-Event-ID`;
/// without either, from the end of the log.
#[utoipa::path(get, path = "/subscribe", tag = "events",
    params(
        ("query" = Option<String>, Query, description = "A `QueryJson` as JSON text; absent: every event"),
        ("after" = Option<String>, Query, description = "Resume after this cursor (a record event's id)"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this cursor, as browsers send it"),
    ),
    security((), ("token" = [])),
    responses(
        (status = 200, description = "An event stream; it ends when the server shuts down", content_type = "text/event-stream", body = String),
        (status = 400, description = "A malformed query or cursor, or a query over the store's limits", body = ErrorBody),
        StoreRefusals,
        RequestRefusals,
    ))]
async fn subscribe<S: CliStore>(
    State(served): State<Served<S>>,
    headers: HeaderMap,
    params: Result<UrlQuery<SubscribeParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let UrlQuery(params) = params.map_err(|rejected| ApiError::bad_request(rejected.body_text()))?;
    let query = query_param(params.query.as_deref())?;
    let resume = params.after.or_else(|| {
        headers
            .get("last-event-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    });
    let after = match resume {
        Some(text) => Some(
            text.parse::<Cursor>()
                .map_err(|e| ApiError::bad_request(format!("after: {e}")))?,
        ),
        None => end_cursor(&served.store, &query).await.map_err(|failure| ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: one_line(&failure),
        })?,
    };
    let (sender, receiver) = mpsc::channel::<SseEvent>(SUBSCRIBER_BUFFER);
    tokio::spawn(follow(served.store, query, after, sender, served.stopping));
    let events = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|event| (Ok::<_, Infallible>(event), receiver))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

/// Feeds a subscriber until it goes away; a store failure is sent as an
/// `error` event and ends the stream (the client resumes with its last id).
async fn follow<S: CliStore>(
    store: S,
    query: Query,
    after: Option<Cursor>,
    sender: mpsc::Sender<SseEvent>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut subscription = Subscription::new(&store, query, after);
    loop {
        let batch = tokio::select! {
            _ = sender.closed() => return,
            // The server shuts down: the stream ends, and the client
            // resumes elsewhere with its last event id.
            _ = stopping.wait_for(|stopping| *stopping) => return,
            batch = subscription.next_batch() => batch,
        };
        match batch {
            Ok(batch) => {
                for delivered in batch {
                    let event = SseEvent::default()
                        .event("record")
                        .id(delivered.cursor.to_string())
                        .data(RecordOut::new(&delivered.record).line());
                    if sender.send(event).await.is_err() {
                        return;
                    }
                }
            }
            Err(failure) => {
                let event = SseEvent::default()
                    .event("error")
                    .data(json!({"error": one_line(&failure)}).to_string());
                let _ = sender.send(event).await;
                return;
            }
        }
    }
}
