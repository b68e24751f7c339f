"""The QR webhook in a real crawl, against a local HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import json
import logging
import socket
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
import segno
import zxingcpp
from PIL import Image
from scrapy import Spider
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from tests.scripted import ScriptSpider, run_script
from tests.settings import project_settings
from webqq_scrapy import signals as webqq_signals
from webqq_scrapy.config import SettingError
from webqq_scrapy.qr.webhook import QRWebhook

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

PAYLOAD_1 = "http://127.0.0.1:8000/phone/qr/first-qr-1111"
PAYLOAD_2 = "http://127.0.0.1:8000/phone/qr/second-qr-2222"
# Webhook URLs of chat services carry their secret in the path or the query.
SECRET_PATH = "/hooks/T0SECRETPATH/B0SECRET"
SECRET_QUERY = "key=SECRETQUERYKEY"


def make_png(payload: str) -> bytes:
    out = io.BytesIO()
    segno.make(payload, micro=False).save(out, kind="png", scale=5, border=4)
    return out.getvalue()


class Receiver:
    """A webhook receiver: records every POST; answers ``fail_first`` of them with 503.

    It speaks HTTP/1.1 with keep-alive, like most servers; ``http10`` makes it close each
    connection after its answer without saying so (stdlib default), which a pooled client
    connection may only notice when it sends the next POST on it.
    """

    def __init__(
        self, fail_first: int = 0, status: int = 204, http10: bool = False, drop: int = -1
    ) -> None:
        self.posts: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self.drop = drop  # the POST (counted from 0) whose connection is closed unanswered
        self.seen = 0
        self.status = status
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0" if http10 else "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.seen += 1
                if receiver.seen - 1 == receiver.drop:  # closed without an answer
                    self.close_connection = True
                    return
                with receiver.lock:
                    attempt = len(receiver.posts)
                    receiver.posts.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                status = 503 if attempt < receiver.fail_first else receiver.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{SECRET_PATH}?{SECRET_QUERY}"

    def events(self, *, accepted_only: bool = True) -> list[dict[str, Any]]:
        """The JSON bodies the receiver accepted (a 503 does not count)."""
        return [
            json.loads(post["body"])
            for index, post in enumerate(self.posts)
            if not accepted_only or index >= self.fail_first
        ]


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(**kwargs: Any) -> Receiver:
        receiver = Receiver(**kwargs)
        receiver.thread.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.server.shutdown()
        receiver.server.server_close()


async def login_sequence(spider: ScriptSpider) -> None:
    """What the qrlogin spider sends for one account whose first QR expires."""
    spider.qr_ready("alice", make_png(PAYLOAD_1), 1)
    spider.qr_state("alice", webqq_signals.QR_WAITING)
    await sleep(0.05)
    spider.qr_ready("alice", make_png(PAYLOAD_2), 2)
    spider.qr_state("alice", webqq_signals.QR_WAITING)
    await sleep(0.05)
    spider.qr_state("alice", webqq_signals.QR_SCANNED)
    await sleep(0.05)
    spider.qr_state("alice", webqq_signals.QR_DONE, "ok")


EXPECTED = [  # (event, state, generation, outcome, QR payload)
    ("qr", "waiting", 1, None, PAYLOAD_1),
    ("state", "waiting", 1, None, None),
    ("qr", "waiting", 2, None, PAYLOAD_2),
    ("state", "waiting", 2, None, None),
    ("state", "scanned", 2, None, None),
    ("state", "done", 2, "ok", None),
]


def summary(event: dict[str, Any]) -> tuple[Any, ...]:
    payload = None
    if event["png_base64"] is not None:
        image = Image.open(io.BytesIO(base64.b64decode(event["png_base64"])))
        (payload,) = [code.text for code in zxingcpp.read_barcodes(image)]
    return (event["event"], event["state"], event["generation"], event["outcome"], payload)


async def crawl(script: Callable[[ScriptSpider], Awaitable[None]], **settings: Any):
    extension = {"EXTENSIONS": {"webqq_scrapy.qr.webhook.QRWebhook": 510}}
    return await run_script(script, {**extension, "WEBQQ_QR_WEBHOOK_BACKOFF": 0.05, **settings})


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


@deferred_f_from_coro_f
async def test_every_new_qr_and_state_change_is_posted(receiver_factory, caplog) -> None:
    receiver = receiver_factory(http10=True)
    crawler = await crawl(
        login_sequence,
        WEBQQ_QR_WEBHOOK_URL=receiver.url,
        WEBQQ_QR_WEBHOOK_HEADERS={"Authorization": "Bearer SECRETBEARER"},
    )
    events = receiver.events()
    assert [summary(event) for event in events] == EXPECTED
    assert {event["account"] for event in events} == {"alice"}
    for event in events:
        assert set(event) == {
            "event",
            "account",
            "state",
            "generation",
            "png_base64",
            "outcome",
            "sent_at",
        }
        assert datetime.fromisoformat(event["sent_at"]).utcoffset().total_seconds() == 0
    for post in receiver.posts:
        assert post["path"] == f"{SECRET_PATH}?{SECRET_QUERY}"
        assert post["headers"]["Content-Type"] == "application/json"
        assert post["headers"]["Authorization"] == "Bearer SECRETBEARER"
        assert "Cookie" not in post["headers"]
    assert crawler.stats.get_value("webqq/webhook/sent") == 6
    assert crawler.stats.get_value("webqq/webhook/failed") is None
    assert "SECRET" not in log_text(caplog)


@deferred_f_from_coro_f
async def test_failed_deliveries_are_retried_in_order(receiver_factory, caplog) -> None:
    caplog.set_level(logging.INFO)
    receiver = receiver_factory(fail_first=2)
    crawler = await crawl(login_sequence, WEBQQ_QR_WEBHOOK_URL=receiver.url)
    # The first event was refused twice, then accepted; the others waited behind it.
    assert [summary(event) for event in receiver.events()] == EXPECTED
    assert crawler.stats.get_value("webqq/webhook/retries") == 2
    assert crawler.stats.get_value("webqq/webhook/sent") == 6
    # A retry is an INFO line naming the account; nothing was given up: no WARNING.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    retries = [r.getMessage() for r in caplog.records if "was not delivered" in r.getMessage()]
    assert len(retries) == 2
    port = receiver.server.server_port
    assert all(f"http://127.0.0.1:{port}/…" in message for message in retries)
    assert "the qr event of account alice was not delivered" in retries[0]
    assert "HTTP 503, attempt 1 of 4); retrying in 0.05s" in retries[0]
    assert "SECRET" not in log_text(caplog)  # neither the path nor the query of the URL


@deferred_f_from_coro_f
async def test_the_crawl_waits_for_retries_of_its_last_events(receiver_factory) -> None:
    receiver = receiver_factory(fail_first=3)

    async def script(spider: ScriptSpider) -> None:
        spider.qr_state("bob", webqq_signals.QR_FAILED, "refused")
        # the crawl would be idle right now: only the webhook's retries keep it open

    started = time.monotonic()
    crawler = await crawl(script, WEBQQ_QR_WEBHOOK_URL=receiver.url, WEBQQ_QR_WEBHOOK_BACKOFF=0.2)
    assert [(e["account"], e["state"], e["outcome"]) for e in receiver.events()] == [
        ("bob", "failed", "refused")
    ]
    assert len(receiver.posts) == 4
    assert crawler.stats.get_value("webqq/webhook/sent") == 1
    assert time.monotonic() - started >= 0.2 + 0.4 + 0.8


@deferred_f_from_coro_f
async def test_an_unreachable_webhook_is_never_fatal(caplog) -> None:
    caplog.set_level(logging.WARNING)
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}{SECRET_PATH}?{SECRET_QUERY}"

    async def script(spider: ScriptSpider) -> None:
        spider.qr_ready("alice", make_png(PAYLOAD_1), 1)
        spider.qr_state("alice", webqq_signals.QR_DONE, "ok")

    # A backoff far longer than the crawl: an unreachable webhook must not hold it open.
    # Once the crawl is idle, each event gets one last attempt: no backoff is waited out.
    crawler = await crawl(
        script, WEBQQ_QR_WEBHOOK_URL=url, WEBQQ_QR_WEBHOOK_RETRIES=2, WEBQQ_QR_WEBHOOK_BACKOFF=30
    )
    assert (crawler.stats.get_value("webqq/webhook/retries") or 0) <= 1
    assert crawler.stats.get_value("webqq/webhook/failed") == 2
    assert crawler.stats.get_value("webqq/webhook/sent") is None
    # One WARNING per event given up, naming the account and the event (issue 21).
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "the qr event of account alice was not delivered" in warnings[0]
    assert "the state event of account alice was not delivered" in warnings[1]
    assert all("given up" in message for message in warnings)
    assert "ConnectionRefusedError" in warnings[0]
    assert "SECRET" not in log_text(caplog)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@deferred_f_from_coro_f
async def test_a_dropped_connection_at_the_end_gets_one_more_attempt(receiver_factory) -> None:
    # The qr event is refused once (503): during its backoff nothing but the webhook keeps
    # the crawl open. Then the state event's connection is closed without an answer (as a
    # keep-alive connection the receiver had closed is): the webhook was reachable until then,
    # so the event gets its last attempt at once, without the backoff, and is delivered.
    receiver = receiver_factory(fail_first=1, drop=2)

    async def script(spider: ScriptSpider) -> None:
        spider.qr_ready("alice", make_png(PAYLOAD_1), 1)
        spider.qr_state("alice", webqq_signals.QR_DONE, "ok")

    crawler = await crawl(
        script, WEBQQ_QR_WEBHOOK_URL=receiver.url, WEBQQ_QR_WEBHOOK_BACKOFF=0.3, RETRY_ENABLED=False
    )
    assert [summary(event) for event in receiver.events()] == [
        ("qr", "waiting", 1, None, PAYLOAD_1),
        ("state", "done", 1, "ok", None),
    ]
    assert crawler.stats.get_value("webqq/webhook/sent") == 2
    assert crawler.stats.get_value("webqq/webhook/failed") is None


@deferred_f_from_coro_f
async def test_client_errors_are_not_retried(receiver_factory) -> None:
    receiver = receiver_factory(status=404)

    async def script(spider: ScriptSpider) -> None:
        spider.qr_state("alice", webqq_signals.QR_SCANNED)

    crawler = await crawl(script, WEBQQ_QR_WEBHOOK_URL=receiver.url)
    assert len(receiver.posts) == 1
    assert crawler.stats.get_value("webqq/webhook/failed") == 1
    assert crawler.stats.get_value("webqq/webhook/retries") is None


def test_off_by_default_and_safe_in_the_project_settings() -> None:
    crawler = get_crawler(Spider, project_settings())
    assert "webqq_scrapy.qr.webhook.QRWebhook" in crawler.settings.getdict("EXTENSIONS")
    with pytest.raises(NotConfigured):
        QRWebhook.from_crawler(crawler)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEBQQ_QR_WEBHOOK_URL", "ftp://example.com/hook"),
        ("WEBQQ_QR_WEBHOOK_URL", "not a url"),
        ("WEBQQ_QR_WEBHOOK_RETRIES", -1),
        ("WEBQQ_QR_WEBHOOK_RETRIES", "1.5"),
        ("WEBQQ_QR_WEBHOOK_BACKOFF", "soon"),
        ("WEBQQ_QR_WEBHOOK_TIMEOUT", 0),
        ("WEBQQ_QR_WEBHOOK_HEADERS", {"X-Count": 1}),
    ],
)
def test_settings_are_validated(name: str, value: Any) -> None:
    settings = {"WEBQQ_QR_WEBHOOK_URL": "http://127.0.0.1:9/hook", name: value}
    with pytest.raises(SettingError, match=name):
        QRWebhook.from_crawler(get_crawler(Spider, settings))
