-- Positions for a batch, in increasing order.
SELECT nextval('events_position_seq') AS position FROM generate_series(1, $1::int8) ORDER BY position
