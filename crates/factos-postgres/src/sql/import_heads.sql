SELECT stream, max(revision) FROM events WHERE stream = ANY($1::text[]) GROUP BY stream
