INSERT INTO factos_checkpoints (name, cursor) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, updated_at = clock_timestamp()
