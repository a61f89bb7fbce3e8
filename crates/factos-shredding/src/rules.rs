//! [`PersonalData`]: which parts of which events are personal, and whose.

use std::collections::HashMap;

use factos::{EventType, InvalidName, NewEvent};
use serde_json::Value;

/// Where an event names the subject its personal data belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectFrom {
    /// The event's first tag starting with this prefix (`"customer:"`); the
    /// subject is the whole tag (`customer:42`).
    TagPrefix(String),
    /// The payload's value at this JSON pointer (`/customer`): a string, or
    /// a number written as text.
    Field(String),
}

#[derive(Debug, Clone)]
struct Rule {
    subject: SubjectFrom,
    fields: Vec<String>,
}

/// The personal parts of each event type: the JSON pointers of its
/// personal fields (`""` for the whole payload) and where it names its
/// subject. Event types without a rule are written as they are.
///
/// Subjects are stored in clear beside the encrypted data (to find the key),
/// so use an opaque id (`customer:42`), not an e-mail address.
#[derive(Debug, Clone, Default)]
pub struct PersonalData {
    rules: HashMap<EventType, Rule>,
}

impl PersonalData {
    /// No personal data.
    pub fn new() -> Self {
        Self::default()
    }

    /// Events of `event_type` carry personal data of the subject `subject`
    /// names, at the JSON pointers `fields`.
    ///
    /// # Errors
    ///
    /// When `event_type` is not a valid event type.
    pub fn event(mut self, event_type: &str, subject: SubjectFrom, fields: &[&str]) -> Result<Self, InvalidName> {
        let rule = Rule {
            subject,
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        };
        self.rules.insert(EventType::new(event_type)?, rule);
        Ok(self)
    }

    /// Whether events of `event`'s type carry personal data.
    pub(crate) fn covers(&self, event: &NewEvent) -> bool {
        self.rules.contains_key(&event.event_type)
    }

    /// The subject of `event` and its personal fields, if its type has a
    /// rule; `payload` is the event's parsed payload.
    pub(crate) fn personal<'r>(
        &'r self,
        event: &NewEvent,
        payload: &Value,
    ) -> Option<Result<(String, &'r [String]), String>> {
        let rule = self.rules.get(&event.event_type)?;
        let subject = match &rule.subject {
            SubjectFrom::TagPrefix(prefix) => event
                .tags
                .iter()
                .find(|t| t.as_str().starts_with(prefix.as_str()))
                .map(|t| t.as_str().to_owned())
                .ok_or_else(|| format!("no tag starts with {prefix:?}")),
            SubjectFrom::Field(pointer) => match payload.pointer(pointer) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Number(n)) => Ok(n.to_string()),
                _ => Err(format!("no subject (a string or a number) at {pointer:?}")),
            },
        };
        Some(subject.map(|subject| (subject, rule.fields.as_slice())))
    }

    /// Whether any event type has a rule.
    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}
