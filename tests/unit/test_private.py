"""Secret files are made 0600, but a device a feed or log is sent to keeps its mode."""

from __future__ import annotations

import os
import stat

import pytest

from webqq_scrapy.private import open_private


def test_a_new_file_is_created_0600(tmp_path):
    path = tmp_path / "creds.json"
    open_private(path, append=False).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_existing_file_is_narrowed_to_0600(tmp_path):
    path = tmp_path / "creds.json"
    path.write_text("{}")
    path.chmod(0o644)
    open_private(path, append=True).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")
def test_a_device_keeps_its_mode(tmp_path):
    # A private copy of /dev/null's node: a feed sent there (-O /dev/null) must not
    # make the machine's /dev/null unwritable for every other user.
    node = tmp_path / "null"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    node.chmod(0o666)
    open_private(node, append=False).close()
    assert stat.S_IMODE(node.stat().st_mode) == 0o666
