SELECT key FROM factos_locks WHERE key = ANY($1::int8[]) ORDER BY key FOR UPDATE
