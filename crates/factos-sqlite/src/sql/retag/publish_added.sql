-- Staged tags the event carries neither as its own nor as added.
INSERT OR IGNORE INTO factos_added_tags (position, tag, retag)
SELECT s.position, s.tag, s.retag
FROM factos_staged_tags AS s JOIN events AS e ON e.position = s.position
WHERE s.retag = ?1
  AND instr(char(31) || e.tags || char(31), char(31) || s.tag || char(31)) = 0
