-- The last revision of each of the batch's streams: one index probe per
-- stream (a max() over `stream = ANY(...)` would read every revision of
-- them).
SELECT s, (SELECT revision FROM events WHERE stream = s ORDER BY revision DESC LIMIT 1)
FROM unnest($1::text[]) AS s
