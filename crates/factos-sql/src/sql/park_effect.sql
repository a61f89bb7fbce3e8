-- Sets an effect aside; parking it again updates the cursor, attempts and
-- error, and withdraws a retry request.
INSERT INTO factos_parked_effects (runner, event_id, effect_index, position, attempts, error, parked_at, cursor)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
ON CONFLICT (runner, event_id, effect_index)
DO UPDATE SET position = excluded.position, cursor = excluded.cursor, attempts = excluded.attempts,
    error = excluded.error, parked_at = excluded.parked_at, retry_requested_at = NULL
