"""The pure core stays pure: importing protocol/ loads neither Scrapy nor Twisted."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import webqq_scrapy.protocol, webqq_scrapy.protocol.login, webqq_scrapy.protocol.ptlogin
loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('scrapy', 'twisted'))
print(','.join(loaded))
"""


def test_protocol_imports_neither_scrapy_nor_twisted():
    out = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
