DELETE FROM factos_staged_tags WHERE retag = ?1
