UPDATE factos_tag_generation SET generation = generation + 1
