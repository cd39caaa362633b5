"""A Bittensor subnet where miners ship affinetes Actor containers and validators verify them."""

__version__ = "0.1.0"
