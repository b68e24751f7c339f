"""Shared pytest fixtures: the simulator and the database servers live in tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.simulator",
    "tests.fixtures.databases",
    "tests.fixtures.scrapyd",
    "tests.fixtures.redis",
]
