//! # factos-effects: effects that are never lost
//!
//! The library never performs a side effect itself: a [`Reactor`] turns
//! committed events into effect values. An [`EffectRunner`] delivers them:
//! it follows the log with a durable checkpoint ([`factos::Checkpoints`]),
//! hands each effect to the application's handler, retries failures with
//! backoff, sets aside ("parks") an effect that keeps failing so the rest
//! go on, and moves its checkpoint only after every effect of a batch was
//! handled or parked.
//!
//! **At least once.** A runner that crashes after a handler succeeded but
//! before the checkpoint was saved hands the same effects again when it
//! restarts. Each effect has a stable [`EffectKey`] (its event's id and its
//! index among that event's effects), so the handler (or the system it
//! calls) can drop repeats. A separate outbox table written in the dispatch
//! transaction is the other known design; following the log needs no second
//! write per dispatch and no change to the write path, and the reactor can
//! be added or changed after the events were written.
//!
//! **Parked effects on request.** An operator who mended what made an
//! effect fail asks for it again with
//! [`Checkpoints::retry_parked`](factos::Checkpoints::retry_parked) (the
//! console's Retry). The runner looks for such requests when
//! [`run_available`](EffectRunner::run_available) starts and, while
//! [`run`](EffectRunner::run) waits, every
//! [`with_retry_poll`](EffectRunner::with_retry_poll) (1 s): it reads the
//! effect's event again at its stored cursor, makes the effect again with
//! the reactor, hands it over with the same key and the runner's
//! [`Retry`], then removes it, or parks it again with the new error and
//! the attempts added. The retried effect arrives after effects of later
//! events: parking already gave up their order.
//!
//! Several runners of one name may run at once (after a failover, say):
//! each effect is still handled at least once, and each repeat carries the
//! same key.
//!
//! ```
//! use factos::{Dispatcher, ExpectedRevision, JsonCodec, JsonEvent, MemoryStore, Query, Recorded, StreamId, reactor};
//! use factos_effects::EffectRunner;
//!
//! #[derive(Debug, serde::Serialize, serde::Deserialize)]
//! struct Registered { name: String }
//! impl JsonEvent for Registered {
//!     fn event_type(&self) -> &'static str { "Registered" }
//!     fn tags(&self) -> Vec<String> { Vec::new() }
//! }
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let store = MemoryStore::new();
//! let ada = vec![Registered { name: "ada".into() }];
//! Dispatcher::new(&store, JsonCodec::new()).append(&StreamId::new("user-1")?, ada, ExpectedRevision::Any, None).await?;
//!
//! // One welcome mail per registration, as a value.
//! let welcome = reactor(|user: &Recorded<Registered>| vec![format!("welcome, {}", user.event.name)]);
//! let runner = EffectRunner::new(&store, "welcome-mails", Query::all(), welcome, JsonCodec::new());
//! let mut sent = Vec::new();
//! let report = runner
//!     .run_available(|key, mail: String| {
//!         sent.push((key, mail));
//!         async { Ok::<(), std::convert::Infallible>(()) }
//!     })
//!     .await?;
//! assert_eq!(report.delivered, 1);
//! assert_eq!(sent[0].1, "welcome, ada");
//! // The checkpoint moved: running again delivers nothing new.
//! assert_eq!(runner.run_available(|_, _| async { Ok::<(), std::convert::Infallible>(()) }).await?.delivered, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod runner;

pub use factos::{EffectKey, ParkedEffect, Reactor};
pub use runner::{EffectError, EffectRunner, Report, Retry};
