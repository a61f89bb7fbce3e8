//! The JSON of the HTTP API: queries, read options, append requests and
//! errors.

use factos::{
    AppendCondition, AppendRequest, EventId, EventType, ExpectedRevision, NewEvent, Position, Query, QueryItem,
    ReadOptions, StreamId, StreamRevision, Tag,
};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::record::EventIn;

/// A query: its items are OR-combined; no items matches every event.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"items": [{"types": ["TicketSold"], "tags": ["concert:42"]}]}))]
pub struct QueryJson {
    #[serde(default)]
    items: Vec<ItemJson>,
}

/// A query item: any of `types` (none: any type) carrying all `tags`
/// (none: any tags).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemJson {
    #[serde(default)]
    types: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
}

impl QueryJson {
    /// The query, with the library's semantics.
    pub fn into_query(self) -> Result<Query, String> {
        let mut items = Vec::with_capacity(self.items.len());
        for item in self.items {
            let types = item
                .types
                .iter()
                .map(|t| EventType::new(t.as_str()).map_err(|e| format!("type {t:?}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            let tags = item
                .tags
                .iter()
                .map(|t| Tag::new(t.as_str()).map_err(|e| format!("tag {t:?}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            items.push(QueryItem::types(types).with_tags(tags));
        }
        Ok(Query::new(items))
    }
}

/// Which part of the matching events a read returns.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"from": 1, "limit": 100, "backwards": false}))]
pub struct OptionsJson {
    /// Start at this position, inclusive.
    from: Option<u64>,
    /// At most this many events (the server's `--max-read` at most).
    limit: Option<usize>,
    /// Newest first.
    #[serde(default)]
    backwards: bool,
}

impl OptionsJson {
    /// These options for the page after `page` (what a read with
    /// `options` returned), as the `options` parameter of the next request;
    /// `None` when `page` was the last.
    pub fn next_page(&self, options: &ReadOptions, page: &[factos::StoredEvent]) -> Option<String> {
        let next = options.next_page(page)?;
        let from = next.from.map(|p| p.value());
        Some(serde_json::json!({"from": from, "limit": self.limit, "backwards": self.backwards}).to_string())
    }

    /// The read options, returning at most `max` events and about
    /// `max_bytes` bytes.
    pub fn to_options(&self, max: usize, max_bytes: usize) -> ReadOptions {
        let mut options = match self.backwards {
            true => ReadOptions::backwards(),
            false => ReadOptions::forwards(),
        };
        options.from = self.from.map(Position::new);
        options.limit = Some(self.limit.map_or(max, |limit| limit.min(max)));
        options.max_bytes = Some(max_bytes);
        options
    }
}

/// The body of `POST /append`: events appended atomically to one stream.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "events": [{"type": "TicketSold", "tags": ["concert:42"], "data": {"seat": 7}}],
    "condition": {"failIfEventsMatch": {"items": [{"types": ["TicketSold"], "tags": ["concert:42"]}]}, "after": 41}
}))]
pub struct AppendJson {
    /// At least one event.
    events: Vec<EventIn>,
    /// Append only if no event matching the query was appended after the
    /// position (DCB).
    condition: Option<ConditionJson>,
    /// The stream; without one, a new stream of their own.
    stream: Option<String>,
    /// The stream's expected revision.
    expected: Option<ExpectedJson>,
}

/// `FailIfEventsMatch(query, after)`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConditionJson {
    fail_if_events_match: QueryJson,
    /// The last position the decision saw; none: any matching event fails.
    after: Option<u64>,
}

/// A revision number, or `"no-stream"`, `"exists"`, `"any"`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ExpectedJson {
    /// The stream's last revision must be this.
    Revision(u64),
    /// `no-stream`, `exists` or `any`.
    Named(String),
}

impl AppendJson {
    /// The append request. Without a stream, the events go to a new stream
    /// of their own (`http-<first event id>`), so unrelated appends never
    /// contend on a stream.
    pub fn into_request(self) -> Result<AppendRequest, String> {
        let events = self
            .events
            .into_iter()
            .enumerate()
            .map(|(i, event)| event.into_event().map_err(|e| format!("events[{i}]: {e}")))
            .collect::<Result<Vec<NewEvent>, _>>()?;
        let stream = match self.stream {
            Some(name) => StreamId::new(name.as_str()).map_err(|e| format!("stream {name:?}: {e}"))?,
            None => {
                let first = events.first().map_or_else(EventId::random, |e| e.id);
                StreamId::new(format!("http-{}", first.as_uuid().hyphenated())).map_err(|e| format!("stream: {e}"))?
            }
        };
        let expected = match self.expected {
            None => ExpectedRevision::Any,
            Some(ExpectedJson::Revision(revision)) => ExpectedRevision::Exact(StreamRevision::new(revision)),
            Some(ExpectedJson::Named(name)) => match name.as_str() {
                "any" => ExpectedRevision::Any,
                "no-stream" => ExpectedRevision::NoStream,
                "exists" => ExpectedRevision::StreamExists,
                other => return Err(format!("expected {other:?}: give a revision, no-stream, exists or any")),
            },
        };
        let mut request = AppendRequest::new(stream, events).expect(expected);
        if let Some(condition) = self.condition {
            request = request.condition(AppendCondition::new(
                condition.fail_if_events_match.into_query()?,
                condition.after.map(Position::new),
            ));
        }
        request.validate().map_err(|e| e.to_string())?;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_keep_the_library_semantics() -> Result<(), Box<dyn std::error::Error>> {
        let query: QueryJson =
            serde_json::from_str(r#"{"items":[{"types":["A","B"],"tags":["x","y"]},{"tags":["z"]}]}"#)?;
        let expected = Query::new([
            QueryItem::types([EventType::new("A")?, EventType::new("B")?]).with_tags([Tag::new("x")?, Tag::new("y")?]),
            QueryItem::tags([Tag::new("z")?]),
        ]);
        assert_eq!(query.into_query()?, expected);
        assert_eq!(serde_json::from_str::<QueryJson>("{}")?.into_query()?, Query::all());
        assert!(serde_json::from_str::<QueryJson>(r#"{"items":[{"kinds":[]}]}"#).is_err());
        Ok(())
    }

    #[test]
    fn appends_need_events_and_valid_expectations() -> Result<(), Box<dyn std::error::Error>> {
        let request = |body: &str| -> Result<AppendRequest, String> {
            serde_json::from_str::<AppendJson>(body)
                .map_err(|e| e.to_string())?
                .into_request()
        };
        assert!(request(r#"{"events":[]}"#).is_err());
        assert!(request(r#"{"events":[{"type":"A"}],"expected":"later"}"#).is_err());
        let accepted = request(
            r#"{"events":[{"type":"A","tags":["t"],"data":{"n":1}}],"condition":{"failIfEventsMatch":{"items":[{"tags":["t"]}]},"after":4},"expected":"no-stream"}"#,
        )?;
        assert_eq!(accepted.expected, ExpectedRevision::NoStream);
        assert_eq!(accepted.condition.map(|c| c.after), Some(Some(Position::new(4))));
        assert!(accepted.stream.as_str().starts_with("http-"));
        Ok(())
    }
}
