SELECT position, event_id, stream, revision, event_type, version, tags, metadata, data, recorded_at, fingerprint
FROM events WHERE event_id = ?1
