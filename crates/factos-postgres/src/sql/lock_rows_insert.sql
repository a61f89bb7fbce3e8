INSERT INTO factos_locks (key) SELECT unnest($1::int8[]) ON CONFLICT DO NOTHING
