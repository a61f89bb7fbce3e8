//! The operator's console: one HTML page with a small script, embedded in
//! the binary (no build step, no request leaving the machine), and the
//! store statistics it shows (`GET /stats`).
//!
//! The page itself holds no data: everything it shows comes from the API
//! (`/read`, `/subscribe`, `/stats`) with the token the operator types, so
//! a wrong token sees nothing.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use factos::{EffectKey, EventId, Position, Query, ReadOptions, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, Served};
use crate::record::format_time;
use crate::store::CliStore;

/// The page.
const PAGE: &str = include_str!("console.html");

/// Seconds per bar of the appends chart.
const BUCKET_SECONDS: i64 = 10;
/// Bars of the appends chart: ten minutes.
const BUCKETS: usize = 60;
/// The most recent events the chart counts; a store appending faster than
/// this per ten minutes shows the newest part of the window. The read also
/// stops at the server's `--max-read-bytes`, since it loads payloads only
/// for their times.
const CHART_EVENTS: usize = 20_000;
/// Tags listed.
const TOP_TAGS: usize = 20;

/// `GET /console`: the page.
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Nothing but this page's own inline script and style, and
            // requests to this server.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
            ),
        ],
        PAGE,
    )
        .into_response()
}

/// What `/stats` answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatsAnswer {
    /// How many events.
    events: u64,
    /// How many streams.
    streams: u64,
    /// The store's schema version.
    schema_version: i64,
    /// When the last event was recorded (RFC 3339), if any.
    last_recorded_at: Option<String>,
    /// Every event type with its number of events, most frequent first.
    event_types: Vec<(String, u64)>,
    /// The most used tags with their number of events.
    top_tags: Vec<(String, u64)>,
    /// Appends over the last ten minutes.
    appends: Appends,
    /// Every checkpoint, with how far it is behind the log's head.
    runners: Vec<RunnerOut>,
    /// The effects each runner parked.
    parked: Vec<ParkedOut>,
}

/// Events recorded per interval, oldest interval first, the last one
/// ending now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Appends {
    /// The length of one interval.
    bucket_seconds: i64,
    /// Events recorded in each interval.
    counts: Vec<u64>,
}

/// A projection's or effect runner's checkpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunnerOut {
    /// The checkpoint's name.
    name: String,
    /// The cursor stored.
    cursor: String,
    /// Positions between the cursor and the log's head (exactly the
    /// events behind where positions have no gaps, as in SQLite).
    behind_events: u64,
    /// How long ago the oldest event after the cursor was recorded; 0 when
    /// nothing is behind, `null` when unknown.
    behind_seconds: Option<f64>,
}

/// A parked effect.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParkedOut {
    runner: String,
    /// `<event id>/<index>`.
    effect: String,
    position: u64,
    attempts: u32,
    error: String,
    /// An operator asked for it to be handed over again; its runner has not
    /// done so yet.
    retry_requested: bool,
}

/// The store at a glance: counts, types, tags, appends over the last ten
/// minutes, checkpoints and how far behind they are, parked effects.
#[utoipa::path(get, path = "/stats", tag = "service",
    security((), ("token" = [])),
    responses(
        (status = 200, description = "The store at a glance", body = StatsAnswer),
        super::StoreRefusals,
        super::RequestRefusals,
    ))]
pub async fn stats<S: CliStore>(State(served): State<Served<S>>) -> Result<Response, ApiError> {
    let store = &served.store;
    let failed = |failure: factos::StoreError| ApiError::store(&failure);
    let stats = store.stats(TOP_TAGS).await.map_err(failed)?;
    let version = store.schema_version().await.map_err(failed)?;
    let now = Timestamp::now();
    let recent = store
        .read(
            &Query::all(),
            ReadOptions::backwards()
                .limit(CHART_EVENTS)
                .max_bytes(served.max_read_bytes),
        )
        .await
        .map_err(failed)?;
    let appends = appends(recent.iter().map(|e| e.recorded_at), now);
    let head = stats.last.map_or(0, |(position, _)| position.value());
    let mut runners = Vec::new();
    let mut parked = Vec::new();
    for (name, cursor) in store.checkpoints().await.map_err(failed)? {
        let behind = head.saturating_sub(cursor.position().value());
        let oldest = if behind == 0 {
            Some(0.0)
        } else {
            let next = store
                .read(
                    &Query::all(),
                    ReadOptions::forwards()
                        .from(Position::new(cursor.position().value().saturating_add(1)))
                        .limit(1),
                )
                .await
                .map_err(failed)?;
            next.first().map(|e| seconds_between(e.recorded_at, now))
        };
        for effect in store.parked_effects(&name).await.map_err(failed)? {
            parked.push(ParkedOut {
                position: effect.position().value(),
                runner: effect.runner,
                effect: effect.key.to_string(),
                attempts: effect.attempts,
                error: effect.error,
                retry_requested: effect.retry_requested,
            });
        }
        runners.push(RunnerOut {
            name,
            cursor: cursor.to_string(),
            behind_events: behind,
            behind_seconds: oldest,
        });
    }
    Ok(axum::Json(StatsAnswer {
        events: stats.events,
        streams: stats.streams,
        schema_version: version.found,
        last_recorded_at: stats.last.map(|(_, at)| format_time(at)),
        event_types: stats.event_types,
        top_tags: stats.top_tags,
        appends,
        runners,
        parked,
    })
    .into_response())
}

/// What `POST /parked/discard` and `POST /parked/retry` take: the runner
/// and the effect (`<event id>/<index>`, as `/stats` lists it).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParkedJson {
    runner: String,
    effect: String,
}

/// What `POST /parked/discard` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiscardAnswer {
    /// Whether the effect was parked (and is now gone).
    discarded: bool,
}

/// What `POST /parked/retry` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetryAnswer {
    /// Whether the effect was parked (and its runner will hand it over
    /// again).
    requested: bool,
}

/// Discards a parked effect: it will not be handed over again. Each
/// discard is written to the server's log (standard error) as an audit line.
#[utoipa::path(post, path = "/parked/discard", tag = "service",
    request_body = ParkedJson,
    security((), ("token" = [])),
    responses(
        (status = 200, description = "Discarded, or there was no such parked effect", body = DiscardAnswer),
        (status = 400, description = "A malformed request or effect", body = super::ErrorBody),
        (status = 413, description = "The body is larger than `--max-body`", body = super::ErrorBody),
        super::StoreRefusals,
        super::RequestRefusals,
    ))]
pub async fn discard<S: CliStore>(
    State(served): State<Served<S>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (asked, key) = parked_effect(body)?;
    let discarded = served
        .store
        .discard_parked(&asked.runner, key)
        .await
        .map_err(|failure| ApiError::store(&failure))?;
    if discarded {
        audit("discarded", &asked);
    }
    Ok(axum::Json(DiscardAnswer { discarded }).into_response())
}

/// Asks a parked effect's runner to hand it over again: the runner does so
/// the next time it looks (an effect runner looks every second while it
/// waits for events), then removes it or parks it again with the new
/// error. Each request is written to the server's log (standard error) as
/// an audit line.
#[utoipa::path(post, path = "/parked/retry", tag = "service",
    request_body = ParkedJson,
    security((), ("token" = [])),
    responses(
        (status = 200, description = "Requested, or there was no such parked effect", body = RetryAnswer),
        (status = 400, description = "A malformed request or effect", body = super::ErrorBody),
        (status = 413, description = "The body is larger than `--max-body`", body = super::ErrorBody),
        super::StoreRefusals,
        super::RequestRefusals,
    ))]
pub async fn retry<S: CliStore>(
    State(served): State<Served<S>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (asked, key) = parked_effect(body)?;
    let requested = served
        .store
        .retry_parked(&asked.runner, key)
        .await
        .map_err(|failure| ApiError::store(&failure))?;
    if requested {
        audit("asked to retry", &asked);
    }
    Ok(axum::Json(RetryAnswer { requested }).into_response())
}

/// The parked effect a request body names.
fn parked_effect(body: Result<Bytes, BytesRejection>) -> Result<(ParkedJson, EffectKey), ApiError> {
    let body = body?;
    let asked: ParkedJson = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let key = effect_key(&asked.effect).map_err(ApiError::bad_request)?;
    Ok((asked, key))
}

/// Writes the audit line of an operator's action on a parked effect.
fn audit(action: &str, asked: &ParkedJson) {
    eprintln!(
        "audit: {action} the parked effect {} of runner {:?} at {}",
        asked.effect,
        asked.runner,
        format_time(Timestamp::now())
    );
}

/// `<event id>/<index>` as an effect key.
fn effect_key(text: &str) -> Result<EffectKey, String> {
    let (event, index) = text
        .split_once('/')
        .ok_or_else(|| format!("effect {text:?} is not <event id>/<index>"))?;
    let event = uuid::Uuid::parse_str(event).map_err(|e| format!("effect {text:?}: {e}"))?;
    let index = index.parse().map_err(|e| format!("effect {text:?}: {e}"))?;
    Ok(EffectKey {
        event: EventId::from_uuid(event),
        index,
    })
}

/// Counts `times` into the ten-minute window ending at `now`.
fn appends(times: impl Iterator<Item = Timestamp>, now: Timestamp) -> Appends {
    let mut counts = vec![0u64; BUCKETS];
    let bucket_micros = BUCKET_SECONDS * 1_000_000;
    for at in times {
        let age = now.as_unix_micros().saturating_sub(at.as_unix_micros()).max(0);
        let back = usize::try_from(age / bucket_micros).unwrap_or(usize::MAX);
        if back < BUCKETS {
            counts[BUCKETS - 1 - back] += 1;
        }
    }
    Appends {
        bucket_seconds: BUCKET_SECONDS,
        counts,
    }
}

fn seconds_between(earlier: Timestamp, later: Timestamp) -> f64 {
    (later.as_unix_micros() - earlier.as_unix_micros()).max(0) as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effect_keys_parse_as_stats_prints_them_and_bad_ones_say_why() {
        let key = EffectKey {
            event: EventId::random(),
            index: 3,
        };
        assert_eq!(effect_key(&key.to_string()), Ok(key));
        assert!(effect_key("no-slash").is_err_and(|e| e.contains("<event id>/<index>")));
        assert!(effect_key("not-a-uuid/1").is_err());
    }

    #[test]
    fn appends_fall_in_the_interval_of_their_age_and_older_ones_are_left_out() {
        let now = Timestamp::from_unix_micros(1_000_000_000_000);
        let ago = |seconds: i64| Timestamp::from_unix_micros(now.as_unix_micros() - seconds * 1_000_000);
        let counted = appends(
            [ago(0), ago(9), ago(10), ago(595), ago(600), ago(4000)].into_iter(),
            now,
        );
        assert_eq!(counted.counts.len(), BUCKETS);
        assert_eq!(counted.counts[BUCKETS - 1], 2, "the last ten seconds");
        assert_eq!(counted.counts[BUCKETS - 2], 1);
        assert_eq!(counted.counts[0], 1, "595 s ago is in the first interval");
        assert_eq!(counted.counts.iter().sum::<u64>(), 4, "600 s and older are outside");
    }
}
