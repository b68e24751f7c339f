"""Making files private never takes a device away from the machine.

``webqq_scrapy.private`` makes feed and log files 0600. Run as root on a device, that
would make e.g. /dev/null unusable for every other user: pytest's logging plugin keeps a
FileHandler on /dev/null, so each in-process crawl under pytest did exactly that, and
PostgreSQL's initdb (run as ``postgres``) then failed on the machine. These tests use a
private node of the null device in the test's directory, never /dev/null itself.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from tests.commands import run_scrapy
from webqq_scrapy.private import make_handlers_private, open_private


@pytest.fixture
def null_node(tmp_path: Path) -> Path:
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    node.chmod(0o666)
    return node


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_log_handlers_on_a_device_keep_its_mode(null_node: Path, tmp_path: Path) -> None:
    logger = logging.getLogger("webqq-test-devices")
    regular = tmp_path / "log.txt"
    handlers = [logging.FileHandler(null_node), logging.FileHandler(regular)]
    regular.chmod(0o644)
    for handler in handlers:
        logger.addHandler(handler)
    try:
        make_handlers_private(logger)
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
    assert mode(null_node) == 0o666
    assert mode(regular) == 0o600  # a real log file is still made private


def test_open_private_on_a_device_keeps_its_mode(null_node: Path) -> None:
    with open_private(null_node, append=True) as file:
        file.write(b"nothing")
    assert mode(null_node) == 0o666


def test_a_feed_to_a_device_keeps_its_mode(null_node: Path, tmp_path: Path) -> None:
    result = run_scrapy(
        *("crawl", "qrlogin", "-a", "accounts=alice", "-O", f"{null_node}:json"),
        *("-s", f"LOG_FILE={null_node}", "-s", "WEBQQ_DATABASE_ENABLED=false"),
        data_home=tmp_path / "data",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert mode(null_node) == 0o666
