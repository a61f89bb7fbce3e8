SELECT position, tag, event_type FROM event_tags WHERE position > ?1 AND position <= ?2 ORDER BY position, tag
