"""Miner side: validate an env folder, build it into an Actor image, push it, commit its digest."""
