"""Run the ``scrapy`` command line as a user does, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project's own tests run the embedded simulator in strict mode (docs/simulator.md,
# "Two modes"): every command that may start it gets the setting unless the test sets it.
STRICT_SETTING = "WEBQQ_SIMULATOR_STRICT"
STRICT_COMMANDS = ("crawl", "login", "runspider", "creds")


def with_strict(args: tuple[str, ...]) -> tuple[str, ...]:
    if not args or args[0] not in STRICT_COMMANDS or any(STRICT_SETTING in a for a in args):
        return args
    return (*args, "-s", f"{STRICT_SETTING}=True")


def run_scrapy(
    *args: str,
    cwd: Path = ROOT,
    data_home: Path | None = None,
    timeout: float = 120,
    env_changes: Mapping[str, str | None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m scrapy ARGS`` with this checkout importable; ``data_home`` becomes
    XDG_DATA_HOME, so the default SQLite store never lands in the real home.
    ``env_changes`` sets variables, or removes those given as None. The embedded simulator
    runs strict (``with_strict``)."""
    args = with_strict(args)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if data_home is not None:
        env["XDG_DATA_HOME"] = str(data_home)
    for name, value in (env_changes or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, "-m", "scrapy", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
