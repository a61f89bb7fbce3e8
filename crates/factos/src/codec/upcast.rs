//! Upcasting: reading events that older code wrote.
//!
//! Stored events are never rewritten. Instead the application registers,
//! per event type, one step from each old payload version to the next;
//! [`Upcasting`] wraps the application's codec and runs the steps a stored
//! event needs before the codec sees it. Every decode path goes through a
//! codec (dispatch, reads, subscriptions, projections, effect runners), so
//! every path sees the current shape.
//!
//! A step may also rename the event type: the chain then goes on with the
//! new type's steps. A stored version newer than the newest the upcasters
//! know for its type is refused with [`UpcastError::TooNew`] rather than
//! guessed at.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use thiserror::Error;

use crate::codec::Codec;
use crate::error::BoxError;
use crate::event::NewEvent;
use crate::name::EventType;
use crate::recorded::StoredEvent;

/// The part of a stored event an upcasting step may change: its type and
/// payload. The version is the framework's: each step moves it up by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upcast {
    /// The event type; a step may rename it.
    pub event_type: EventType,
    /// The version the payload is at (read-only for steps: the chain
    /// advances it).
    pub version: u32,
    /// The payload bytes.
    pub data: Vec<u8>,
}

/// One step of a chain: from `version` to `version + 1` of its type.
type Step = Arc<dyn Fn(&mut Upcast) -> Result<(), BoxError> + Send + Sync>;

/// Why a stored event could not be brought to the current version.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum UpcastError {
    /// The event was written by newer code than this: its version is past
    /// the newest one known for its type.
    #[error("{event_type} version {stored} is newer than this code knows (up to version {known})")]
    TooNew {
        /// The stored type (after any renames).
        event_type: EventType,
        /// The stored version.
        stored: u32,
        /// The newest version the upcasters know for the type.
        known: u32,
    },
    /// A step failed on this event's payload.
    #[error("upcasting {event_type} from version {version} failed")]
    Step {
        /// The type the failing step was registered for.
        event_type: EventType,
        /// The version the step starts from.
        version: u32,
        /// The step's error.
        #[source]
        source: BoxError,
    },
    /// The chain took more steps than any history has: registrations
    /// without end (a step for `u32::MAX`, whose next version is itself).
    #[error("the upcasting steps of {event_type} never end (more than {limit} steps)")]
    Endless {
        /// The type the chain started from.
        event_type: EventType,
        /// The most steps one event may take.
        limit: usize,
    },
}

/// The upcasting steps of an application, per event type and version.
///
/// ```
/// use factos::upcast::{Upcasters, json};
///
/// // OrderPlaced v1 had `amount`; v2 calls it `total`; v3 adds `currency`.
/// let upcasters = Upcasters::new()
///     .step("OrderPlaced", 1, json::rename("/amount", "total"))?
///     .step("OrderPlaced", 2, json::add("/currency", serde_json::json!("EUR")))?;
/// assert_eq!(upcasters.current_version("OrderPlaced"), Some(3));
/// # Ok::<(), factos::InvalidName>(())
/// ```
#[derive(Clone, Default)]
pub struct Upcasters {
    /// Per type, the step from each version: looked up by reference on
    /// every decode, without copying the stored type's name.
    steps: BTreeMap<EventType, BTreeMap<u32, Step>>,
    current: BTreeMap<EventType, u32>,
}

impl fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upcasters")
            .field(
                "steps",
                &self
                    .steps
                    .iter()
                    .map(|(event_type, steps)| (event_type, steps.keys().collect::<Vec<_>>()))
                    .collect::<Vec<_>>(),
            )
            .field("current", &self.current)
            .finish()
    }
}

impl Upcasters {
    /// No steps: every event decodes as stored.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the step that brings `event_type` from `version` to
    /// `version + 1`; the type's current version becomes at least
    /// `version + 1`. A later step for the same type and version replaces
    /// this one.
    ///
    /// # Errors
    ///
    /// When `event_type` is not a valid event type name.
    pub fn step<F>(mut self, event_type: &str, version: u32, step: F) -> Result<Self, crate::InvalidName>
    where
        F: Fn(&mut Upcast) -> Result<(), BoxError> + Send + Sync + 'static,
    {
        let event_type = EventType::new(event_type)?;
        let next = version.saturating_add(1);
        let current = self.current.entry(event_type.clone()).or_insert(next);
        *current = (*current).max(next);
        self.steps
            .entry(event_type)
            .or_default()
            .insert(version, Arc::new(step));
        Ok(self)
    }

    /// Declares the newest version of `event_type` this code writes, for
    /// types whose newest version has no step into it yet (so that a newer
    /// stored version is refused) or lies past their last step.
    ///
    /// # Errors
    ///
    /// When `event_type` is not a valid event type name.
    pub fn current(mut self, event_type: &str, version: u32) -> Result<Self, crate::InvalidName> {
        let current = self.current.entry(EventType::new(event_type)?).or_insert(version);
        *current = (*current).max(version);
        Ok(self)
    }

    /// The newest version known for `event_type`, if any step or
    /// declaration names it.
    pub fn current_version(&self, event_type: &str) -> Option<u32> {
        let event_type = EventType::new(event_type).ok()?;
        self.current.get(&event_type).copied()
    }

    /// The step from `version` of `event_type`, if one is registered.
    fn step_from(&self, event_type: &EventType, version: u32) -> Option<&Step> {
        self.steps.get(event_type)?.get(&version)
    }

    /// `stored` at the current version of its (possibly renamed) type:
    /// borrowed as it is when no step applies.
    ///
    /// # Errors
    ///
    /// [`UpcastError::TooNew`] for a version past the newest known;
    /// [`UpcastError::Step`] when a step fails; [`UpcastError::Endless`]
    /// past 1,000 steps.
    pub fn upcast<'a>(&self, stored: &'a StoredEvent) -> Result<Cow<'a, StoredEvent>, UpcastError> {
        /// More steps than any real history has.
        const LIMIT: usize = 1_000;
        let mut step = self.step_from(&stored.event_type, stored.version);
        if step.is_none() {
            self.check_known(&stored.event_type, stored.version)?;
            return Ok(Cow::Borrowed(stored));
        }
        let mut at = Upcast {
            event_type: stored.event_type.clone(),
            version: stored.version,
            data: stored.event.clone(),
        };
        let mut taken = 0;
        while let Some(run) = step {
            if taken == LIMIT {
                return Err(UpcastError::Endless {
                    event_type: stored.event_type.clone(),
                    limit: LIMIT,
                });
            }
            let (event_type, version) = (at.event_type.clone(), at.version);
            run(&mut at).map_err(move |source| UpcastError::Step {
                event_type,
                version,
                source,
            })?;
            at.version = version.saturating_add(1);
            taken += 1;
            step = self.step_from(&at.event_type, at.version);
        }
        self.check_known(&at.event_type, at.version)?;
        // Everything but type, version and payload as stored; the stored
        // payload is not copied again.
        Ok(Cow::Owned(crate::Recorded {
            position: stored.position,
            id: stored.id,
            stream: stored.stream.clone(),
            revision: stored.revision,
            event_type: at.event_type,
            version: at.version,
            tags: stored.tags.clone(),
            metadata: stored.metadata.clone(),
            recorded_at: stored.recorded_at,
            event: at.data,
        }))
    }

    fn check_known(&self, event_type: &EventType, version: u32) -> Result<(), UpcastError> {
        match self.current.get(event_type) {
            Some(&known) if version > known => Err(UpcastError::TooNew {
                event_type: event_type.clone(),
                stored: version,
                known,
            }),
            _ => Ok(()),
        }
    }
}

/// A step that renames the event type (the payload stays as it is); the
/// chain goes on with the new type's steps.
///
/// # Errors
///
/// When `to` is not a valid event type name.
pub fn rename_type(
    to: &str,
) -> Result<impl Fn(&mut Upcast) -> Result<(), BoxError> + Send + Sync + 'static, crate::InvalidName> {
    let to = EventType::new(to)?;
    Ok(move |at: &mut Upcast| {
        at.event_type = to.clone();
        Ok(())
    })
}

/// Why the [`Upcasting`] codec could not decode an event.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum UpcastingError<E: std::error::Error + 'static> {
    /// The event could not be brought to the current version.
    #[error(transparent)]
    Upcast(#[from] UpcastError),
    /// The wrapped codec failed (encoding, or decoding the upcast event).
    #[error(transparent)]
    Codec(E),
}

/// A codec that upcasts stored events before the wrapped codec decodes
/// them; encoding is the wrapped codec's.
///
/// ```
/// use factos::upcast::{Upcasters, Upcasting, json};
/// use factos::{Codec, EventId, EventType, JsonCodec, JsonEvent, NewEvent, Position, Recorded, StreamId, StreamRevision, Timestamp};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct OrderPlaced { total: u64, currency: String }
/// impl JsonEvent for OrderPlaced {
///     fn event_type(&self) -> &'static str { "OrderPlaced" }
///     fn tags(&self) -> Vec<String> { Vec::new() }
///     fn version(&self) -> u32 { 3 }
/// }
///
/// let upcasters = Upcasters::new()
///     .step("OrderPlaced", 1, json::rename("/amount", "total"))?
///     .step("OrderPlaced", 2, json::add("/currency", serde_json::json!("EUR")))?;
/// let codec = Upcasting::new(JsonCodec::<OrderPlaced>::new(), upcasters);
///
/// // What the first version of the code stored.
/// let old = Recorded {
///     position: Position::new(1), id: EventId::random(), stream: StreamId::new("orders")?,
///     revision: StreamRevision::FIRST, event_type: EventType::new("OrderPlaced")?, version: 1,
///     tags: Default::default(), metadata: Default::default(), recorded_at: Timestamp::UNIX_EPOCH,
///     event: br#"{"amount": 42}"#.to_vec(),
/// };
/// assert_eq!(codec.decode(&old)?, OrderPlaced { total: 42, currency: "EUR".into() });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Upcasting<C> {
    codec: C,
    upcasters: Arc<Upcasters>,
}

impl<C> Upcasting<C> {
    /// Wraps `codec` with `upcasters`.
    pub fn new(codec: C, upcasters: Upcasters) -> Self {
        Self {
            codec,
            upcasters: Arc::new(upcasters),
        }
    }

    /// The upcasters, to bring raw records up to date outside a codec.
    pub fn upcasters(&self) -> &Upcasters {
        &self.upcasters
    }
}

impl<E, C: Codec<E>> Codec<E> for Upcasting<C> {
    type Error = UpcastingError<C::Error>;

    fn encode(&self, event: &E) -> Result<NewEvent, Self::Error> {
        self.codec.encode(event).map_err(UpcastingError::Codec)
    }

    fn decode(&self, stored: &StoredEvent) -> Result<E, Self::Error> {
        let upcast = self.upcasters.upcast(stored)?;
        self.codec.decode(&upcast).map_err(UpcastingError::Codec)
    }
}

/// Steps over JSON payloads, each naming the place it changes with a JSON
/// pointer (RFC 6901: `/field`, `/Variant/field` for serde's externally
/// tagged enums, `/items/0/field`).
#[cfg(feature = "serde")]
pub mod json {
    use serde_json::Value;

    use super::Upcast;
    use crate::error::BoxError;

    /// Why a JSON step could not change a payload.
    #[derive(Debug, thiserror::Error)]
    #[non_exhaustive]
    pub enum JsonStepError {
        /// The payload is not JSON.
        #[error("the payload is not JSON")]
        Json(#[from] serde_json::Error),
        /// The pointer does not name a place in this payload.
        #[error("no {0} in the payload")]
        Missing(String),
        /// The pointer is not `/`-separated, or names the whole payload.
        #[error("{0:?} is not a JSON pointer to a field")]
        Pointer(String),
    }

    /// Splits `pointer` into its parent's pointer and the last key.
    fn split(pointer: &str) -> Result<(String, String), JsonStepError> {
        match pointer.rfind('/') {
            Some(at) if pointer.starts_with('/') => {
                let key = pointer[at + 1..].replace("~1", "/").replace("~0", "~");
                Ok((pointer[..at].to_owned(), key))
            }
            _ => Err(JsonStepError::Pointer(pointer.to_owned())),
        }
    }

    /// Runs `change` on the payload as JSON and writes it back.
    fn edit(at: &mut Upcast, change: impl FnOnce(&mut Value) -> Result<(), BoxError>) -> Result<(), BoxError> {
        let mut value: Value = serde_json::from_slice(&at.data).map_err(JsonStepError::from)?;
        change(&mut value)?;
        at.data = serde_json::to_vec(&value)?;
        Ok(())
    }

    /// The object that holds the field `pointer` names.
    fn parent<'v>(
        value: &'v mut Value,
        pointer: &str,
    ) -> Result<(&'v mut serde_json::Map<String, Value>, String), JsonStepError> {
        let (parent, key) = split(pointer)?;
        match value.pointer_mut(&parent).and_then(Value::as_object_mut) {
            Some(object) => Ok((object, key)),
            None => Err(JsonStepError::Missing(if parent.is_empty() {
                "/".into()
            } else {
                parent
            })),
        }
    }

    /// Renames the field `pointer` names to `to` (same object); a payload
    /// without the field is left as it is.
    pub fn rename(pointer: &str, to: &str) -> impl Fn(&mut Upcast) -> Result<(), BoxError> + Send + Sync + 'static {
        let (pointer, to) = (pointer.to_owned(), to.to_owned());
        move |at: &mut Upcast| {
            edit(at, |value| {
                let (object, key) = parent(value, &pointer)?;
                if let Some(field) = object.remove(&key) {
                    object.insert(to.clone(), field);
                }
                Ok(())
            })
        }
    }

    /// Adds the field `pointer` names with `default`, unless the payload
    /// has it already.
    pub fn add(pointer: &str, default: Value) -> impl Fn(&mut Upcast) -> Result<(), BoxError> + Send + Sync + 'static {
        let pointer = pointer.to_owned();
        move |at: &mut Upcast| {
            edit(at, |value| {
                let (object, key) = parent(value, &pointer)?;
                object.entry(key).or_insert_with(|| default.clone());
                Ok(())
            })
        }
    }

    /// Replaces the value `pointer` names with what `change` makes of it
    /// (a field's new shape: a number into an object, a string split in
    /// two); the pointer `""` names the whole payload.
    ///
    /// # Errors (of the step)
    ///
    /// [`JsonStepError::Missing`] when the payload has no such value, or
    /// `change`'s own error.
    pub fn map<F>(pointer: &str, change: F) -> impl Fn(&mut Upcast) -> Result<(), BoxError> + Send + Sync + 'static
    where
        F: Fn(Value) -> Result<Value, BoxError> + Send + Sync + 'static,
    {
        let pointer = pointer.to_owned();
        move |at: &mut Upcast| {
            edit(at, |value| {
                let place = value
                    .pointer_mut(&pointer)
                    .ok_or_else(|| JsonStepError::Missing(pointer.clone()))?;
                *place = change(place.take())?;
                Ok(())
            })
        }
    }
}
