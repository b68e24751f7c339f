"""Pure parts of the session features: -a reuse, creds check's statuses and exit status."""

from __future__ import annotations

import pytest

from webqq_scrapy.commands._check import exit_status, status_of
from webqq_scrapy.sources.accounts import SpiderArgumentError
from webqq_scrapy.spiders.qrlogin import parse_reuse


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("true", True), ("Yes", True), ("1", True), ("off", False), ("", False)],
)
def test_reuse_argument(value, expected):
    assert parse_reuse(value) is expected


def test_reuse_argument_refuses_anything_else():
    with pytest.raises(SpiderArgumentError, match=r"^reuse: must be true or false"):
        parse_reuse("maybe")


def test_check_statuses():
    assert status_of("ok") == "valid"
    assert status_of("session_ended") == "ended"
    assert status_of("no_credentials") == "missing"
    assert status_of("network_error") == "unknown"
    assert status_of("protocol_error") == "unknown"


@pytest.mark.parametrize(
    ("outcomes", "code"),
    [
        (["ok", "ok"], 0),
        (["ok", "session_ended"], 1),
        (["ok", "no_credentials"], 1),
        (["ok", "network_error"], 1),
        ([], 1),  # nothing stored: nothing usable
        (["network_error", "network_error"], 3),  # the target is down
    ],
)
def test_check_exit_status(outcomes, code):
    assert exit_status(outcomes) == code
