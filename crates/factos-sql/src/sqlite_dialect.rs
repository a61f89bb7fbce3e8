//! Statements the SQLite-dialect backends (SQLite, D1) share word for word.

/// The read side's tables (schema version 2 of both): checkpoints of
/// projections and effect runners, and parked effects.
pub const READ_SIDE_SCHEMA: &str = include_str!("sql/read_side.sql");

/// The last position of the next window of at most `?2` events after `?1`,
/// and how many events it holds (as `end`, `examined`).
pub const WINDOW_END: &str = include_str!("sql/window_end.sql");

/// Stores checkpoint `?1` = cursor `?2` at time `?3`.
pub const SAVE_CHECKPOINT: &str = "INSERT INTO factos_checkpoints (name, cursor, updated_at) VALUES (?1, ?2, ?3) \
     ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at";

/// The cursor stored under `?1`.
pub const LOAD_CHECKPOINT: &str = "SELECT cursor FROM factos_checkpoints WHERE name = ?1";

/// Parks an effect: runner `?1`, event id `?2`, index `?3`, position `?4`,
/// attempts `?5`, error `?6`, at `?7`.
pub const PARK_EFFECT: &str = include_str!("sql/park_effect.sql");

/// The effects runner `?1` parked, in the order they were parked.
pub const PARKED_EFFECTS: &str = "SELECT event_id, effect_index, position, attempts, error FROM factos_parked_effects \
     WHERE runner = ?1 ORDER BY parked_at, position, effect_index";
