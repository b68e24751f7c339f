"""The Qzone login (issue 24, points 1, 2 and 7): one login path for every app row, and
credentials per (account, app), against the real simulator over loopback.

In-process crawls where the command line is not the point; the commands (``scrapy login
--app``, ``scrapy creds list/check --app``, ``login --reuse --app``) as a user runs them
against a simulator started apart, whose control API ends the Qzone sessions.
"""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from tests.commands import run_scrapy
from tests.e2e.test_qrlogin import Run
from tests.e2e.test_qrlogin import crawl as qrlogin_crawl
from tests.fixtures.simulator import Browser
from webqq_scrapy.items import Credentials
from webqq_scrapy.protocol.apps import g_tk
from webqq_scrapy.simulator.qzone import qzone_qq
from webqq_scrapy.store import list_credentials, list_outcomes, load_credentials

if TYPE_CHECKING:
    from pathlib import Path

FAST = ["-s", "WEBQQ_POLL_INTERVAL=0.2", "-s", "WEBQQ_RETRY_BACKOFF=0.1"]
SIMULATOR = ("--scan-after", "0.1", "--confirm-after", "0.1")


async def crawl(simulator, tmp_path: Path, accounts: list[str], **spargs: str) -> Run:
    """test_qrlogin's in-process crawl, storing into the JSON file ``creds.json``."""
    json_path = str(tmp_path / "creds.json")
    return await qrlogin_crawl(simulator, tmp_path, accounts, spargs, WEBQQ_JSON_PATH=json_path)


def _cookies(creds: Credentials) -> dict[tuple[str, str], str]:
    return {(c["name"], c["domain"].lstrip(".")): c["value"] for c in creds.cookies}


@deferred_f_from_coro_f
async def test_qzone_logins_store_qzone_records_beside_webqq_ones(simulator, tmp_path: Path):
    run = await crawl(simulator, tmp_path, ["alice", "bob"], app="qzone")
    assert sorted((o.account, o.outcome, o.app) for o in run.outcomes.values()) == [
        ("alice", "ok", "qzone"),
        ("bob", "ok", "qzone"),
    ]
    # Nothing of WebQQ's post-login chain ran: the session is check_sig's cookies.
    assert run.stat("webqq/latency/check_sig/count") == 2
    assert run.stat("webqq/latency/getvfwebqq/count") is None
    source = {"json_path": tmp_path / "creds.json"}
    stored = {c.account: c for c in list_credentials(app="qzone", **source)}
    assert sorted(stored) == ["alice", "bob"]
    for account, creds in stored.items():
        world = simulator.qzone.worlds[account]  # the in-process simulator's own state
        assert creds.app == "qzone"
        assert creds.uin == qzone_qq(account) == world.qq
        assert creds.nickname == world.nickname
        assert (creds.ptwebqq, creds.vfwebqq, creds.psessionid) == ("", "", "")
        assert creds.clientid is None
        cookies = _cookies(creds)
        for name, domain in [
            ("skey", "qq.com"),
            ("uin", "qq.com"),
            ("p_skey", "qzone.qq.com"),
            ("p_uin", "qzone.qq.com"),
            ("pt4_token", "qzone.qq.com"),
        ]:
            assert cookies.get((name, domain)), (name, domain)
        assert cookies[("uin", "qq.com")] == f"o0{creds.uin}"
        # g_tk is derived from the stored cookies, never stored itself.
        assert "g_tk" not in {c["name"] for c in creds.cookies}
        assert g_tk({"p_skey": cookies[("p_skey", "qzone.qq.com")]}) > 0
    # WebQQ readers see nothing of them.
    assert list_credentials(**source) == []

    # A WebQQ login of alice in the same store: both records live side by side.
    await crawl(simulator, tmp_path, ["alice"])
    webqq = load_credentials("alice", **source)
    assert webqq is not None and webqq.app == "webqq" and webqq.psessionid
    assert load_credentials("alice", app="qzone", **source) == stored["alice"]
    assert [(o.account, o.app) for o in list_outcomes(**source)] == [("alice", "webqq")]
    assert {o.account for o in list_outcomes(app="qzone", **source)} == {"alice", "bob"}


def test_an_unknown_app_is_one_line_and_exit_2(tmp_path: Path):
    commands = (
        ["login", "--app", "nope", "x"],
        ["crawl", "qrlogin", "-a", "app=nope"],
        ["creds", "list", "--app", "nope", "--json-path", str(tmp_path / "c.json")],
        ["creds", "check", "--app", "nope", "--json-path", str(tmp_path / "c.json")],
    )
    for args in commands:
        if args[0] == "crawl":
            args += ["-a", "accounts=x"]
        result = run_scrapy(*args, data_home=tmp_path / "data")
        assert result.returncode == 2, result.stderr[-2000:]
        lines = [line for line in result.stderr.splitlines() if "nope" in line]
        assert len(lines) == 1, result.stderr[-2000:]
        assert "unknown app 'nope'" in lines[0]
        assert "qun, qzone, qzone_h5, webqq" in lines[0]
    bad = run_scrapy("login", "x", "-s", "WEBQQ_APP=nope", data_home=tmp_path / "data")
    assert bad.returncode == 2 and "WEBQQ_APP" in bad.stderr, bad.stderr[-2000:]


@pytest.mark.simulator_args(*SIMULATOR)
def test_creds_and_reuse_per_app(tmp_path: Path, simulator_process, sqlite_url: str):
    common = [
        "-s", f"WEBQQ_TARGET={simulator_process.url}",
        "-s", f"WEBQQ_QR_DIR={tmp_path / 'qr'}",
        "-s", f"WEBQQ_DATABASE_URL={sqlite_url}",
        *FAST,
    ]  # fmt: skip

    def scrapy(*args: str) -> subprocess.CompletedProcess[str]:
        return run_scrapy(*args, *common, data_home=tmp_path / "data")

    login = scrapy("login", "--app", "qzone", "alice", "bob")
    assert login.returncode == 0, login.stderr[-3000:]
    assert "login: 2 accounts: ok 2" in login.stderr
    webqq = scrapy("login", "alice")
    assert webqq.returncode == 0, webqq.stderr[-3000:]

    listing = scrapy("creds", "list", "--app", "qzone")
    assert listing.returncode == 0, listing.stderr[-3000:]
    lines = listing.stdout.splitlines()
    assert lines[0].split()[:3] == ["ACCOUNT", "APP", "UIN"]
    assert [line.split()[:3] for line in lines[1:3]] == [
        ["alice", "qzone", str(qzone_qq("alice"))],
        ["bob", "qzone", str(qzone_qq("bob"))],
    ]
    # Without --app: WebQQ's records only, as before.
    plain = json.loads(scrapy("creds", "list", "--json").stdout)
    assert [(r["account"], r["app"]) for r in plain] == [("alice", "webqq")]

    check = scrapy("creds", "check", "--app", "qzone", "--json")
    assert check.returncode == 0, check.stderr[-3000:]
    rows = {row["account"]: row for row in json.loads(check.stdout)}
    assert {a: (r["app"], r["status"]) for a, r in rows.items()} == {
        "alice": ("qzone", "valid"),
        "bob": ("qzone", "valid"),
    }
    stored = load_credentials("alice", app="qzone", database_url=sqlite_url)
    assert stored is not None and stored.status == "valid"

    # --reuse --app qzone: alice's live Qzone session is reused, no QR.
    reuse = scrapy("login", "--reuse", "--app", "qzone", "alice")
    assert reuse.returncode == 0, reuse.stderr[-3000:]
    assert "reused 1" in reuse.stderr
    reused = load_credentials("alice", app="qzone", database_url=sqlite_url)
    assert reused is not None and (reused.obtained_at, reused.cookies) == (
        stored.obtained_at,
        stored.cookies,
    )
    assert reused.status == "valid" and reused.checked_at > (stored.checked_at or "")

    # The simulator ends alice's sessions: the Qzone check says ended (-3000) and stores it.
    expired = Browser(simulator_process).control(
        "/_sim/session", {"account": "alice", "action": "expire"}
    )
    assert expired.status == 200, expired.text
    check = scrapy("creds", "check", "--app", "qzone", "alice")
    assert check.returncode == 1, check.stderr[-3000:]
    table = check.stdout.splitlines()
    assert table[0].split()[:4] == ["ACCOUNT", "APP", "STATUS", "RETCODE"]
    assert table[1].split()[:4] == ["alice", "qzone", "ended", "-3000"]
    ended = load_credentials("alice", app="qzone", database_url=sqlite_url)
    assert ended is not None and (ended.status, ended.status_retcode) == ("ended", -3000)
    # alice's WebQQ record is not touched by news of her Qzone session.
    assert load_credentials("alice", database_url=sqlite_url).status == "valid"
