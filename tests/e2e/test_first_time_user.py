"""A first-time user's path (issue 16.7): the README's one-account recipe, in a terminal, and
the pointers from ``-h`` to the settings.

``scrapy login alice -L WARNING`` runs on a pseudo-terminal, as a person would run it: the
QR code is drawn in the terminal and the last line is the one-line result.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.commands import ROOT, run_scrapy


def run_on_a_terminal(args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    """Run ``args`` with stdin, stdout and stderr on a new pseudo-terminal; its output."""
    main, child = pty.openpty()
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdin=child, stdout=child, stderr=child)
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: every holder of the terminal's other end is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert process.wait(timeout=timeout) == 0
    return b"".join(chunks).decode("utf-8", errors="replace").replace("\r\n", "\n")


def test_one_account_interactively(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path / "data")}
    output = run_on_a_terminal(
        [sys.executable, "-m", "scrapy", "login", "alice", "-L", "WARNING"], env
    )
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines[0] == "QR code for alice:"
    assert "▀" in output or "▄" in output or "█" in output  # drawn with half blocks
    assert lines[-1] == "login: 1 account: ok 1"
    assert " INFO: " not in output and "Traceback" not in output


def test_help_points_to_the_settings() -> None:
    for command in ("crawl", "login"):
        result = run_scrapy(command, "-h")
        assert result.returncode == 0, result.stderr
        text = " ".join(result.stdout.split())
        assert "every WEBQQ_* setting, with its type, default and meaning" in text, command
        assert "webqq_scrapy/settings.py" in text and "'Settings' table" in text, command
