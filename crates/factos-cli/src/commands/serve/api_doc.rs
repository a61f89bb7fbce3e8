//! The HTTP API as an OpenAPI 3.1 document, generated from the types and
//! handlers the server uses, so it cannot drift from them. Served at
//! `/openapi.json`; `docs/http-api.openapi.json` is the same document
//! (a test keeps them equal).

use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::wire::{AppendJson, ConditionJson, ExpectedJson, ItemJson, OptionsJson, QueryJson};
use crate::record::{EventIn, RecordOut};

/// Every refusal and failure: what was wrong, in one line.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": "query: expected value at line 1 column 1"}))]
pub struct ErrorBody {
    /// What was wrong.
    pub error: String,
}

/// What every path may answer before its handler runs: a method it does
/// not serve, a request target or headers over the server's bounds.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only the OpenAPI document names them.
pub enum RequestRefusals {
    /// 405.
    #[response(status = 405, description = "A method the path does not serve")]
    MethodNotAllowed(ErrorBody),
    /// 414.
    #[response(status = 414, description = "The request target is longer than 32 KiB")]
    UriTooLong(ErrorBody),
    /// 431.
    #[response(status = 431, description = "The request headers are larger than 64 KiB")]
    HeadersTooLarge(ErrorBody),
}

/// What every path that reaches the store and needs the token may answer
/// besides [`RequestRefusals`].
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only the OpenAPI document names them.
pub enum StoreRefusals {
    /// 401.
    #[response(
        status = 401,
        description = "A bearer token is required (when the server has `--token`)"
    )]
    Unauthorized(ErrorBody),
    /// 503.
    #[response(status = 503, description = "The store does not answer")]
    Unavailable(ErrorBody),
}

/// The answer to `POST /append`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"durationInMicroseconds": 812, "appendConditionFailed": false, "positions": [43]}))]
pub struct AppendAnswer {
    /// How long the store took.
    pub duration_in_microseconds: u64,
    /// Whether the condition failed; then nothing was written and
    /// `positions` is empty.
    pub append_condition_failed: bool,
    /// The positions of the appended events, in order.
    pub positions: Vec<u64>,
}

/// The answer to `GET /health` when the store answers.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct HealthAnswer {
    /// `ok`.
    pub status: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "factos serve",
        description = "An event store over HTTP: reads with exact query semantics, appends with DCB conditions, \
                       live subscriptions. Every refusal has a JSON body `{\"error\": ...}`: 400 malformed input or \
                       a query over the store's limits, 401 a missing or wrong bearer token, 404 an unknown path, \
                       405 a method a path does not serve, 409 a failed stream expectation or taken id, 413 a body \
                       over `--max-body`, 414 a request target over 32 KiB, 431 headers over 64 KiB, 503 a store \
                       that does not answer.",
        license(name = "MIT OR Apache-2.0")
    ),
    paths(super::read, super::append, super::subscribe, super::console::stats, super::console::discard, super::console::retry, super::health, super::openapi_json),
    components(schemas(
        QueryJson, ItemJson, OptionsJson, AppendJson, ConditionJson, ExpectedJson, EventIn, RecordOut,
        ErrorBody, AppendAnswer, HealthAnswer, super::console::StatsAnswer, super::console::Appends,
        super::console::RunnerOut, super::console::ParkedOut, super::console::ParkedJson,
        super::console::DiscardAnswer, super::console::RetryAnswer
    )),
    modifiers(&BearerToken)
)]
pub struct ApiDoc;

/// Declares the bearer token every path but `/health`, `/openapi.json`
/// and `/console`
/// asks for when the server has one.
struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("token", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The document as served and published: pretty JSON.
pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}
