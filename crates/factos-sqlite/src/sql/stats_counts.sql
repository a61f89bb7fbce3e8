SELECT count(*), count(DISTINCT stream) FROM events
