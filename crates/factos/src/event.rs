//! Events as a store sees them: ids, metadata, timestamps and new events
//! waiting to be appended.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use uuid::Uuid;

use crate::name::{self, EventType, NameProblem, Tag};

/// The application-chosen identity of an event, unique across the store.
///
/// Ids make appends idempotent: re-sending a batch whose ids were already
/// committed returns the committed records instead of writing twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct EventId(Uuid);

impl EventId {
    /// Wraps an existing UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// Builds an id from its 16 bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(Uuid::from_bytes(bytes))
    }

    /// A new random (version 4) id.
    #[cfg(feature = "random-ids")]
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The id as a UUID.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The 16 bytes of the id.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<Uuid> for EventId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

/// String key/value pairs carried with every event: correlation and
/// causation ids, the acting user, a trace id.
///
/// Keys are kept sorted so that two equal maps encode to equal bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    /// No entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces `key`, builder style.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.insert(key, value);
        self
    }

    /// Adds or replaces `key`, returning the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.0.insert(key.into(), value.into())
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Adds every entry of `other` that this map does not have yet.
    pub fn merge_missing(&mut self, other: &Metadata) {
        for (key, value) in &other.0 {
            self.0.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }

    /// Checks every entry against the rules all backends share: a key is a
    /// valid name (non-empty, at most [`MAX_NAME_LEN`](crate::MAX_NAME_LEN) bytes, no control
    /// characters), a value holds no NUL character (PostgreSQL's text and
    /// JSON types cannot store one) and is at most [`MAX_METADATA_VALUE_LEN`]
    /// bytes.
    ///
    /// Appends run this before a backend sees the events (see
    /// [`crate::AppendRequest::validate`]), so every backend accepts exactly
    /// the same metadata.
    ///
    /// ```
    /// use factos::{Metadata, MetadataProblem};
    /// assert!(Metadata::new().with("trace", "line one\nline two").validate().is_ok());
    /// let bad = Metadata::new().with("trace", "a\0b").validate().unwrap_err();
    /// assert_eq!(bad.problem, MetadataProblem::NulInValue);
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvalidMetadata`] naming the first offending key.
    pub fn validate(&self) -> Result<(), InvalidMetadata> {
        for (key, value) in &self.0 {
            let problem = match name::check(key) {
                Some(problem) => Some(MetadataProblem::Key(problem)),
                None if value.contains('\0') => Some(MetadataProblem::NulInValue),
                None if value.len() > MAX_METADATA_VALUE_LEN => Some(MetadataProblem::ValueTooLong(value.len())),
                None => None,
            };
            if let Some(problem) = problem {
                return Err(InvalidMetadata {
                    key: key.clone(),
                    problem,
                });
            }
        }
        Ok(())
    }
}

/// The longest accepted metadata value, in bytes of UTF-8 (64 KiB).
/// Metadata is for correlation ids and the like; payloads go in the data.
pub const MAX_METADATA_VALUE_LEN: usize = 64 * 1024;

/// A metadata entry that no backend accepts.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid metadata entry {key:?}: {problem}")]
pub struct InvalidMetadata {
    /// The key of the offending entry.
    pub key: String,
    /// What is wrong with it.
    pub problem: MetadataProblem,
}

/// The rule a rejected metadata entry broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MetadataProblem {
    /// The key breaks the rules of names.
    #[error("the key {0}")]
    Key(NameProblem),
    /// The value contains a NUL character.
    #[error("the value contains a NUL character")]
    NulInValue,
    /// The value is longer than [`MAX_METADATA_VALUE_LEN`] bytes.
    #[error("the value is longer than {MAX_METADATA_VALUE_LEN} bytes ({0} bytes)")]
    ValueTooLong(usize),
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

/// A point in time, in whole microseconds since the Unix epoch (UTC).
///
/// Microseconds are what PostgreSQL stores and fit an `i64` for the next
/// 290,000 years; the core keeps no clock of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    /// A timestamp from microseconds since the Unix epoch.
    pub const fn from_unix_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_unix_micros(&self) -> i64 {
        self.0
    }

    /// The current time from the system clock.
    ///
    /// # Panics
    ///
    /// On targets without a clock (`wasm32-unknown-unknown`), where the
    /// standard library's `SystemTime::now` panics; such backends take the
    /// time from their host instead.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// The UTC calendar day, counted in days since 1970-01-01.
    pub const fn unix_day(&self) -> i64 {
        self.0.div_euclid(86_400_000_000)
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        let micros = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_micros())
                .map(|m| -m)
                .unwrap_or(i64::MIN),
        };
        Self(micros)
    }
}

impl From<Timestamp> for SystemTime {
    fn from(time: Timestamp) -> Self {
        let magnitude = Duration::from_micros(time.0.unsigned_abs());
        if time.0 >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }
}

/// An event ready to be appended: everything the store keeps except what the
/// store assigns itself (position, stream revision, recorded-at time).
///
/// Codecs produce these from domain events; see [`crate::Codec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Unique id; re-sending the same ids makes an append idempotent.
    pub id: EventId,
    /// The event's type, matched by queries.
    pub event_type: EventType,
    /// The schema version of the payload, for upcasting on decode.
    pub version: u32,
    /// The tags that place the event in consistency boundaries.
    pub tags: BTreeSet<Tag>,
    /// String key/value pairs carried with the event.
    pub metadata: Metadata,
    /// The encoded payload, stored byte for byte.
    pub data: Vec<u8>,
}

impl NewEvent {
    /// An event with version 1, no tags and no metadata.
    pub fn new(id: EventId, event_type: EventType, data: impl Into<Vec<u8>>) -> Self {
        Self {
            id,
            event_type,
            version: 1,
            tags: BTreeSet::new(),
            metadata: Metadata::new(),
            data: data.into(),
        }
    }

    /// Sets the payload schema version.
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Adds tags.
    pub fn with_tags(mut self, tags: impl IntoIterator<Item = Tag>) -> Self {
        self.tags.extend(tags);
        self
    }

    /// Replaces the metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_round_trips_through_system_time() {
        for micros in [0, 1, -1, 1_700_000_000_123_456, -86_400_000_001] {
            let t = Timestamp::from_unix_micros(micros);
            assert_eq!(Timestamp::from(SystemTime::from(t)), t);
        }
    }

    #[test]
    fn unix_day_floors_towards_the_past() {
        assert_eq!(Timestamp::from_unix_micros(0).unix_day(), 0);
        assert_eq!(Timestamp::from_unix_micros(86_399_999_999).unix_day(), 0);
        assert_eq!(Timestamp::from_unix_micros(86_400_000_000).unix_day(), 1);
        assert_eq!(Timestamp::from_unix_micros(-1).unix_day(), -1);
    }

    #[test]
    fn metadata_keys_follow_the_name_rules_and_values_refuse_nul() {
        let check = |key: &str, value: &str| Metadata::new().with(key, value).validate().map_err(|e| e.problem);
        assert_eq!(check("trace", "multi\nline\tvalue"), Ok(()));
        assert_eq!(check("", "v"), Err(MetadataProblem::Key(NameProblem::Empty)));
        assert_eq!(
            check("a\nb", "v"),
            Err(MetadataProblem::Key(NameProblem::ControlCharacter('\n')))
        );
        assert_eq!(check("k", "\0"), Err(MetadataProblem::NulInValue));
        let long = "x".repeat(MAX_METADATA_VALUE_LEN + 1);
        assert_eq!(check("k", &long), Err(MetadataProblem::ValueTooLong(long.len())));
    }

    #[test]
    fn metadata_merge_keeps_existing_values() {
        let mut own = Metadata::new().with("a", "1");
        own.merge_missing(&Metadata::new().with("a", "2").with("b", "3"));
        assert_eq!(own.get("a"), Some("1"));
        assert_eq!(own.get("b"), Some("3"));
    }
}
