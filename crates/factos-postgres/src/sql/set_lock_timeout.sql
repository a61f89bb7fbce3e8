-- Sets lock_timeout for the rest of the transaction; returns the old value.
SELECT current_setting('lock_timeout'), set_config('lock_timeout', $1, true)
