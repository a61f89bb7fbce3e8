-- Sets an effect aside; parking it again updates the attempts and error.
INSERT INTO factos_parked_effects (runner, event_id, effect_index, position, attempts, error, parked_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (runner, event_id, effect_index)
DO UPDATE SET attempts = excluded.attempts, error = excluded.error, parked_at = excluded.parked_at
