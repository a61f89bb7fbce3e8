SELECT event_id, position FROM events WHERE event_id = ANY($1::uuid[])
