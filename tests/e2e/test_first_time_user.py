"""A first-time user's path (issue 16.7): the README's one-account recipe, in a terminal, and
the pointers from ``-h`` to the settings.

``scrapy login alice -L WARNING`` runs on a pseudo-terminal, as a person would run it: the
QR code is drawn in the terminal and the last line is the one-line result.
"""

from __future__ import annotations

import os
import pty
import re
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


def screen_lines(output: str) -> list[str]:
    """The non-empty lines as the terminal shows them: a ``\\r`` returns to the line's start
    (what follows overwrites what was there), ``ESC [K`` erases to the line's end."""
    lines = []
    for raw in output.split("\n"):  # not splitlines(): it would split at each \r too
        shown = ""
        for part in raw.split("\r"):
            erase = "\x1b[K" in part
            part = part.replace("\x1b[K", "")
            shown = part if erase else part + shown[len(part) :]
        if shown.strip():
            lines.append(shown)
    return lines


def test_one_account_interactively(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path / "data")}
    output = run_on_a_terminal(
        [sys.executable, "-m", "scrapy", "login", "alice", "-L", "WARNING"], env
    )
    lines = screen_lines(output)
    assert lines[0] == "QR code for alice:"
    assert "▀" in output or "▄" in output or "█" in output  # drawn with half blocks
    assert lines[-1] == "login: 1 account: ok 1"
    assert " INFO: " not in output and "Traceback" not in output


PROGRESS = re.compile(
    "QR alice: (waiting for a scan|scanned, confirm on the phone) \u00b7 [0-9]+ s left "
    "\u00b7 refresh [0-9]+/[0-9]+"
)


def test_a_waiting_qr_shows_a_progress_line_on_the_terminal_only(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path / "data")}
    log = tmp_path / "login.log"
    output = run_on_a_terminal(
        [sys.executable, "-m", "scrapy", "login", "alice", "-s", f"LOG_FILE={log}"], env
    )
    # Rewritten in place: a carriage return, the line, an erase to its end.
    shown = re.findall("\r([^\r\n\x1b]*)\x1b\\[K", output)
    progress = [line for line in shown if line]
    assert progress, output
    assert all(PROGRESS.fullmatch(line) for line in progress), progress
    # Erased once the login has finished: the last thing on the screen is the result.
    assert screen_lines(output)[-1] == "login: 1 account: ok 1"
    # Never in the log file, never when stderr is not a terminal.
    assert "INFO" in log.read_text() and "s left" not in log.read_text()
    piped = run_scrapy("login", "bob", "-L", "WARNING", data_home=tmp_path / "data")
    assert piped.returncode == 0, piped.stderr
    assert "s left" not in piped.stderr and "\r" not in piped.stderr


def test_the_progress_line_counts_the_accounts_queued_for_admission(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path / "data")}
    args = [
        "login",
        "alice",
        "bob",
        "carol",
        "-L",
        "WARNING",
        "-s",
        "WEBQQ_MAX_ACCOUNTS_IN_FLIGHT=1",
    ]
    output = run_on_a_terminal([sys.executable, "-m", "scrapy", *args], env)
    # One account at a time: while alice's QR waits, bob and carol are queued; then carol.
    assert re.search(PROGRESS.pattern + " \u00b7 2 queued", output), output
    assert re.search("QR bob: .* \u00b7 1 queued", output), output
    carol = [line for line in output.split("\r") if line.startswith("QR carol:")]
    assert carol and not any("queued" in line for line in carol), output
    assert screen_lines(output)[-1] == "login: 3 accounts: ok 3"


def test_help_points_to_the_settings() -> None:
    for command in ("crawl", "login"):
        result = run_scrapy(command, "-h")
        assert result.returncode == 0, result.stderr
        text = " ".join(result.stdout.split())
        assert "every WEBQQ_* setting, with its type, default and meaning" in text, command
        assert "webqq_scrapy/settings.py" in text and "'Settings' table" in text, command


def test_two_accounts_share_one_progress_line_and_leave_no_stale_one(tmp_path: Path) -> None:
    """Issue 21: the progress line is erased before the next QR is drawn (no stale line
    under the first QR), and one line shows both waiting accounts instead of alternating."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path / "data")}
    env["COLUMNS"] = "200"  # the line is cut to the terminal's width (a pty says 0: 80)
    args = ["login", "alice", "bob", "-L", "WARNING", "-s", "WEBQQ_SIMULATOR_SCAN_AFTER=3"]
    output = run_on_a_terminal([sys.executable, "-m", "scrapy", *args], env)
    lines = screen_lines(output)
    # Both logins start at once: whichever QR answer comes first is drawn first (and is
    # first on the progress line); the order of the two is not promised.
    assert sorted(line for line in lines if line.startswith("QR code for")) == [
        "QR code for alice:",
        "QR code for bob:",
    ]
    assert not [line for line in lines if "s left" in line], lines  # nothing left behind
    shown = [p for p in re.findall("\r([^\r\n\x1b]*)\x1b\\[K", output) if p]
    part = "(alice|bob): [^|]* s left \u00b7 refresh [0-9]+/[0-9]+"
    both = re.compile(f"QR {part} \\| {part}")
    matches = [m for m in map(both.fullmatch, shown) if m]
    assert any(m[1] != m[2] for m in matches), shown
    assert lines[-1] == "login: 2 accounts: ok 2"
