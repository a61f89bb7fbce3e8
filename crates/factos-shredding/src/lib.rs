//! # factos-shredding: forgetting personal data by destroying its key
//!
//! Events are immutable, but a person's right to erasure is not optional.
//! [`Shredding`] wraps a store: on append it encrypts the personal parts of
//! each event ([`PersonalData`]: JSON pointers per event type, and where
//! the event names its subject) with AES-256-GCM under a data key of that
//! subject, kept by a [`factos::forget::SubjectKeys`] (a table of the same
//! store on SQLite, PostgreSQL and the in-memory store, or your own key
//! service); every read path decrypts them. [`Shredding::forget`] destroys
//! the subject's key: from then on every read returns the event with its
//! personal values replaced by the forgotten marker, which a
//! [`Personal<T>`] field reads as [`Personal::Forgotten`]; the event's
//! type, tags, position, stream, metadata and other fields are unchanged.
//!
//! # The guarantee
//!
//! After `forget(subject)` returns, no read through any store holding the
//! key table returns the subject's personal data in clear, and none ever
//! will: the key is gone, a marker stays, and no key is created for the
//! subject again, so an append of new personal data for it is refused
//! ([`factos::InvalidAppend::SubjectForgotten`]). An append that encrypted
//! with the key before the forget and commits after it stores only
//! ciphertext nobody can decrypt. Data decrypted before the forget is out
//! of the store's reach: rebuild the projections that copied it (rebuilt,
//! they hold no trace of it), and the store retires every snapshot
//! ([`factos::snapshot`]) in the forget's transaction. The store underneath
//! only ever holds ciphertext, so exports and copies never contain a
//! decrypted payload.
//!
//! ```
//! use factos::{EventStore, JsonCodec, JsonEvent, MemoryStore, Query, ReadOptions, StreamId, Dispatcher, ExpectedRevision, Codec};
//! use factos_shredding::{Personal, PersonalData, Shredding, SubjectFrom};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! struct Registered { customer: u64, email: Personal<String> }
//! impl JsonEvent for Registered {
//!     fn event_type(&self) -> &'static str { "Registered" }
//!     fn tags(&self) -> Vec<String> { vec![format!("customer:{}", self.customer)] }
//! }
//!
//! # futures::executor::block_on(async {
//! let memory = MemoryStore::new();
//! let personal = PersonalData::new().event("Registered", SubjectFrom::TagPrefix("customer:".into()), &["/email"])?;
//! let store = Shredding::new(memory.clone(), memory.clone(), personal);
//! let dispatcher = Dispatcher::new(&store, JsonCodec::<Registered>::new());
//! let ada = Registered { customer: 7, email: "ada@example.org".to_owned().into() };
//! dispatcher.append(&StreamId::new("customer-7")?, vec![ada], ExpectedRevision::Any, None).await?;
//!
//! // The store underneath holds ciphertext only.
//! let raw = memory.read(&Query::all(), ReadOptions::forwards()).await?;
//! assert!(!String::from_utf8_lossy(&raw[0].event).contains("ada@example.org"));
//! // Reads through the wrapper decrypt.
//! let read = dispatcher.read::<Registered>(&Query::all()).await?;
//! assert_eq!(read.events[0].event.email, Personal::Known("ada@example.org".to_owned()));
//!
//! assert!(store.forget("customer:7").await?);
//! let read = dispatcher.read::<Registered>(&Query::all()).await?;
//! assert_eq!(read.events[0].event.email, Personal::Forgotten);
//! assert_eq!(read.events[0].event.customer, 7);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod envelope;
mod error;
mod personal;
mod rules;
mod store;

pub use error::ShreddingError;
pub use personal::{FORGOTTEN_MARKER, Personal};
pub use rules::{PersonalData, SubjectFrom};
pub use store::Shredding;
