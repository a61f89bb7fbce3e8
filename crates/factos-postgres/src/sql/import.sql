WITH inserted AS (
    INSERT INTO events (position, event_id, stream, revision, event_type, version, tags, metadata, data,
                        recorded_at, fingerprint)
    SELECT p, id, s, r, t, v, string_to_array(g, E'\x1f'), m::jsonb, d, at, 0
    FROM unnest($1::int8[], $2::uuid[], $3::text[], $4::int8[], $5::text[], $6::int8[], $7::text[], $8::text[],
                $9::bytea[], $10::timestamptz[]) AS e(p, id, s, r, t, v, g, m, d, at)
    RETURNING position, event_type, tags
)
INSERT INTO event_tags (tag, position, event_type)
SELECT tag, inserted.position, inserted.event_type FROM inserted, unnest(inserted.tags) AS tag
