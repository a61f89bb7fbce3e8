//! Builders for the events, queries and streams the cases use.

use std::error::Error;

use factos::{EventId, EventType, NewEvent, Query, QueryItem, StreamId, Tag};
use proptest::prelude::RngCore;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// What every case returns: `Err` for an unexpected store error; a broken
/// expectation panics with a message that says what the store did.
pub type CaseResult = Result<(), Box<dyn Error + Send + Sync>>;

/// A valid event type; panics on a name the cases should never use.
pub fn ty(name: &str) -> EventType {
    EventType::new(name).unwrap_or_else(|e| panic!("fixture event type: {e}"))
}

/// A valid tag.
pub fn tag(name: &str) -> Tag {
    Tag::new(name).unwrap_or_else(|e| panic!("fixture tag: {e}"))
}

/// A valid stream id.
pub fn stream(name: &str) -> StreamId {
    StreamId::new(name).unwrap_or_else(|e| panic!("fixture stream: {e}"))
}

/// A fresh, unique event id drawn from `rng`.
pub fn id(rng: &mut TestRng) -> EventId {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    // Mark it as a version 4 (random) UUID, as a real application would.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    EventId::from_bytes(bytes)
}

/// A new event with a random id, the given type and tags, and `data` as
/// payload.
pub fn event(rng: &mut TestRng, event_type: &str, tags: &[&str], data: &[u8]) -> NewEvent {
    NewEvent::new(id(rng), ty(event_type), data.to_vec()).with_tags(tags.iter().map(|t| tag(t)))
}

/// A query of one item.
pub fn item(types: &[&str], tags: &[&str]) -> QueryItem {
    QueryItem::types(types.iter().map(|t| ty(t))).with_tags(tags.iter().map(|t| tag(t)))
}

/// A query of the given items.
pub fn query(items: impl IntoIterator<Item = QueryItem>) -> Query {
    Query::new(items)
}

/// A deterministic random number generator for `seed`.
pub fn rng(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}
