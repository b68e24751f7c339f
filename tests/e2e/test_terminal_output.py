"""Names from outside reach the terminal escaped (issue 15, point 14).

A hostile server gives an account a nickname full of terminal escape sequences and a
newline; the real qrlogin spider stores it (it is the account's data), and ``scrapy creds
list`` / ``show`` print it as visible escapes: no retitled window, no cleared screen, no
forged row. Account names with control characters are refused at start.
"""

from __future__ import annotations

import json
import re

from scrapy.utils.defer import deferred_f_from_coro_f

from tests.commands import run_scrapy
from tests.e2e.test_qrlogin import crawl
from tests.hostile import Answer, Call, HostileProxy

HOSTILE_NICK = "\x1b]0;pwned\x07\x1b[2J\u009b31mred\nalice2  99999  forged-row"


def _hostile_nickname(call: Call) -> Answer:
    answer = call.forward()
    body = answer.body.decode("utf-8")
    if body.startswith("ptuiCB('0'"):
        body = re.sub(r", '[^']*'\);", lambda m: f", '{HOSTILE_NICK}');", body)
    return Answer(answer.status, answer.headers, body.encode("utf-8"))


@deferred_f_from_coro_f
async def test_creds_list_and_show_print_a_hostile_nickname_escaped(simulator, tmp_path):
    db = f"sqlite:///{tmp_path / 'creds.sqlite3'}"
    proxy = HostileProxy(simulator.url, {"/ptqrlogin": _hostile_nickname})
    try:
        run = await crawl(
            simulator,
            tmp_path,
            ["alice"],
            WEBQQ_TARGET=proxy.url,
            WEBQQ_DATABASE_ENABLED=True,
            WEBQQ_DATABASE_URL=db,
        )
    finally:
        proxy.stop()
    assert run.stat("webqq/outcome/ok") == 1

    listed = run_scrapy("creds", "list", "--database-url", db)
    assert listed.returncode == 0, listed.stderr
    out = listed.stdout
    for raw in ("\x1b", "\x07", "\x9b"):
        assert raw not in out
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x9b31mred\\nalice2" in out
    assert not [line for line in out.splitlines() if line.startswith("alice2")]
    assert len(out.splitlines()) == 3  # header, alice, the count line

    for args in (("show", "alice"), ("show", "alice", "--json")):
        shown = run_scrapy("creds", *args, "--database-url", db)
        assert shown.returncode == 0, shown.stderr
        assert not any(raw in shown.stdout for raw in ("\x1b", "\x07", "\x9b"))
    # The short view shows the nickname escaped, on one line; --json keeps the data intact.
    summary = run_scrapy("creds", "show", "alice", "--database-url", db).stdout
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x9b31mred\\nalice2" in summary
    document = run_scrapy("creds", "show", "alice", "--json", "--database-url", db).stdout
    assert json.loads(document)["nickname"] == HOSTILE_NICK


def test_account_names_with_control_characters_are_refused_at_start(tmp_path):
    result = run_scrapy(
        "crawl", "qrlogin", "-a", "accounts=ok,evil\x1b[2J", data_home=tmp_path / "xdg"
    )
    assert result.returncode == 2
    assert "control character" in result.stderr
    assert "\x1b" not in result.stderr
