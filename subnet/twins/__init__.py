"""Local twins of external services (same protocol, loopback only), for tests and dry runs."""
