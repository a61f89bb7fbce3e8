-- The key's row is deleted (with secure_delete on, its bytes are zeroed);
-- mark.sql puts a row without a key in its place.
DELETE FROM factos_subject_keys WHERE subject = ?1
