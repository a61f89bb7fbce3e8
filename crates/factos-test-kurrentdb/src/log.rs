//! The server's model of KurrentDB's log: streams with revisions, one
//! global order (`$all`), idempotent appends by event id.

use std::collections::HashMap;

use uuid::Uuid;

/// An event as the server keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) id: Uuid,
    pub(crate) stream: String,
    pub(crate) revision: u64,
    pub(crate) event_type: String,
    pub(crate) content_type: String,
    /// 100-nanosecond ticks since the Unix epoch, as the server reports them.
    pub(crate) created: u64,
    pub(crate) custom_metadata: Vec<u8>,
    pub(crate) data: Vec<u8>,
    /// The event's place in `$all`. The model gives every event its own
    /// position and reports it as both the commit and the prepare position.
    pub(crate) position: u64,
}

/// What an append expects of its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expected {
    Any,
    NoStream,
    StreamExists,
    Exact(u64),
}

/// An event proposed by an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Proposed {
    pub(crate) id: Uuid,
    pub(crate) event_type: String,
    pub(crate) content_type: String,
    pub(crate) custom_metadata: Vec<u8>,
    pub(crate) data: Vec<u8>,
}

/// How an append ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Appended {
    /// Written (or found written already, for an idempotent re-send): the
    /// stream's revision and the position of the last event.
    Done { revision: u64, position: u64 },
    /// The stream was not where the append expected it.
    WrongExpectedVersion { current: Option<u64>, expected: Expected },
}

/// Every event, in `$all` order, and each stream's events.
#[derive(Debug, Default)]
pub(crate) struct Log {
    pub(crate) events: Vec<Stored>,
    streams: HashMap<String, Vec<usize>>,
    by_id: HashMap<Uuid, usize>,
    next_position: u64,
}

impl Log {
    /// The revision of the stream's last event.
    pub(crate) fn head(&self, stream: &str) -> Option<u64> {
        self.streams
            .get(stream)
            .and_then(|s| s.last())
            .map(|&i| self.events[i].revision)
    }

    /// The stream's events, in revision order.
    pub(crate) fn stream(&self, stream: &str) -> Vec<&Stored> {
        self.streams
            .get(stream)
            .map(|indices| indices.iter().map(|&i| &self.events[i]).collect())
            .unwrap_or_default()
    }

    /// Appends `proposed` to `stream` if `expected` holds, after the
    /// idempotency check KurrentDB documents for re-sent writes.
    ///
    /// With an exact expected revision (or no stream: revision -1) that the
    /// stream has passed, the events after that revision are compared with
    /// the proposed ids: all of them there, in order, is a re-send and
    /// succeeds without writing; anything else is a wrong expected version.
    /// With any or stream-exists, a first id that is already an event of
    /// this stream starts the same comparison from that event; a first id
    /// that is unknown (or of another stream) is a new write. A partial
    /// match ("corrupted idempotency") is answered as a wrong expected
    /// version, never written.
    pub(crate) fn append(
        &mut self,
        stream: &str,
        expected: Expected,
        proposed: Vec<Proposed>,
        created: u64,
    ) -> Appended {
        let current = self.head(stream);
        let refused = Appended::WrongExpectedVersion { current, expected };
        let resent_from = match expected {
            Expected::Exact(revision) if current.is_some_and(|c| c > revision) => Some(revision + 1),
            Expected::NoStream if current.is_some() => Some(0),
            Expected::Exact(_) | Expected::NoStream => None,
            Expected::Any | Expected::StreamExists => proposed
                .first()
                .and_then(|first| self.by_id.get(&first.id))
                .map(|&index| &self.events[index])
                .filter(|event| event.stream == stream)
                .map(|event| event.revision),
        };
        if let Some(from) = resent_from {
            return self.replayed(stream, from, &proposed).unwrap_or(refused);
        }
        let holds = match expected {
            Expected::Any => true,
            Expected::NoStream => current.is_none(),
            Expected::StreamExists => current.is_some(),
            Expected::Exact(revision) => current == Some(revision),
        };
        if !holds {
            return refused;
        }
        let mut last = Appended::Done {
            revision: current.unwrap_or(0),
            position: self.next_position,
        };
        for (revision, event) in (current.map_or(0, |r| r + 1)..).zip(proposed) {
            self.next_position += 1;
            let index = self.events.len();
            self.events.push(Stored {
                id: event.id,
                stream: stream.to_owned(),
                revision,
                event_type: event.event_type,
                content_type: event.content_type,
                created,
                custom_metadata: event.custom_metadata,
                data: event.data,
                position: self.next_position,
            });
            self.streams.entry(stream.to_owned()).or_default().push(index);
            self.by_id.insert(event.id, index);
            last = Appended::Done {
                revision,
                position: self.next_position,
            };
        }
        last
    }

    /// The original outcome when `proposed` are, in order, the events of
    /// `stream` from revision `from` on.
    fn replayed(&self, stream: &str, from: u64, proposed: &[Proposed]) -> Option<Appended> {
        let indices = self.streams.get(stream)?;
        let from = usize::try_from(from).ok()?;
        let written = indices.get(from..from.checked_add(proposed.len())?)?;
        let matches = written
            .iter()
            .zip(proposed)
            .all(|(&index, event)| self.events[index].id == event.id);
        let last = &self.events[*written.last()?];
        matches.then_some(Appended::Done {
            revision: last.revision,
            position: last.position,
        })
    }
}
