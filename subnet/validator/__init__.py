"""The validator: the round engine, and the loop that turns a round into weights."""
