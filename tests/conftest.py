"""Shared pytest fixtures: the simulator and the database servers live in tests/fixtures/."""

import signal

pytest_plugins = [
    "tests.fixtures.simulator",
    "tests.fixtures.databases",
    "tests.fixtures.scrapyd",
    "tests.fixtures.redis",
]


def pytest_configure() -> None:
    """Run as from a terminal: a test run started in the background by a shell without job
    control (``cmd &`` in a script, ``nohup``) inherits SIGINT ignored, and so would every
    process a test starts — a simulator a test stops with Ctrl-C's signal would ignore it
    (test_simulator_cli's ``test_cli_exits_cleanly_on_signal`` timed out so). Python keeps
    an inherited ignore; here SIGINT is put back to what a terminal gives, so the processes
    the tests start get the default action, as a user's would."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
