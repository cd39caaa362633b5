"""Container registries a miner names: which ones a validator may ask (policy) and the bounded,
verified reads of an image's manifest and config (client)."""
