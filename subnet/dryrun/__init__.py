"""A composition root for running the product on one machine: `subnet dry-run` (devchain, local
runtimes, the Basilica twin) and the standalone twins a devchain validator can be pointed at."""
