"""User-level tests: the real commands and spiders against real servers on loopback."""
