SELECT event_type, count(*) FROM events GROUP BY event_type ORDER BY count(*) DESC, event_type
