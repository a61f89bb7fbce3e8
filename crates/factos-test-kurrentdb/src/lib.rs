//! # factos-test-kurrentdb: KurrentDB's protocol, in process
//!
//! No KurrentDB server can be installed on the machines factos is tested
//! on. This crate runs, on a random loopback port, a server for the part of
//! KurrentDB's gRPC Streams service the official client uses to append and
//! read: its code is generated from the `.proto` files that ship inside the
//! official `kurrentdb` client crate, so the unmodified client talks to it
//! over real HTTP/2.
//!
//! It is a *model* of KurrentDB, written from KurrentDB's documented
//! behaviour, and it refuses (`UNIMPLEMENTED`) what it does not model
//! rather than inventing an answer: stream subscriptions, persistent
//! subscriptions, deletes, tombstones, links. What it models, and where it
//! had to choose:
//!
//! * one global order (`$all`); every event has its own position, reported
//!   as both its commit and its prepare position;
//! * stream revisions from 0 and the four expected states (any, no stream,
//!   stream exists, exact revision), a mismatch answered with
//!   `WrongExpectedVersion` and the stream's actual revision;
//! * idempotent re-sends as KurrentDB's commit check treats them: with an
//!   exact expected revision (or no stream) the stream has passed, the
//!   events after it are compared with the batch's ids; with any or
//!   stream-exists, a first id already in the stream starts the comparison
//!   at that event. All ids there, in order: success without writing; a
//!   partial match: wrong expected version; a first id unknown to the
//!   stream (even if another stream has it): a new write;
//! * reads of a stream (from start, end or a revision, forwards or
//!   backwards, with a count; `StreamNotFound` for a missing stream) and of
//!   `$all` (from start, end or a position, both directions, with a count,
//!   filtered by event type or stream name, by regular expression or
//!   prefixes); forwards reads include the event at the start position,
//!   backwards reads from a position start below it;
//! * catch-up subscriptions to `$all` (from the start, the end or after a
//!   position, filtered like reads): a confirmation, the history, a
//!   caught-up message, then live events, with no gap and no repeat
//!   between history and live; a filtered subscription sends a checkpoint
//!   (the last position it examined) after every `interval × 32` events in
//!   a row that did not pass its filter, as a real server does; a
//!   subscriber more
//!   than 4096 events behind is dropped (the client resubscribes);
//! * stream metadata: an append to a `$$stream` is kept like any other
//!   (the client's `set_stream_metadata` works), but its settings
//!   (`$maxCount`, `$maxAge`, ACLs) are not applied to reads;
//! * system events: the server writes one (`$UserCreated` to `$users`) at
//!   start, so `$all` readers meet one, as they would on a real server.
//!
//! ```
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let server = factos_test_kurrentdb::FakeKurrentDb::start().await?;
//! let settings = server.connection_string().parse::<kurrentdb::ClientSettings>()?;
//! let client = kurrentdb::Client::new(settings)?;
//! let event = kurrentdb::EventData::binary("Greeted", b"hi".to_vec().into());
//! client.append_to_stream("greetings", &Default::default(), event).await?;
//! let mut stream = client.read_stream("greetings", &Default::default()).await?;
//! let read = stream.next().await?.ok_or("one event")?;
//! assert_eq!(read.get_original_event().event_type, "Greeted");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod log;
mod quick_ack;
mod server;

pub use server::{FakeError, FakeKurrentDb};

/// Where a test finds KurrentDB: a connection string for a fresh database,
/// and the stream-name prefix that scopes a store to a fresh part of it.
///
/// A real server when `FACTOS_KURRENTDB_URL` is set (shared and never
/// empty, so each caller gets a prefix of its own), otherwise a server of
/// this crate started for the caller on the current runtime (no prefix: the
/// store sees the whole, empty database, as an application would).
///
/// # Errors
///
/// When the in-process server cannot start.
pub async fn fresh_target() -> Result<(String, Option<String>), FakeError> {
    match std::env::var("FACTOS_KURRENTDB_URL") {
        Ok(url) if !url.is_empty() => Ok((url, Some(format!("t{}-", uuid::Uuid::new_v4().simple())))),
        _ => Ok((FakeKurrentDb::start_detached().await?, None)),
    }
}

/// The code generated from the client's `.proto` files.
#[allow(missing_docs, dead_code, clippy::all, unreachable_pub)]
mod proto {
    pub mod event_store {
        pub mod client {
            tonic::include_proto!("event_store.client");
            pub mod streams {
                tonic::include_proto!("event_store.client.streams");
            }
            pub mod server_features {
                tonic::include_proto!("event_store.client.server_features");
            }
        }
    }
    pub mod google {
        pub mod rpc {
            tonic::include_proto!("google.rpc");
        }
    }
}
