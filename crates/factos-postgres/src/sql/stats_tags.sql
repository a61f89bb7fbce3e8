SELECT tag, count(*) FROM event_tags GROUP BY tag ORDER BY count(*) DESC, tag LIMIT $1
