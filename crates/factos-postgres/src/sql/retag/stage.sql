INSERT INTO factos_staged_tags (retag, position, tag)
SELECT $1, s.position, s.tag FROM unnest($2::int8[], $3::text[]) AS s (position, tag)
ON CONFLICT DO NOTHING
