SELECT position FROM events WHERE event_id = ?1
