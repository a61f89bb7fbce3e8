INSERT INTO event_tags (tag, position, event_type)
SELECT * FROM unnest($1::text[], $2::int8[], $3::text[])
