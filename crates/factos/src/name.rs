//! Validated names: event types, tags and stream ids.
//!
//! All three share one rule set so that every backend can store them as plain
//! text without escaping: non-empty, at most [`MAX_NAME_LEN`] bytes of UTF-8,
//! and no control characters (a newline in a tag would break line-based tools
//! and log output long before it broke a database).

use std::fmt;

use thiserror::Error;

/// The longest accepted event type, tag or stream id, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 255;

/// Why a name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {kind} {value:?}: {problem}")]
pub struct InvalidName {
    /// Which kind of name was rejected (`"event type"`, `"tag"`, `"stream id"`).
    pub kind: &'static str,
    /// The rejected input, kept so the caller can report it.
    pub value: String,
    /// What is wrong with it.
    pub problem: NameProblem,
}

/// The rule a rejected name broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NameProblem {
    /// The name is the empty string.
    #[error("must not be empty")]
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    #[error("longer than {MAX_NAME_LEN} bytes ({0} bytes)")]
    TooLong(usize),
    /// The name contains a control character such as a newline.
    #[error("contains control character {0:?}")]
    ControlCharacter(char),
}

/// The rule `value` breaks, if any.
pub(crate) fn check(value: &str) -> Option<NameProblem> {
    if value.is_empty() {
        Some(NameProblem::Empty)
    } else if value.len() > MAX_NAME_LEN {
        Some(NameProblem::TooLong(value.len()))
    } else {
        value
            .chars()
            .find(|c| c.is_control())
            .map(NameProblem::ControlCharacter)
    }
}

fn validate(kind: &'static str, value: String) -> Result<String, InvalidName> {
    match check(&value) {
        Some(problem) => Err(InvalidName { kind, value, problem }),
        None => Ok(value),
    }
}

macro_rules! validated_name {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        #[cfg_attr(feature = "serde", serde(transparent))]
        pub struct $name(String);

        impl $name {
            /// Validates `value`.
            ///
            /// # Errors
            ///
            /// [`InvalidName`] when `value` is empty, longer than
            /// [`MAX_NAME_LEN`] bytes or contains a control character.
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidName> {
                validate($kind, value.into()).map(Self)
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The name as an owned `String`.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidName;
            fn try_from(value: &str) -> Result<Self, InvalidName> {
                Self::new(value)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidName;
            fn try_from(value: String) -> Result<Self, InvalidName> {
                Self::new(value)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidName;
            fn from_str(value: &str) -> Result<Self, InvalidName> {
                Self::new(value)
            }
        }

        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::new(value).map_err(serde::de::Error::custom)
            }
        }
    };
}

validated_name!(
    /// The name of a kind of event, such as `TicketSold`.
    ///
    /// Queries select events by type; the type is stored beside the payload so
    /// that a store can filter without decoding.
    ///
    /// ```
    /// use factos::EventType;
    /// let sold = EventType::new("TicketSold")?;
    /// assert_eq!(sold.as_str(), "TicketSold");
    /// assert!(EventType::new("").is_err());
    /// # Ok::<(), factos::InvalidName>(())
    /// ```
    EventType,
    "event type"
);

validated_name!(
    /// A label that places an event inside consistency boundaries, such as
    /// `concert:42` or `username:ada`.
    ///
    /// Tags are data, never SQL: a tag like `'; DROP TABLE events` is stored
    /// and matched like any other text.
    ///
    /// ```
    /// use factos::Tag;
    /// assert!(Tag::new("concert:42").is_ok());
    /// assert!(Tag::new("two\nlines").is_err());
    /// ```
    Tag,
    "tag"
);

validated_name!(
    /// The stream an event belongs to, such as `order-17`.
    ///
    /// Streams carry per-stream revisions for the stream-revision consistency
    /// strategy; context queries do not need them.
    ///
    /// ```
    /// use factos::StreamId;
    /// let order = StreamId::new("order-17")?;
    /// assert_eq!(order.to_string(), "order-17");
    /// # Ok::<(), factos::InvalidName>(())
    /// ```
    StreamId,
    "stream id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_unicode_and_sql_shaped_text() -> Result<(), InvalidName> {
        assert_eq!(Tag::new("naïve:日本")?.as_str(), "naïve:日本");
        assert_eq!(
            Tag::new("'; DROP TABLE events; --")?.as_str(),
            "'; DROP TABLE events; --"
        );
        Ok(())
    }

    #[test]
    fn rejects_empty_long_and_control_characters() {
        assert_eq!(EventType::new("").map_err(|e| e.problem), Err(NameProblem::Empty));
        assert_eq!(
            Tag::new("x".repeat(256)).map_err(|e| e.problem),
            Err(NameProblem::TooLong(256))
        );
        assert!(Tag::new("x".repeat(255)).is_ok());
        assert_eq!(
            StreamId::new("a\nb").map_err(|e| e.problem),
            Err(NameProblem::ControlCharacter('\n'))
        );
        assert_eq!(
            Tag::new("nul\0").map_err(|e| e.problem),
            Err(NameProblem::ControlCharacter('\0'))
        );
    }

    #[test]
    fn error_message_names_the_kind_and_the_value() {
        let err = EventType::new("").err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("invalid event type \"\": must not be empty"));
    }
}
