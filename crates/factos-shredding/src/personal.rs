//! [`Personal`]: how an application's event type says "this field may have
//! been forgotten".

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The key of the marker a forgotten value reads as: `{"$forgotten": true}`.
pub const FORGOTTEN_MARKER: &str = "$forgotten";

/// A personal value in an event: known, or forgotten with its subject.
///
/// Declare personal fields of your event types as `Personal<T>`: it
/// serializes as the plain `T` (so events written before look the same),
/// and reads as [`Personal::Forgotten`] where the store returns the
/// forgotten marker.
///
/// ```
/// use factos_shredding::Personal;
///
/// #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
/// struct Registered { customer: u64, email: Personal<String> }
///
/// let known: Registered = serde_json::from_str(r#"{"customer":7,"email":"ada@example.org"}"#)?;
/// assert_eq!(known.email, Personal::Known("ada@example.org".to_owned()));
/// let forgotten: Registered = serde_json::from_str(r#"{"customer":7,"email":{"$forgotten":true}}"#)?;
/// assert_eq!(forgotten.email, Personal::Forgotten);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Personal<T> {
    /// The value, decrypted.
    Known(T),
    /// The subject was forgotten: the value can never be read again.
    Forgotten,
}

impl<T> Personal<T> {
    /// The value, unless forgotten.
    pub fn known(&self) -> Option<&T> {
        match self {
            Personal::Known(value) => Some(value),
            Personal::Forgotten => None,
        }
    }

    /// Whether the value was forgotten.
    pub fn is_forgotten(&self) -> bool {
        matches!(self, Personal::Forgotten)
    }
}

impl<T> From<T> for Personal<T> {
    fn from(value: T) -> Self {
        Personal::Known(value)
    }
}

impl<T: Serialize> Serialize for Personal<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Personal::Known(value) => value.serialize(serializer),
            Personal::Forgotten => Marker { forgotten: true }.serialize(serializer),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Personal<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr<T> {
            // Read only to tell a marker from a value.
            #[allow(dead_code)]
            Forgotten(Marker),
            Known(T),
        }
        Ok(match Repr::deserialize(deserializer)? {
            Repr::Forgotten(_) => Personal::Forgotten,
            Repr::Known(value) => Personal::Known(value),
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Marker {
    #[serde(rename = "$forgotten")]
    forgotten: bool,
}
