INSERT INTO events (position, event_id, stream, revision, event_type, version, tags, metadata, data, recorded_at, fingerprint)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
