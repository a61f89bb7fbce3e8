SELECT max(revision) FROM events WHERE stream = $1
