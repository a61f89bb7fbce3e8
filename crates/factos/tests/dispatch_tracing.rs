//! A dispatch is one `tracing` span that says what happened to it. Its own
//! test binary: `tracing` caches per call site whether anyone listens,
//! which a test running in parallel without a subscriber would decide.

mod racing;

use std::sync::atomic::AtomicU32;

use factos::{MemoryStore, RetryPolicy};
use racing::{Racing, sell};

/// Collects everything a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_retried_dispatch_is_one_span_with_its_attempts_conflicts_and_outcome() -> Result<(), Box<dyn std::error::Error>> {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let store = Racing {
        inner: MemoryStore::new(),
        races: AtomicU32::new(2),
    };
    tracing::subscriber::with_default(subscriber, || {
        futures::executor::block_on(sell(&store, RetryPolicy::attempts(4)))
    })?;
    let log = String::from_utf8(captured.0.lock().map_err(|_| "poisoned")?.clone())?;
    let closed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("dispatch{") && l.contains("close"))
        .collect();
    assert_eq!(closed.len(), 1, "{log}");
    for field in [
        "command=\"()\"",
        "handler=\"FnDecider\"",
        "stream=box-office",
        "query_items=1",
        "attempts=3 conflicts=2 events_read=2 events_appended=1",
        "outcome=\"committed\"",
    ] {
        assert!(closed[0].contains(field), "{field} missing from {}", closed[0]);
    }
    assert_eq!(log.matches("lost a race; deciding again").count(), 2, "{log}");
    Ok(())
}
