INSERT INTO event_tags (tag, position, event_type) VALUES (?1, ?2, ?3)
