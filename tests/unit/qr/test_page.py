"""The QR web page, served during a real crawl and fetched over loopback HTTP and in Chromium.

A tiny spider plays the qrlogin spider's part: it sends ``qr_ready`` / ``qr_state`` in the
order a real login does (QR 1, waiting, expiry and QR 2, scanned, done) and, between the
signals, the test looks at the page the way a person would.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest
import segno
import zxingcpp
from PIL import Image
from scrapy import Spider
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import run_in_thread, sleep
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from tests.scripted import ScriptSpider as BaseScriptSpider
from tests.scripted import run_script
from tests.settings import project_settings
from webqq_scrapy import signals as webqq_signals
from webqq_scrapy.config import SettingError
from webqq_scrapy.qr.page import QRWebPage

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

PAYLOAD_1 = "http://127.0.0.1:8000/phone/qr/first-qr-1111"
PAYLOAD_2 = "http://127.0.0.1:8000/phone/qr/second-qr-2222"
PAYLOAD_BOB = "http://127.0.0.1:8000/phone/qr/bob-qr-3333"
SETTINGS = {
    "WEBQQ_QR_WEB_ENABLED": True,
    "WEBQQ_QR_WEB_GRACE": 0,  # the server stops with the crawl, unless a test says otherwise
    "EXTENSIONS": {"webqq_scrapy.qr.page.QRWebPage": 500},
}


def make_png(payload: str, scale: int = 5, border: int = 4) -> bytes:
    out = io.BytesIO()
    segno.make(payload, error="M", micro=False).save(out, kind="png", scale=scale, border=border)
    return out.getvalue()


def decode(png: bytes) -> list[str]:
    return [code.text for code in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


class ScriptSpider(BaseScriptSpider):
    @property
    def page(self) -> QRWebPage:
        return next(e for e in self.crawler.extensions.middlewares if isinstance(e, QRWebPage))


async def run(script: Callable[[ScriptSpider], Awaitable[None]], **settings: Any):
    return await run_script(script, {**SETTINGS, **settings}, ScriptSpider)


def fetch_sync(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


async def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    """A real HTTP GET over loopback, in a thread so the crawl keeps serving meanwhile."""
    return await run_in_thread(fetch_sync, url)


async def state_of(page_url: str) -> dict[str, dict[str, Any]]:
    status, headers, body = await fetch(page_url + "state.json")
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    return {entry["account"]: entry for entry in json.loads(body)["accounts"]}


async def image_payloads(page_url: str, entry: dict[str, Any]) -> list[str]:
    status, headers, body = await fetch(page_url + entry["image"])
    assert status == 200
    assert headers["Content-Type"] == "image/png"
    assert headers["Cache-Control"] == "no-store"
    return decode(body)


# --- a crawl with the page -------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_page_follows_the_login_of_each_account(caplog) -> None:
    caplog.set_level(logging.INFO)
    png_1, png_2, png_bob = make_png(PAYLOAD_1), make_png(PAYLOAD_2), make_png(PAYLOAD_BOB, 3, 2)
    seen: dict[str, Any] = {}

    async def script(spider: ScriptSpider) -> None:
        url = spider.page.url
        seen["url"] = url
        assert url.startswith("http://127.0.0.1:")
        status, headers, body = await fetch(url)
        assert status == 200
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert "No QR code yet" in body.decode()

        spider.qr_ready("alice", png_1, 1)
        spider.qr_state("alice", webqq_signals.QR_WAITING)
        spider.qr_ready("<b>bob</b>", png_bob, 1)
        # carol waits for admission (WEBQQ_MAX_ACCOUNTS_IN_FLIGHT): listed, no QR yet.
        spider.qr_state("carol", webqq_signals.QR_QUEUED)
        await sleep(0.05)
        accounts = await state_of(url)
        assert accounts["carol"]["state"] == "queued"
        assert accounts["carol"]["image"] is None
        assert accounts["carol"]["text"].startswith("queued")
        assert accounts["alice"]["state"] == "waiting"
        assert accounts["alice"]["generation"] == 1
        assert await image_payloads(url, accounts["alice"]) == [PAYLOAD_1]
        assert await image_payloads(url, accounts["<b>bob</b>"]) == [PAYLOAD_BOB]
        html = (await fetch(url))[2].decode()
        assert f'src="{accounts["alice"]["image"]}"' in html
        assert "&lt;b&gt;bob&lt;/b&gt;" in html and "<b>bob</b>" not in html
        old_image = accounts["alice"]["image"]

        # The QR expired; the spider fetched a new one.
        await sleep(0.05)
        spider.qr_ready("alice", png_2, 2)
        spider.qr_state("alice", webqq_signals.QR_WAITING)
        accounts = await state_of(url)
        assert accounts["alice"]["generation"] == 2
        assert accounts["alice"]["image"] != old_image  # a new URL: no cached old image
        assert await image_payloads(url, accounts["alice"]) == [PAYLOAD_2]
        assert (await fetch(url + old_image))[0] == 404

        spider.qr_state("alice", webqq_signals.QR_SCANNED)
        accounts = await state_of(url)
        assert accounts["alice"]["state"] == "scanned"
        assert "confirm the login on the phone" in accounts["alice"]["text"]

        await sleep(0.05)
        spider.qr_state("alice", webqq_signals.QR_DONE, "ok")
        spider.qr_state("<b>bob</b>", webqq_signals.QR_FAILED, "expired")
        accounts = await state_of(url)
        assert (accounts["alice"]["state"], accounts["alice"]["outcome"]) == ("done", "ok")
        assert accounts["alice"]["image"] is None  # the PNG is forgotten
        assert (await fetch(url + "qr/1/2.png"))[0] == 404
        assert accounts["<b>bob</b>"]["text"] == "failed (expired)"
        html = (await fetch(url))[2].decode()
        assert "done (ok)" in html and "failed (expired)" in html and "<img" not in html
        seen["port"] = spider.page.listening.getHost().port

    crawler = await run(script)
    assert crawler.stats.get_value("webqq/qr_web/requests") >= 10
    # The server is gone with the crawl.
    with pytest.raises(urllib.error.URLError):
        fetch_sync(seen["url"])
    # The URL (with its token) is logged at INFO; no QR content ever is.
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(seen["url"] in message for message in infos)
    log_text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (PAYLOAD_1, PAYLOAD_2, base64.b64encode(png_1).decode()[:40]):
        assert secret not in log_text


@deferred_f_from_coro_f
async def test_token_protection() -> None:
    png = make_png(PAYLOAD_1)

    async def script(spider: ScriptSpider) -> None:
        url = spider.page.url
        token = spider.page.token
        assert len(token) >= 40  # token_urlsafe(32): 256 random bits
        base = url[: -len(token) - 1]
        spider.qr_ready("alice", png, 1)
        assert (await fetch(url))[0] == 200
        assert (await fetch(url + "qr/1/1.png"))[0] == 200
        wrong = "x" + token[1:]
        for path in (
            "",
            "state.json",
            "qr/1/1.png",
            f"{wrong}/",
            f"{wrong}/state.json",
            f"{wrong}/qr/1/1.png",
            f"{token[:-1]}/",
            f"{token}x/",
            f"{token}/../{token}/",
            f"{token}/nothing",
            f"{token}/qr/2/1.png",
            f"{token}/qr/1/7.png",
        ):
            status, headers, body = await fetch(base + path)
            assert status == 404, path
            assert b"QR" not in body and b"alice" not in body
            assert headers["Cache-Control"] == "no-store"
        status, _, _ = await fetch(base + token)  # no slash: sent to the page
        assert status == 200
        # What a browser asks for by itself is a 404, not a denied request (issue 21).
        for path in ("favicon.ico", "apple-touch-icon.png"):
            assert (await fetch(base + path))[0] == 404

    crawler = await run(script)
    # The paths above without the token or with a wrong one, not the two icons.
    assert crawler.stats.get_value("webqq/qr_web/denied") == 8


@deferred_f_from_coro_f
async def test_a_fixed_port_and_the_security_headers() -> None:
    import socket

    with socket.socket() as probe:  # a port that is free now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def script(spider: ScriptSpider) -> None:
        assert spider.page.url.startswith(f"http://127.0.0.1:{port}/")
        _, headers, _ = await fetch(spider.page.url)
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"

    await run(script, WEBQQ_QR_WEB_PORT=port)


def test_off_by_default_and_safe_in_the_project_settings() -> None:
    crawler = get_crawler(Spider, project_settings())
    assert "webqq_scrapy.qr.page.QRWebPage" in crawler.settings.getdict("EXTENSIONS")
    with pytest.raises(NotConfigured):
        QRWebPage.from_crawler(crawler)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEBQQ_QR_WEB_PORT", "http"),
        ("WEBQQ_QR_WEB_PORT", 70000),
        ("WEBQQ_QR_WEB_PORT", -1),
        ("WEBQQ_QR_WEB_HOST", " "),
        ("WEBQQ_QR_WEB_GRACE", -1),
        ("WEBQQ_QR_WEB_GRACE", "soon"),
    ],
)
def test_settings_are_validated(name: str, value: Any) -> None:
    crawler = get_crawler(Spider, {"WEBQQ_QR_WEB_ENABLED": True, name: value})
    with pytest.raises(SettingError, match=name):
        QRWebPage.from_crawler(crawler)


# --- a real browser --------------------------------------------------------------------------


def chromium_or_skip() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        reason = "chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("CI") == "1":
            pytest.fail(f"CI=1 but {reason}")
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    return path


class Chromium:
    """Headless Chromium driven through the DevTools protocol over --remote-debugging-pipe
    (JSON messages separated by NUL on file descriptors 3 and 4: no websocket library)."""

    def __init__(self, executable: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="webqq-chromium-")
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()
        command = [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1200,900",
            f"--user-data-dir={self.profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # A tiny launcher puts the pipes on fds 3 and 4 (no preexec_fn: the crawl has
        # threads), from copies numbered 10 and up that cannot be 3 or 4 themselves.
        child_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        child_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        for fd in (to_browser_r, from_browser_w):
            os.close(fd)
        launcher = (
            "import os, sys; "
            f"os.dup2({child_r}, 3); os.dup2({child_w}, 4); "
            f"os.close({child_r}); os.close({child_w}); "
            "os.execv(sys.argv[1], sys.argv[1:])"
        )
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", launcher, *command],
                pass_fds=(child_r, child_w),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        finally:
            os.close(child_r)
            os.close(child_w)
        self.buffer = b""
        self.next_id = 0
        self.session: str | None = None

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self.buffer:
                chunk = os.read(self.from_browser, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]

    def open(self, url: str) -> None:
        target = self.call("Target.createTarget", url=url)["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", self.session, expression=expression, returnByValue=True
        )
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting in the browser for: {expression}")

    def screenshot(self) -> bytes:
        data = self.call("Page.captureScreenshot", self.session, format="png")["data"]
        return base64.b64decode(data)

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            self.call("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.to_browser)
        os.close(self.from_browser)
        shutil.rmtree(self.profile, ignore_errors=True)


# Every image on the page has loaded (and there is at least one).
IMAGES_LOADED = (
    "document.images.length > 0 && "
    "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
)


@deferred_f_from_coro_f
async def test_in_headless_chromium() -> None:
    executable = chromium_or_skip()
    png_1, png_2 = make_png(PAYLOAD_1), make_png(PAYLOAD_2)

    async def script(spider: ScriptSpider) -> None:
        browser = await run_in_thread(Chromium, executable)
        try:
            spider.qr_ready("alice", png_1, 1)
            spider.qr_state("alice", webqq_signals.QR_WAITING)
            await run_in_thread(browser.open, spider.page.url)
            await run_in_thread(browser.wait_for, IMAGES_LOADED)
            shot = await run_in_thread(browser.screenshot)
            assert decode(shot) == [PAYLOAD_1]

            # Expiry: the open page swaps in the new QR by itself (its JS poll).
            spider.qr_ready("alice", png_2, 2)
            spider.qr_state("alice", webqq_signals.QR_WAITING)
            await run_in_thread(
                browser.wait_for,
                f"document.querySelector('img').src.endsWith('/2.png') && {IMAGES_LOADED}",
            )
            shot = await run_in_thread(browser.screenshot)
            assert decode(shot) == [PAYLOAD_2]

            spider.qr_state("alice", webqq_signals.QR_SCANNED)
            await run_in_thread(browser.wait_for, "document.body.innerText.includes('scanned')")
            spider.qr_state("alice", webqq_signals.QR_DONE, "ok")
            await run_in_thread(browser.wait_for, "document.body.innerText.includes('done (ok)')")
            assert await run_in_thread(browser.evaluate, "document.images.length") == 0
            assert decode(await run_in_thread(browser.screenshot)) == []
        finally:
            await run_in_thread(browser.close)

    await run(script)


PROGRESS = "document.querySelector('#account-1 .progress').textContent"


@deferred_f_from_coro_f
async def test_countdown_and_the_final_states_after_the_crawl_in_headless_chromium() -> None:
    executable = chromium_or_skip()
    browser = await run_in_thread(Chromium, executable)
    seen: dict[str, Any] = {}

    async def script(spider: ScriptSpider) -> None:
        spider.qr_ready("alice", make_png(PAYLOAD_1), 2, expires_in=90, refresh=1, max_refreshes=5)
        spider.qr_ready("bob", make_png(PAYLOAD_BOB), 1, expires_in=90, refresh=0, max_refreshes=5)
        seen["url"] = spider.page.url
        await run_in_thread(browser.open, spider.page.url)
        await run_in_thread(browser.wait_for, IMAGES_LOADED)
        # The QR's countdown goes down by itself, with the refresh count beside it.
        first = await run_in_thread(browser.evaluate, PROGRESS)
        assert re.fullmatch(r"QR expires in (\d+) s \u00b7 refresh 1/5", first), first
        start = int(re.findall(r"\d+", first)[0])
        await run_in_thread(
            browser.wait_for, f"parseInt({PROGRESS}.match(/\\d+/)[0]) < {start}", 10
        )
        spider.qr_state("bob", webqq_signals.QR_FAILED, "refused")
        await run_in_thread(browser.wait_for, "document.body.innerText.includes('refused')")
        # The crawl ends now, alice's QR still waiting: WEBQQ_QR_WEB_GRACE keeps the page up.

    try:
        await run(script, WEBQQ_QR_WEB_GRACE=4)
        # The server is gone, yet the open page shows how every login ended, no dead QR.
        with pytest.raises(urllib.error.URLError):
            fetch_sync(seen["url"])
        text = await run_in_thread(browser.evaluate, "document.body.innerText")
        assert "The crawl has ended" in text
        assert "not finished: the crawl ended" in text  # alice
        assert "failed (refused)" in text  # bob
        assert "QR expires" not in text and "waiting" not in text
        assert await run_in_thread(browser.evaluate, "document.images.length") == 0
        assert decode(await run_in_thread(browser.screenshot)) == []
    finally:
        await run_in_thread(browser.close)


@deferred_f_from_coro_f
async def test_a_busy_port_is_reported_not_fatal(caplog) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        async def script(spider: ScriptSpider) -> None:
            assert spider.page.url is None
            spider.qr_ready("alice", make_png(PAYLOAD_1), 1)  # still fine without a server

        await run(script, WEBQQ_QR_WEB_PORT=port)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert f"cannot listen on 127.0.0.1:{port} (WEBQQ_QR_WEB_HOST, WEBQQ_QR_WEB_PORT)" in errors[0]
