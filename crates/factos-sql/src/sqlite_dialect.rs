//! Statements the SQLite-dialect backends (SQLite, D1) share word for word.

/// The read side's tables (schema version 2 of both): checkpoints of
/// projections and effect runners, and parked effects.
pub const READ_SIDE_SCHEMA: &str = include_str!("sql/read_side.sql");

/// The parked effects' cursors and retry requests (schema version 6 of
/// SQLite, 3 of D1).
pub const PARKED_RETRY_SCHEMA: &str = include_str!("sql/parked_retry.sql");

/// The last position of the next window of at most `?2` events after `?1`,
/// and how many events it holds (as `end`, `examined`).
pub const WINDOW_END: &str = include_str!("sql/window_end.sql");

/// Stores checkpoint `?1` = cursor `?2` at time `?3`.
pub const SAVE_CHECKPOINT: &str = "INSERT INTO factos_checkpoints (name, cursor, updated_at) VALUES (?1, ?2, ?3) \
     ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at";

/// The two statements that open a projection's batch where a batch cannot
/// read before it writes (D1): they move checkpoint `?1` from cursor `?2`
/// (NULL: none yet) to `?3` at time `?4`, and fail the batch (a NOT NULL
/// violation) when the checkpoint is not at `?2`. The first moves an
/// existing checkpoint; the second inserts a missing one.
pub const MOVE_CHECKPOINT_IF_AT: [&str; 2] = [
    "UPDATE factos_checkpoints SET cursor = CASE WHEN cursor IS ?2 THEN ?3 END, updated_at = ?4 WHERE name = ?1",
    "INSERT INTO factos_checkpoints (name, cursor, updated_at) SELECT ?1, CASE WHEN ?2 IS NULL THEN ?3 END, ?4 \
     WHERE NOT EXISTS (SELECT 1 FROM factos_checkpoints WHERE name = ?1)",
];

/// Removes checkpoint `?1`.
pub const DELETE_CHECKPOINT: &str = "DELETE FROM factos_checkpoints WHERE name = ?1";

/// Removes the effect that runner `?1` parked for event `?2`, index `?3`.
pub const DISCARD_PARKED: &str =
    "DELETE FROM factos_parked_effects WHERE runner = ?1 AND event_id = ?2 AND effect_index = ?3";

/// Every checkpoint, by name (the same text in PostgreSQL).
pub const CHECKPOINTS: &str = "SELECT name, cursor FROM factos_checkpoints ORDER BY name";

/// The cursor stored under `?1`.
pub const LOAD_CHECKPOINT: &str = "SELECT cursor FROM factos_checkpoints WHERE name = ?1";

/// Parks an effect: runner `?1`, event id `?2`, index `?3`, position `?4`,
/// attempts `?5`, error `?6`, at `?7`, cursor `?8`.
pub const PARK_EFFECT: &str = include_str!("sql/park_effect.sql");

/// The effects runner `?1` parked, in the order they were parked: event
/// id, index, cursor, attempts, error, whether a retry was asked for.
pub const PARKED_EFFECTS: &str = "SELECT event_id, effect_index, cursor, attempts, error, \
     retry_requested_at IS NOT NULL AS retry_requested FROM factos_parked_effects \
     WHERE runner = ?1 ORDER BY parked_at, position, effect_index";

/// Asks runner `?1` to retry its parked effect for event `?2`, index `?3`,
/// at time `?4` (an earlier request stands).
pub const RETRY_PARKED: &str = "UPDATE factos_parked_effects SET retry_requested_at = COALESCE(retry_requested_at, ?4) \
     WHERE runner = ?1 AND event_id = ?2 AND effect_index = ?3";
