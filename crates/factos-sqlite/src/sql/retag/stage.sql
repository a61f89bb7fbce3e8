INSERT OR IGNORE INTO factos_staged_tags (retag, position, tag) VALUES (?1, ?2, ?3)
