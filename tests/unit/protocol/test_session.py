"""What a retcode says about a stored session (webqq_scrapy.protocol.session, §7, §8.1)."""

from __future__ import annotations

import pytest

from webqq_scrapy.protocol import ProtocolError
from webqq_scrapy.protocol.codes import describe_retcode
from webqq_scrapy.protocol.session import liveness


@pytest.mark.parametrize(
    ("retcode", "status"),
    [
        (0, "valid"),
        # After a kick the multi-login check answers 103 (§7, §8.1): the warm-up call itself
        # cannot register the session any more.
        (103, "ended"),
        (100001, "ended"),  # "login error" about two days after the scan (§7)
        (100000, "ended"),
        (100, "ended"),
        (121, "ended"),
        (6, "ended"),
        (100003, "unknown"),  # too many requests: says nothing about the session
        (112, "unknown"),
        (99999, "unknown"),
    ],
)
def test_liveness(retcode, status):
    assert liveness(retcode) == status


def test_a_boolean_is_not_a_retcode():
    with pytest.raises(ProtocolError):
        liveness(False)  # type: ignore[arg-type]


def test_reason_names_the_code_and_its_meaning():
    assert describe_retcode(100001) == "retcode 100001 (not logged in / session expired)"
    assert describe_retcode(4242) == "retcode 4242 (unknown)"
