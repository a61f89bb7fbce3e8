INSERT INTO events (position, event_id, stream, revision, event_type, version, tags, metadata, data, recorded_at, fingerprint)
SELECT p, id, $3, r, t, v, string_to_array(g, E'\x1f'), m::jsonb, d, $10, $11
FROM unnest($1::int8[], $2::uuid[], $4::int8[], $5::text[], $6::int8[], $7::text[], $8::text[], $9::bytea[])
    AS e(p, id, r, t, v, g, m, d)
