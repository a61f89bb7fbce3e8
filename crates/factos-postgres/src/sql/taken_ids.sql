SELECT position, event_id, stream, revision, event_type, version, tags, metadata::text, data, recorded_at, fingerprint
FROM events WHERE event_id = ANY($1::uuid[])
