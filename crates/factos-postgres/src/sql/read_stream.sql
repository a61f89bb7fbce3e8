SELECT position, event_id, stream, revision, event_type, version, tags, metadata::text, data, recorded_at
FROM events WHERE stream = $1 AND revision >= $2 ORDER BY revision
