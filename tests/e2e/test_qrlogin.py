"""End-to-end logins: the real qrlogin spider against the real simulator over loopback."""

from __future__ import annotations

import json
import re
import socket
import time

import pytest
from scrapy import signals
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from tests.commands import ROOT, run_scrapy
from tests.settings import project_settings
from webqq_scrapy.items import SCHEMA_VERSION, Credentials, LoginOutcome
from webqq_scrapy.spiders.qrlogin import QRLoginSpider

HEX = re.compile(r"^[0-9a-f]+$")


class Run:
    """One crawl's items and stats."""

    def __init__(self, crawler):
        self.crawler = crawler
        self.items = []
        crawler.signals.connect(self.on_item, signal=signals.item_scraped)

    def on_item(self, item):
        self.items.append(item)

    @property
    def credentials(self) -> dict[str, Credentials]:
        return {i.account: i for i in self.items if isinstance(i, Credentials)}

    @property
    def outcomes(self) -> dict[str, LoginOutcome]:
        found = [i for i in self.items if isinstance(i, LoginOutcome)]
        assert len(found) == len({o.account for o in found}), "an account has two outcomes"
        return {o.account: o for o in found}

    def stat(self, name):
        return self.crawler.stats.get_value(name)


async def crawl(simulator, tmp_path, accounts, spargs=None, **settings) -> Run:
    """One in-process qrlogin crawl of ``accounts`` (more spider arguments: ``spargs``);
    ``settings`` override the fast defaults below."""
    values = project_settings(
        **{
            "WEBQQ_TARGET": simulator.url,
            "WEBQQ_POLL_INTERVAL": 0.2,
            "WEBQQ_SCANNED_POLL_INTERVAL": 0.1,
            "WEBQQ_QR_DIR": str(tmp_path / "qr"),
            "WEBQQ_QR_TERMINAL": False,
            "WEBQQ_DATABASE_ENABLED": False,
            **settings,
        }
    )
    run = Run(get_crawler(QRLoginSpider, values))
    await run.crawler.crawl_async(accounts=",".join(accounts), **(spargs or {}))
    assert run.stat("finish_reason") == "finished"
    return run


def assert_complete(credentials: Credentials, account: str) -> None:
    assert credentials.account == account
    assert credentials.uin > 0
    assert len(credentials.ptwebqq) == 64
    assert len(credentials.vfwebqq) == 80 and HEX.match(credentials.vfwebqq)
    assert len(credentials.psessionid) == 224 and HEX.match(credentials.psessionid)
    assert credentials.clientid == 53999199
    names = {(c["name"], c["domain"].lstrip(".")) for c in credentials.cookies}
    for expected in [
        ("ptwebqq", "qq.com"),
        ("skey", "qq.com"),
        ("uin", "qq.com"),
        ("p_skey", "web2.qq.com"),
        ("pt4_token", "web2.qq.com"),
        ("p_uin", "web2.qq.com"),
        ("qrsig", "ptlogin2.qq.com"),
    ]:
        assert expected in names, expected
    assert credentials.obtained_at < credentials.expires_at
    assert credentials.schema_version == SCHEMA_VERSION
    # The warm-up is the liveness test: a fresh login is stored as checked and valid.
    assert (credentials.status, credentials.status_retcode) == ("valid", 0)
    assert credentials.checked_at == credentials.obtained_at


@deferred_f_from_coro_f
async def test_one_account_logs_in_end_to_end(simulator, tmp_path):
    run = await crawl(simulator, tmp_path, ["alice"])
    assert_complete(run.credentials["alice"], "alice")
    assert run.outcomes["alice"].outcome == "ok"
    assert run.stat("webqq/qr/fetched") == 1
    assert run.stat("webqq/login/ok") == 1
    assert run.stat("webqq/poll/status/0") == 1
    # The QR file is gone once the account finished, its directory is private.
    assert list((tmp_path / "qr").iterdir()) == []
    assert (tmp_path / "qr").stat().st_mode & 0o777 == 0o700
    # The session was warmed up, so poll2 would not answer 103 (docs/protocol.md §3.6).
    steps = simulator.stats()["steps"]
    assert steps["get_online_buddies2"] == {"0": 1}
    assert steps["login2"] == {"0": 1}


@pytest.mark.simulator(scan_after=0.5, confirm_after=0.3)
@deferred_f_from_coro_f
async def test_fifty_accounts_poll_concurrently_with_isolated_jars(simulator, tmp_path):
    started = time.monotonic()
    one = await crawl(simulator, tmp_path, ["solo"])
    single = time.monotonic() - started

    accounts = [f"user{i:02d}" for i in range(50)]
    started = time.monotonic()
    # Admitted at once (a fixed rate replaces the measured one): this test is about fifty
    # accounts polling side by side; how admission spreads them on a busy machine is
    # test_admission's subject.
    run = await crawl(simulator, tmp_path, accounts, WEBQQ_ADMISSION_RATE=1000)
    many = time.monotonic() - started

    assert set(run.credentials) == set(accounts)
    for account in accounts:
        assert_complete(run.credentials[account], account)
    # Isolated jars: every account has its own session and its own cookies.
    assert len({c.psessionid for c in run.credentials.values()}) == 50
    assert len({c.uin for c in run.credentials.values()}) == 50
    skeys = {
        next(k["value"] for k in c.cookies if k["name"] == "skey") for c in run.credentials.values()
    }
    assert len(skeys) == 50
    # Concurrent polling: fifty logins take about as long as one, not fifty times longer.
    assert one.credentials["solo"]
    assert many < single * 3 + 2, (single, many)


@pytest.mark.simulator(qr_lifetime=0.6)
@deferred_f_from_coro_f
async def test_expired_qr_is_replaced_then_the_login_succeeds(simulator, tmp_path):
    simulator.phone.set_behaviour("erin", "expire:1")
    run = await crawl(simulator, tmp_path, ["erin"])
    assert run.outcomes["erin"].outcome == "ok"
    assert run.outcomes["erin"].qr_refreshes == 1
    assert run.stat("webqq/qr/fetched") == 2
    assert run.stat("webqq/qr/expired") == 1
    assert_complete(run.credentials["erin"], "erin")


@pytest.mark.simulator(qr_lifetime=0.3)
@deferred_f_from_coro_f
async def test_qr_refreshes_are_bounded(simulator, tmp_path):
    simulator.phone.set_behaviour("frank", "never")
    run = await crawl(simulator, tmp_path, ["frank"], WEBQQ_MAX_QR_REFRESHES=2)
    outcome = run.outcomes["frank"]
    assert (outcome.outcome, outcome.qr_refreshes) == ("expired", 2)
    assert run.stat("webqq/qr/fetched") == 3
    assert "frank" not in run.credentials


@deferred_f_from_coro_f
async def test_refusal_ends_only_that_account(simulator, tmp_path):
    simulator.phone.set_behaviour("mallory", "refuse")
    run = await crawl(simulator, tmp_path, ["mallory", "alice"])
    assert run.outcomes["mallory"].outcome == "refused"
    assert run.outcomes["alice"].outcome == "ok"
    assert set(run.credentials) == {"alice"}
    assert run.stat("webqq/outcome/refused") == 1


@deferred_f_from_coro_f
async def test_deadline_ends_a_login_that_never_completes(simulator, tmp_path):
    simulator.phone.set_behaviour("gina", "never")
    started = time.monotonic()
    run = await crawl(simulator, tmp_path, ["gina"], WEBQQ_LOGIN_TIMEOUT=1.0)
    assert run.outcomes["gina"].outcome == "timeout"
    assert run.outcomes["gina"].polls >= 3
    assert time.monotonic() - started < 10


@deferred_f_from_coro_f
async def test_a_deadline_inside_a_poll_wait_ends_the_login_then_the_crawl(simulator, tmp_path):
    # The poll wait (30 s) outlasts the accounts' 1 s: each waits on a timer, not in a
    # callback; at its deadline it ends "timeout" from there (at the step that waited, no
    # poll made), its outcome goes through the pipelines like any other, and the crawl
    # closes at once, not at 30 s.
    simulator.phone.set_behaviour("gina", "never")
    started = time.monotonic()
    run = await crawl(
        simulator,
        tmp_path,
        ["gina", "alice"],
        WEBQQ_POLL_INTERVAL=30,
        WEBQQ_SCANNED_POLL_INTERVAL=0.1,
        WEBQQ_LOGIN_TIMEOUT=1.0,
    )
    gina = run.outcomes["gina"]
    assert (gina.outcome, gina.step, gina.polls) == ("timeout", "ptqrshow", 0)
    assert gina.detail == "not logged in after WEBQQ_LOGIN_TIMEOUT=1s"
    assert run.outcomes["alice"].outcome == "timeout"
    assert run.stat("webqq/outcome/timeout") == 2
    assert run.stat("item_scraped_count") == 2
    assert time.monotonic() - started < 15


@pytest.mark.simulator(scan_after=0.5, confirm_after=0.3)
@deferred_f_from_coro_f
async def test_the_default_dupefilter_does_not_drop_polls_or_other_accounts(simulator, tmp_path):
    # Same URLs for every account and every poll: with Scrapy's default dupefilter a naive
    # spider loses polls and accounts (docs/scrapy-notes.md §1.5). Ours must not.
    run = await crawl(
        simulator,
        tmp_path,
        ["ann", "ben", "cat"],
        DUPEFILTER_CLASS="scrapy.dupefilters.RFPDupeFilter",
    )
    assert set(run.credentials) == {"ann", "ben", "cat"}
    assert not run.stat("dupefilter/filtered")
    assert run.stat("webqq/poll/status/66") >= 3


def test_feed_export_holds_the_credentials(tmp_path):
    # Runs in the project directory (scrapy.cfg) with the embedded simulator.
    out = tmp_path / "creds.json"
    result = run_scrapy(
        "crawl", "qrlogin", "-a", "accounts=alice,bob", "-O", str(out),
        "-s", "WEBQQ_SIMULATOR_SCAN_AFTER=0.1", "-s", "WEBQQ_SIMULATOR_CONFIRM_AFTER=0.1",
        "-s", "WEBQQ_POLL_INTERVAL=0.2", "-s", f"WEBQQ_QR_DIR={tmp_path / 'qr'}",
        "-s", "WEBQQ_DATABASE_ENABLED=false",
        cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    records = json.loads(out.read_text(encoding="utf-8"))
    assert sorted(r["account"] for r in records) == ["alice", "bob"]
    assert all(len(r["psessionid"]) == 224 for r in records)
    assert "offline WebQQ simulator" in result.stderr


def readme_demo_command() -> list[str]:
    """The crawl part of the README's first set-up command."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(python -m pip install -r requirements\.txt && .*)\n```", text)
    assert block, "README lost its demo command"
    crawl_part = block.group(1).split("&&", 1)[1].split()
    assert crawl_part[:3] == ["scrapy", "crawl", "qrlogin"]
    return crawl_part[1:]


def test_readme_demo_command_logs_two_accounts_in(tmp_path):
    args = readme_demo_command()
    # Run it as written, in a copy-free way: same command, in a scratch working directory,
    # with the project on the path (the README runs it from the project root).
    (tmp_path / "scrapy.cfg").write_text((ROOT / "scrapy.cfg").read_text())
    env_settings = ["-s", f"WEBQQ_QR_DIR={tmp_path / 'qr'}", "-s", "WEBQQ_QR_TERMINAL=true",
                    "-s", f"WEBQQ_DATABASE_URL=sqlite:///{tmp_path / 'demo.sqlite3'}"]  # fmt: skip
    result = run_scrapy(*args, *env_settings, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    records = json.loads((tmp_path / "credentials.json").read_text(encoding="utf-8"))
    assert sorted(r["account"] for r in records) == ["alice", "bob"]
    # The QR codes were printed in the terminal (stderr) with half blocks, not in the log.
    assert "QR code for alice:" in result.stderr
    assert "▀" in result.stderr or "▄" in result.stderr


@deferred_f_from_coro_f
async def test_a_crawl_stopped_early_names_the_accounts_left_without_outcome(
    simulator, tmp_path, caplog
):
    simulator.phone.set_behaviour("slow", "never")
    values = project_settings(
        WEBQQ_TARGET=simulator.url,
        WEBQQ_POLL_INTERVAL=0.2,
        WEBQQ_QR_DIR=str(tmp_path / "qr"),
        WEBQQ_DATABASE_ENABLED=False,
        CLOSESPIDER_TIMEOUT=1,
    )
    run = Run(get_crawler(QRLoginSpider, values))
    await run.crawler.crawl_async(accounts="fast,slow")
    assert run.stat("finish_reason") == "closespider_timeout"
    assert run.outcomes["fast"].outcome == "ok"
    assert "slow" not in run.outcomes
    assert run.stat("webqq/outcome/unfinished") == 1
    assert "no outcome was stored for: slow" in caplog.text
    # Its QR file was removed all the same.
    assert list((tmp_path / "qr").iterdir()) == []


@pytest.mark.simulator(scan_after=1.2, confirm_after=0.3)
@deferred_f_from_coro_f
async def test_an_unreachable_webhook_is_retried_while_accounts_still_poll(simulator, tmp_path):
    # Between two polls nothing is in flight (the account waits on a timer), so the crawl
    # looks idle to Scrapy; that is not "done but for the webhook": the qr event, made at
    # the start, keeps its backoff (0.1 + 0.2 + 0.4 s) while alice polls for 1.5 s, and is
    # given up only after its last retry. Only at the real end are backoffs cut short.
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = await crawl(
        simulator,
        tmp_path,
        ["alice"],
        WEBQQ_POLL_INTERVAL=0.3,
        WEBQQ_QR_WEBHOOK_URL=f"http://127.0.0.1:{port}/hook",
        WEBQQ_QR_WEBHOOK_RETRIES=3,
        WEBQQ_QR_WEBHOOK_BACKOFF=0.1,
    )
    assert run.outcomes["alice"].outcome == "ok"
    assert run.stat("webqq/webhook/retries") >= 3
    assert run.stat("webqq/webhook/failed") >= 1
