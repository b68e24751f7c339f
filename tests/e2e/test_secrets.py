"""Secrets stay out of logs and other users' reach (issue 6, point 6).

Every crawl here runs the real spider against the real simulator, then searches the whole
log for every value the simulator issued (cookie values, ptsigx, vfwebqq, psessionid, QR
payloads): none may appear unless WEBQQ_LOG_SECRETS is on.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import urllib.request
from pathlib import Path

import pytest
from scrapy import Request, Spider
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_f_from_coro_f, maybe_deferred_to_future
from scrapy.utils.log import get_scrapy_root_handler
from scrapy.utils.project import get_project_settings
from scrapy.utils.test import get_crawler

from tests.commands import run_scrapy
from tests.e2e.test_qrlogin import Run, crawl
from tests.settings import project_settings
from webqq_scrapy import signals as webqq_signals
from webqq_scrapy.items import Credentials
from webqq_scrapy.spiders.qrlogin import QRLoginSpider
from webqq_scrapy.store import read_credentials_records

ACCOUNTS = ["alice", "bob"]
# The cookies of a Qzone session that are secrets (docs/apps.md).
QZONE_SECRETS = ("p_skey", "skey", "superkey", "supertoken", "pt4_token")


def leaked(text: str, secrets: set[str]) -> list[str]:
    return sorted(secret for secret in secrets if secret in text)


class LogFile:
    """A root log handler writing to a file with Scrapy's format, as LOG_FILE would.

    Added before the crawler exists, like Scrapy's own root handler, so the project's
    redaction filter (attached when the crawl starts) sees it exactly as it sees that one.
    """

    def __init__(self, path: Path, level: str) -> None:
        settings = Settings()
        self.path = path
        self.handler = logging.FileHandler(path, encoding="utf-8")
        self.handler.setLevel(level)
        self.handler.setFormatter(
            logging.Formatter(settings["LOG_FORMAT"], settings["LOG_DATEFORMAT"])
        )
        self.root_level = logging.root.level

    def __enter__(self) -> LogFile:
        logging.root.addHandler(self.handler)
        logging.root.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.root.removeHandler(self.handler)
        logging.root.setLevel(self.root_level)
        self.handler.close()

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


LEVELS = [
    pytest.param("INFO", {}, id="info"),
    pytest.param("DEBUG", {}, id="debug"),
    pytest.param("DEBUG", {"COOKIES_DEBUG": True}, id="debug-cookies_debug"),
]


@pytest.mark.parametrize(("level", "extra"), LEVELS)
@deferred_f_from_coro_f
async def test_no_issued_secret_reaches_the_log(simulator, tmp_path, level, extra):
    assert get_scrapy_root_handler() is None  # the handler below is the only log file
    with LogFile(tmp_path / "crawl.log", level) as log:
        run = await crawl(
            simulator,
            tmp_path,
            ACCOUNTS,
            LOG_LEVEL=level,
            WEBQQ_JSON_PATH=str(tmp_path / "s.json"),
            **extra,
        )
    text = log.text()
    secrets = simulator.issued_secrets()
    credentials = [item for item in run.items if isinstance(item, Credentials)]
    # The crawl did log people in and the simulator handed out its usual tokens …
    assert sorted(c.account for c in credentials) == ACCOUNTS
    assert {c.psessionid for c in credentials} <= secrets
    assert len(secrets) > 20
    # … the log is the real one (the per-account INFO lines, DEBUG detail when asked) …
    assert "Account alice: ok after" in text
    if level == "DEBUG":
        assert "Crawled (200)" in text and "Scraped from" in text
    if extra.get("COOKIES_DEBUG"):
        assert "Sending cookies to" in text and "Received cookies from" in text
    # … and it holds none of them.
    assert leaked(text, secrets) == []


@deferred_f_from_coro_f
async def test_log_secrets_on_lets_them_through(simulator, tmp_path):
    # Proves the search above can fail: the same crawl with WEBQQ_LOG_SECRETS logs tokens.
    with LogFile(tmp_path / "crawl.log", "DEBUG") as log:
        await crawl(
            simulator,
            tmp_path,
            ACCOUNTS,
            LOG_LEVEL="DEBUG",
            COOKIES_DEBUG=True,
            WEBQQ_LOG_SECRETS=True,
        )
    assert leaked(log.text(), simulator.issued_secrets())


def sim_secrets(url: str) -> set[str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url + "/_sim/secrets", timeout=10) as resp:
        return set(json.loads(resp.read()))


@pytest.mark.simulator_args("--record-secrets", "--scan-after", "0.1", "--confirm-after", "0.1")
@pytest.mark.parametrize("log_secrets", [False, True], ids=["redacted", "log_secrets"])
def test_scrapy_crawl_log_file_and_stderr_hold_no_secret(simulator_process, tmp_path, log_secrets):
    # The real command line, its LOG_FILE and its stderr, at DEBUG with COOKIES_DEBUG.
    log_file = tmp_path / "crawl.log"
    result = run_scrapy(
        "crawl", "qrlogin", "-a", "accounts=alice,bob",
        "-s", f"WEBQQ_TARGET={simulator_process.url}", "-s", "WEBQQ_POLL_INTERVAL=0.2",
        "-s", f"WEBQQ_QR_DIR={tmp_path / 'qr'}", "-s", "WEBQQ_QR_TERMINAL=false",
        "-s", f"WEBQQ_JSON_PATH={tmp_path / 'store.json'}",
        "-s", "LOG_LEVEL=DEBUG", "-s", "COOKIES_DEBUG=True", "-s", f"LOG_FILE={log_file}",
        "-s", f"WEBQQ_LOG_SECRETS={log_secrets}",
        data_home=tmp_path / "data",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    text = log_file.read_text(encoding="utf-8")
    assert "'webqq/outcome/ok': 2" in text
    assert "Received cookies from" in text
    secrets = sim_secrets(simulator_process.control_url)
    stored = json.loads((tmp_path / "store.json").read_text(encoding="utf-8"))
    assert stored, "the store holds the credentials"
    if log_secrets:
        assert leaked(text, secrets)
    else:
        assert leaked(text + result.stderr + result.stdout, secrets) == []


# --- files ---------------------------------------------------------------------------------


@pytest.mark.simulator(phone="refuse")
@deferred_f_from_coro_f
async def test_qr_png_is_0600_and_deleted_when_the_account_finishes(simulator, tmp_path):
    seen: dict[str, int] = {}

    def on_qr(account, png, path, generation):
        seen[account] = os.stat(path).st_mode & 0o777

    values = project_settings(
        WEBQQ_TARGET=simulator.url,
        WEBQQ_POLL_INTERVAL=0.2,
        WEBQQ_QR_DIR=str(tmp_path / "qr"),
        WEBQQ_QR_TERMINAL=False,
        WEBQQ_DATABASE_ENABLED=False,
    )
    run = Run(get_crawler(QRLoginSpider, values))
    run.crawler.signals.connect(on_qr, signal=webqq_signals.qr_ready)
    await run.crawler.crawl_async(accounts="carol,dave")
    outcomes = {a: o.outcome for a, o in run.outcomes.items()}
    assert outcomes == {"carol": "refused", "dave": "refused"}
    assert seen == {"carol": 0o600, "dave": 0o600}
    # Both accounts failed; their QR files are gone all the same.
    assert list((tmp_path / "qr").iterdir()) == []
    assert (tmp_path / "qr").stat().st_mode & 0o777 == 0o700


@deferred_f_from_coro_f
async def test_json_store_and_sqlite_database_are_0600(simulator, tmp_path):
    db = tmp_path / "db" / "creds.sqlite3"
    db.parent.mkdir()
    await crawl(
        simulator,
        tmp_path,
        ACCOUNTS,
        WEBQQ_JSON_PATH=str(tmp_path / "store" / "creds.json"),
        WEBQQ_DATABASE_ENABLED=True,
        WEBQQ_DATABASE_URL=f"sqlite:///{db}",
    )
    store = tmp_path / "store" / "creds.json"
    assert json.loads(store.read_text(encoding="utf-8"))
    assert store.stat().st_mode & 0o777 == 0o600
    assert store.parent.stat().st_mode & 0o777 == 0o700
    for path in db.parent.iterdir():  # the database and any journal next to it
        assert path.stat().st_mode & 0o777 == 0o600, path


# --- settings -------------------------------------------------------------------------------


def test_project_settings_turn_off_telnet_and_remote_control():
    # get_project_settings(), not get_crawler(): get_crawler() turns both off by itself.
    settings = get_project_settings()
    assert settings["BOT_NAME"] == "webqq_scrapy"
    assert settings.getbool("TELNETCONSOLE_ENABLED") is False
    assert settings.getbool("REMOTE_CONTROL_ENABLED") is False
    assert settings.getbool("WEBQQ_LOG_SECRETS") is False
    assert settings.getbool("COOKIES_DEBUG") is False


def verifies_certificates(settings) -> bool:
    return settings.getbool("DOWNLOAD_VERIFY_CERTIFICATES")


def test_tencent_target_turns_certificate_verification_on():
    tencent = get_crawler(QRLoginSpider, project_settings(WEBQQ_TARGET="tencent"))
    assert verifies_certificates(tencent.settings)
    for target in ("simulator", "http://127.0.0.1:8000"):
        crawler = get_crawler(QRLoginSpider, project_settings(WEBQQ_TARGET=target))
        assert not verifies_certificates(crawler.settings), target


# A crawl with those TLS settings against a loopback HTTPS server whose certificate is
# self-signed: the tencent target's settings must refuse it, the simulator's accept it.

TLS_KEYS = ("DOWNLOAD_VERIFY_CERTIFICATES",)


def self_signed_certificate():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ssl.ptlogin2.qq.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM) + key_pem


class ProbeSpider(Spider):
    name = "tls_probe"

    def __init__(self, url: str, **kwargs):
        super().__init__(**kwargs)
        self.url = url
        self.result: str | None = None

    async def start(self):
        yield Request(self.url, callback=self.parse, errback=self.failed, dont_filter=True)

    def parse(self, response):
        self.result = f"HTTP {response.status}"

    def failed(self, failure):
        self.result = repr(failure.value)


async def probe(target: str, url: str) -> str:
    qrlogin = get_crawler(QRLoginSpider, project_settings(WEBQQ_TARGET=target))
    tls = {key: qrlogin.settings[key] for key in TLS_KEYS}
    crawler = get_crawler(ProbeSpider, {"RETRY_ENABLED": False, "LOG_LEVEL": "INFO", **tls})
    await crawler.crawl_async(url=url)
    return crawler.spider.result


# The test server's pyOpenSSL objects are deprecated in Twisted; the client side is not.
@pytest.mark.filterwarnings("ignore:Passing pyOpenSSL:DeprecationWarning")
@deferred_f_from_coro_f
async def test_tencent_target_rejects_a_self_signed_certificate():
    from twisted.internet import reactor, ssl
    from twisted.web import resource, server

    class Hello(resource.Resource):
        isLeaf = True

        def render_GET(self, request):
            return b"hello"

    certificate = ssl.PrivateCertificate.loadPEM(self_signed_certificate())
    port = reactor.listenSSL(0, server.Site(Hello()), certificate.options(), interface="127.0.0.1")
    try:
        url = f"https://localhost:{port.getHost().port}/"
        accepted = await probe("simulator", url)
        refused = await probe("tencent", url)
    finally:
        await maybe_deferred_to_future(port.stopListening())
    assert accepted == "HTTP 200"
    assert refused is not None and "certificate verify failed" in refused.lower(), refused


# --- every spider of the package (issue 26, point 13) ---------------------------------------

FORGED = "2026-12-06 12:00:00 [qrlogin] INFO: Account mallory: ok"


# A 1 s poll hold (not the recorded 60 s): the messages crawl's graceful stop at its duration
# waits for the polls in flight, which would otherwise hold it a minute.
@pytest.mark.simulator_args(
    "--record-secrets", "--scan-after", "0.1", "--confirm-after", "0.1", "--poll-hold", "1"
)
@pytest.mark.parametrize("spider", ["contacts", "session_check", "messages"])
def test_every_spider_at_debug_logs_no_secret_and_no_forged_line(
    simulator_process, tmp_path, spider
):
    """Each spider working on the stored sessions, at DEBUG with COOKIES_DEBUG: its LOG_FILE
    holds none of the simulator's secrets, and a kick reason from the server (alice's, with
    a newline and a log line after it) stays inside its own line."""
    from tests.fixtures.simulator import Browser

    common = [
        "-s", f"WEBQQ_TARGET={simulator_process.url}", "-s", "WEBQQ_POLL_INTERVAL=0.2",
        "-s", f"WEBQQ_QR_DIR={tmp_path / 'qr'}", "-s", "WEBQQ_QR_TERMINAL=false",
        "-s", f"WEBQQ_DATABASE_URL=sqlite:///{tmp_path / 'creds.sqlite3'}",
    ]  # fmt: skip
    login = run_scrapy("login", "alice", "bob", *common, data_home=tmp_path / "data")
    assert login.returncode == 0, login.stderr[-3000:]
    kicked = Browser(simulator_process).control(
        "/_sim/kick", {"account": "alice", "reason": f"bye\n{FORGED}"}
    )
    assert kicked.status == 200, kicked.text

    log_file = tmp_path / f"{spider}.log"
    arguments = ["-a", "duration=2"] if spider == "messages" else []
    result = run_scrapy(
        "crawl", spider, *arguments, *common,
        "-s", "LOG_LEVEL=DEBUG", "-s", "COOKIES_DEBUG=True", "-s", f"LOG_FILE={log_file}",
        data_home=tmp_path / "data",
    )  # fmt: skip
    text = log_file.read_text(encoding="utf-8")
    assert result.returncode == 0, result.stderr[-3000:] + text[-3000:]
    assert "Sending cookies to" in text and "Account bob" in text
    assert (
        leaked(text + result.stderr + result.stdout, sim_secrets(simulator_process.control_url))
        == []
    )
    assert not [line for line in text.splitlines() if line.startswith(FORGED)], spider
    if spider == "messages":  # the spider that reads the kick message itself
        assert "Account alice: the stored session has ended (kicked: bye\\n2026" in text


# --- the Qzone app (issue 24 over issue 26's bar) -------------------------------------------


def derived_tokens(secrets: set[str]) -> set[str]:
    """g_tk / bkn of every issued secret: Qzone's and qun's request tokens are a hash of
    p_skey (or skey), sent in every request's query string."""
    from webqq_scrapy.protocol.apps import hash33

    return {str(hash33(secret, 5381)) for secret in secrets}


@pytest.mark.simulator_args("--record-secrets", "--scan-after", "0.1", "--confirm-after", "0.1")
def test_qzone_login_posts_and_friends_at_debug_log_no_secret(simulator_process, tmp_path):
    """qrlogin -a app=qzone, qzone_friends and qzone_posts at DEBUG with COOKIES_DEBUG: no
    cookie value of the Qzone session (p_skey, skey, superkey, supertoken, pt4_token …),
    no ptsigx, qrsig or ptqrtoken, and no g_tk / bkn computed from them in any log; `creds
    show --app qzone` prints none either; the store is 0600."""
    db = tmp_path / "creds.sqlite3"
    common = [
        "-s", f"WEBQQ_TARGET={simulator_process.url}", "-s", "WEBQQ_POLL_INTERVAL=0.2",
        "-s", f"WEBQQ_QR_DIR={tmp_path / 'qr'}", "-s", "WEBQQ_QR_TERMINAL=false",
        "-s", f"WEBQQ_DATABASE_URL=sqlite:///{db}",
        "-s", "LOG_LEVEL=DEBUG", "-s", "COOKIES_DEBUG=True",
    ]  # fmt: skip
    texts = []
    for spider, arguments in (
        ("qrlogin", ["-a", "app=qzone"]),
        ("qzone_friends", []),
        ("qzone_posts", ["-a", "owners=self,friends"]),
    ):
        log_file = tmp_path / f"{spider}.log"
        result = run_scrapy(
            "crawl", spider, "-a", "accounts=alice,bob", *arguments, *common,
            "-s", f"LOG_FILE={log_file}", data_home=tmp_path / "data",
        )  # fmt: skip
        text = log_file.read_text(encoding="utf-8")
        assert result.returncode == 0, result.stderr[-3000:] + text[-3000:]
        assert "Sending cookies to" in text and "Crawled (200)" in text, spider
        texts.append(text + result.stderr + result.stdout)
    assert "'webqq/outcome/ok': 2" in texts[0]
    assert "Scraped from" in texts[2] and "qzone_msglist" in texts[2]
    show = run_scrapy(
        "creds", "show", "alice", "--app", "qzone", "-s", f"WEBQQ_DATABASE_URL=sqlite:///{db}",
        data_home=tmp_path / "data",
    )  # fmt: skip
    listed = run_scrapy(
        "creds", "list", "--app", "qzone", "--json",
        "-s", f"WEBQQ_DATABASE_URL=sqlite:///{db}", data_home=tmp_path / "data",
    )  # fmt: skip
    assert show.returncode == 0 and listed.returncode == 0, show.stderr + listed.stderr
    assert "qzone" in show.stdout and "p_skey" in show.stdout, show.stdout
    assert {row["account"] for row in json.loads(listed.stdout)} == {"alice", "bob"}
    # (`show --json` prints the whole record, secrets included, as documented.)
    texts += [show.stdout + show.stderr, listed.stdout + listed.stderr]

    secrets = sim_secrets(simulator_process.control_url)
    records = read_credentials_records(database_url=f"sqlite:///{db}", app="qzone")
    stored = {c["value"] for r in records for c in r["cookies"] if c["name"] in QZONE_SECRETS}
    assert len(records) == 2 and stored <= secrets and len(stored) >= 2 * 4
    tokens = derived_tokens(secrets)
    for text in texts:
        assert leaked(text, secrets) == []
        sent = set(re.findall(r"(?:g_tk|bkn)\W{1,4}(\d+)", text))
        assert sent & tokens == set()
    assert "g_tk=" in texts[2]  # the requests are logged, their token replaced
    for path in db.parent.glob("creds.sqlite3*"):
        assert path.stat().st_mode & 0o777 == 0o600, path
