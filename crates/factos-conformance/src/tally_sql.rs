//! The tally read model's SQL, in the dialect SQLite, D1 and PostgreSQL
//! share, and what it counts: each read-model store's tally runs these
//! statements through its own transaction or batch.
//!
//! Dependency-free beyond `factos`, so that the D1 test worker (compiled to
//! WebAssembly, without this crate) includes this very file.

use factos::{BoxError, Delivered, StoredEvent};

/// The payload a refusing tally fails on.
pub const POISON: &[u8] = b"poison";

/// Creates the table when it is missing.
pub const CREATE: &str = "CREATE TABLE IF NOT EXISTS tallies (tag TEXT PRIMARY KEY, n BIGINT NOT NULL)";

/// Counts one more event for tag `$1`.
pub const COUNT: &str = "INSERT INTO tallies (tag, n) VALUES ($1, 1) ON CONFLICT (tag) DO UPDATE SET n = tallies.n + 1";

/// Empties the read model.
pub const DROP: &str = "DROP TABLE IF EXISTS tallies";

/// The counts, as `(tag, n)` rows.
pub const SELECT: &str = "SELECT tag, n FROM tallies";

/// The tags to count for `events`, one entry per event and tag, or the
/// refusal of a refusing tally that met [`POISON`].
///
/// # Errors
///
/// When `refuse_poison` and an event's payload is [`POISON`].
pub fn tags_to_count(events: &[Delivered<StoredEvent>], refuse_poison: bool) -> Result<Vec<String>, BoxError> {
    let mut tags = Vec::new();
    for delivered in events {
        if refuse_poison && delivered.record.event.event == POISON {
            return Err("poisoned event".into());
        }
        tags.extend(delivered.record.tags.iter().map(ToString::to_string));
    }
    Ok(tags)
}
