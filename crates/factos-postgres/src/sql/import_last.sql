SELECT greatest((SELECT max(position) FROM events),
                (SELECT CASE WHEN is_called THEN last_value END FROM events_position_seq))
