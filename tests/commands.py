"""Run the ``scrapy`` command line as a user does, in a process of its own."""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
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
    runs strict (``with_strict``). In ROOT the command is forked from tests/forkserver.py
    (a process of its own, without the interpreter's start-up) unless the environment
    differs where it matters at start-up (``ForkServer.starts_like``)."""
    args = with_strict(args)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if data_home is not None:
        env["XDG_DATA_HOME"] = str(data_home)
    for name, value in (env_changes or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    if cwd == ROOT and not os.environ.get(NO_FORKSERVER):
        server = _forkserver()
        if server.starts_like(env):
            return server.run(list(args), env, timeout)
    return subprocess.run(
        [sys.executable, "-m", "scrapy", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# Set (to anything) to start every command with a fresh `python -m scrapy` instead.
NO_FORKSERVER = "WEBQQ_TEST_NO_FORKSERVER"


class ForkServer:
    """tests/forkserver.py, started once per test process: the commands of
    ``run_scrapy`` in this checkout are forked from it (see its docstring)."""

    def __init__(self) -> None:
        self.directory = tempfile.TemporaryDirectory(prefix="webqq-forkserver-")
        self.address = os.path.join(self.directory.name, "socket")
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.forkserver", self.address],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline()
        if ready.strip() != "ready":
            self.proc.kill()
            raise RuntimeError(f"tests/forkserver.py did not start: {ready!r}")
        atexit.register(self.stop)

    def starts_like(self, env: Mapping[str, str]) -> bool:
        """Whether a command with ``env`` would start as this server did: the same
        interpreter variables (PYTHON*) and the same variables read when Scrapy is
        imported (the suffix list's cache: HOME, XDG_CACHE_HOME, TLDEXTRACT_CACHE): a
        test that changes one of them gets a fresh ``python -m scrapy``."""
        names = {name for name in {*env, *self.env} if name.startswith("PYTHON")}
        names |= {"HOME", "XDG_CACHE_HOME", "TLDEXTRACT_CACHE"}
        return all(env.get(name) == self.env.get(name) for name in names)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.directory.cleanup()

    def run(
        self, args: list[str], env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """``python -m scrapy ARGS`` in ROOT with ``env``, as ``subprocess.run`` with
        ``capture_output=True, text=True`` answers it."""
        with tempfile.TemporaryDirectory(prefix="webqq-command-") as out:
            stdout, stderr = os.path.join(out, "stdout"), os.path.join(out, "stderr")
            request = {"argv": args, "env": env, "cwd": str(ROOT)}
            request |= {"stdout": stdout, "stderr": stderr}
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.connect(self.address)
                stream = connection.makefile("rwb")
                stream.write(json.dumps(request).encode() + b"\n")
                stream.flush()
                pid = json.loads(stream.readline())["pid"]
                connection.settimeout(timeout)
                try:
                    line = stream.readline()
                except TimeoutError:
                    os.killpg(pid, signal.SIGKILL)
                    raise subprocess.TimeoutExpired(["scrapy", *args], timeout) from None
                if not line:
                    raise RuntimeError(f"tests/forkserver.py lost the command {args}")
                returncode = json.loads(line)["returncode"]
            return subprocess.CompletedProcess(
                ["scrapy", *args],
                returncode,
                Path(stdout).read_text("utf-8", errors="replace"),
                Path(stderr).read_text("utf-8", errors="replace"),
            )


_SERVER: list[ForkServer] = []


def _forkserver() -> ForkServer:
    if not _SERVER or _SERVER[0].proc.poll() is not None:
        _SERVER[:] = [ForkServer()]
    return _SERVER[0]
