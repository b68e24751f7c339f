"""A first run on a fresh machine without network is clean (issue 16.2).

The README's demo command runs in a brand-new HOME (no ``~/.cache``, no XDG directories), so
nothing any earlier run cached can help, and with every https download sent to a closed
loopback port, so it cannot reach the network even where there is one. Scrapy's cookie
middleware used to fetch the Public Suffix List there and print a dozen tracebacks before
the first QR; the project's cookie middleware uses the list inside tldextract instead.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.commands import run_scrapy


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_first_run_in_a_fresh_home_without_network_prints_no_traceback(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    nowhere = f"http://127.0.0.1:{closed_port()}"
    feed = tmp_path / "credentials.json"
    result = run_scrapy(
        *("crawl", "qrlogin", "-a", "accounts=alice,bob", "-O", str(feed)),
        env_changes={
            "HOME": str(home),
            "XDG_CACHE_HOME": None,
            "XDG_DATA_HOME": None,
            "XDG_CONFIG_HOME": None,
            "TLDEXTRACT_CACHE": None,
            # Any https download (the suffix list's URLs are https) fails at once.
            "HTTPS_PROXY": nowhere,
            "https_proxy": nowhere,
        },
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[:3000]
    problems = [line for line in output.splitlines() if " WARNING: " in line or " ERROR: " in line]
    assert problems == [], problems
    assert sorted(record["account"] for record in json.loads(feed.read_text())) == [
        "alice",
        "bob",
    ]
    # Nothing was downloaded or cached: the only files the run left in HOME are the store and
    # the embedded simulator's persistent world (docs/simulator.md): its state, its lock and
    # the last server's address (0600; the next crawl serves on the same port).
    left = sorted(str(path.relative_to(home)) for path in home.rglob("*") if path.is_file())
    assert left == [
        ".local/share/webqq_scrapy/credentials.sqlite3",
        ".local/share/webqq_scrapy/simulator/serve.json",
        ".local/share/webqq_scrapy/simulator/serve.lock",
        ".local/share/webqq_scrapy/simulator/state.json",
    ], left
