"""Everything a validator keeps under `SUBNET_HOME`: the per-subnet SQLite store and where it lives,
first-seen digests, surviving SQLite trouble, the one-process lock, run leases and the validator's id."""
