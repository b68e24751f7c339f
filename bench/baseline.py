"""A bare-Scrapy baseline for ``python -m bench.login`` (issue 17, point 3).

The same requests in the same chains as ``qrlogin`` — ptqrshow, ptqrlogin polls every
``interval`` seconds until the confirm, check_sig (its 302 read, not followed), getvfwebqq,
login2, get_online_buddies2 — against the same simulator, one cookie jar per account, with
Scrapy's default components only: no project middleware, pipeline, extension, item, state
machine or retry. URLs come from the project's pure ``webqq_scrapy.protocol`` builders, so
the requests are byte for byte the project's. Run by ``bench.login`` with ``scrapy
runspider`` from a directory without ``scrapy.cfg`` (so no project settings), it writes its
CPU seconds and request count (spider open → close), and its own wall (spider open → close,
and → the last login ended ok) as JSON to ``-a out=PATH``.

``bench.login`` runs it tuned (``bench.login.BASELINE_SETTINGS``: the project's concurrency,
the middlewares this flow does not use off, ``CONCURRENT_ITEMS=1``, the project's GC
extension), twice per count: all at once, and with ``-a
admission=SHARE,LAG,LIMIT,RATE,MAX_WAIT`` under the project's admission (its measures and
controllers, ``webqq_scrapy.sources.lag``: the pacing over one login's time or a fixed
rate, slowed while the wait after a confirm is over MAX_WAIT, then the three checks: CPU
share, loop lag, accounts in flight), so that the project's CPU per request is compared
with bare Scrapy doing the same requests in the same rhythm. Its "stored" is the answer of
get_online_buddies2 (it has no pipeline).
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import scrapy
from scrapy.utils.asyncio import sleep

from webqq_scrapy.protocol import web2
from webqq_scrapy.protocol.common import dynamic_referer, hash33, login_page_url, static_referer
from webqq_scrapy.protocol.ptlogin import (
    check_sig_url,
    getvfwebqq_url,
    login2_form,
    login2_url,
    parse_ptuicb,
    ptqrlogin_url,
    ptqrshow_url,
)
from webqq_scrapy.sources.lag import (
    CpuHeadroom,
    FeltWait,
    LoginDuration,
    LoopLag,
    Pacer,
    paced_rate,
)
from webqq_scrapy.spiders.qrlogin import LOGIN_DURATION_PRIOR

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from scrapy.http import Response

SCHEME = "http"  # the simulator is reached as an http proxy, as the project does


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _set_cookie(response: Response, name: str) -> str:
    prefix = f"{name}=".encode()
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(prefix):
            return header[len(prefix) :].split(b";", 1)[0].decode()
    return ""


class BaselineSpider(scrapy.Spider):
    name = "baseline"

    def __init__(
        self,
        accounts_file: str,
        proxy: str,
        out: str,
        interval: str,
        admission: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.accounts = Path(accounts_file).read_text().split()
        self.proxy = urlsplit(proxy)
        self.out = out
        self.interval = float(interval)
        self.opened = (time.time(), _cpu())
        self.ok = 0
        self.last_ok = 0.0  # time.time() of the last login that ended ok
        # -a admission=SHARE,LAG,LIMIT,RATE,MAX_WAIT: the project's admission; "": all at once.
        self.admission = tuple(float(x) for x in admission.split(",")) if admission else ()
        self.in_flight: set[str] = set()
        self.lag = LoopLag()
        self.headroom = CpuHeadroom(
            lambda: len(self.in_flight),
            saturated=lambda: self.lag.value > (self.admission[1] or 0.1),
        )
        self.pacer = Pacer()
        self.felt_wait = FeltWait()
        # As qrlogin measures it: the prior handed over to the measured ones gradually.
        self.login_duration = LoginDuration(LOGIN_DURATION_PRIOR, self.headroom.horizon)
        self.started: dict[str, float] = {}  # account -> time.monotonic() of its first request

    def admission_rate(self) -> float:
        """qrlogin.admission_rate: the fixed rate, else the rate that fills the CPU share
        over one login's time; slowed while the felt wait is over MAX_WAIT."""
        share, _, _, fixed, max_wait = self.admission
        duration = self.login_duration.value(time.monotonic())
        rate = fixed or (self.headroom.rate(share, duration) if share else 0.0)
        if not max_wait or not self.in_flight:
            return rate
        return paced_rate(rate, max_wait, self.felt_wait.value)

    async def pace(self) -> None:
        """qrlogin.pace, the same controllers."""
        max_wait = self.admission[4]
        while True:
            rate = self.admission_rate()
            if not rate and max_wait and self.in_flight and self.felt_wait.value > max_wait:
                await sleep(self.lag.period)
                continue
            delay = self.pacer.wait(time.monotonic(), rate)
            if delay <= 0:
                return
            await sleep(min(delay, self.lag.period * 2))

    async def admit(self) -> None:
        await self.pace()
        share, max_lag, limit = self.admission[:3]
        while self.in_flight and (
            (limit and len(self.in_flight) >= limit)
            or (share and self.headroom.load(len(self.in_flight) + 1) > share)
            or (max_lag and self.lag.value > max_lag)
        ):
            await sleep(self.lag.period)

    def request(self, account: str, url: str, callback: Any, **kwargs: Any) -> scrapy.Request:
        meta = {
            "cookiejar": account,
            "account": account,
            "proxy": f"{self.proxy.scheme}://{quote(account, safe='')}:@{self.proxy.netloc}",
            "dont_redirect": True,
            "handle_httpstatus_list": [302],
            **kwargs.pop("meta", {}),
        }
        return scrapy.Request(
            url, callback, meta=meta, dont_filter=True, errback=self.failed, **kwargs
        )

    def failed(self, failure: Any) -> None:
        account = failure.request.meta["account"]
        self.in_flight.discard(account)
        self.started.pop(account, None)
        self.felt_wait.forget(account)

    async def start(self) -> AsyncIterator[Any]:
        self.opened = (time.time(), _cpu())
        if self.admission:
            self.lag.start()
            self.headroom.start()
        for account in self.accounts:
            if self.admission:
                await self.admit()
            self.in_flight.add(account)
            self.started[account] = time.monotonic()
            yield self.qr(account)

    def qr(self, account: str) -> scrapy.Request:
        url = ptqrshow_url(SCHEME, time.time() % 1)
        headers = {"Referer": login_page_url(SCHEME)}
        return self.request(account, url, self.parse_qr, headers=headers)

    async def parse_qr(self, response: Response) -> AsyncIterator[Any]:
        qrsig = _set_cookie(response, "qrsig")
        yield await self.poll(response.meta["account"], qrsig, time.monotonic())

    async def poll(self, account: str, qrsig: str, started: float) -> scrapy.Request:
        await sleep(self.interval)
        polled = time.monotonic()
        url = ptqrlogin_url(SCHEME, hash33(qrsig), int((polled - started) * 1000))
        return self.request(
            account,
            url,
            self.parse_poll,
            headers={"Referer": login_page_url(SCHEME)},
            cb_kwargs={"qrsig": qrsig, "started": started, "polled": polled},
        )

    async def parse_poll(
        self, response: Response, qrsig: str, started: float, polled: float
    ) -> Any:
        account = response.meta["account"]
        answer = parse_ptuicb(response.text)
        if answer.code == 0:
            self.felt_wait.confirmed(account, polled)
            ptwebqq = _set_cookie(response, "ptwebqq")
            url = check_sig_url(answer.url)
            yield self.request(account, url, self.parse_check_sig, cb_kwargs={"ptwebqq": ptwebqq})
        elif answer.code == 65:
            yield self.qr(account)
        else:
            yield await self.poll(account, qrsig, started)

    def parse_check_sig(self, response: Response, ptwebqq: str) -> Any:
        url = getvfwebqq_url(SCHEME, ptwebqq, int(time.time() * 1000))
        yield self.request(
            response.meta["account"],
            url,
            self.parse_getvfwebqq,
            headers={"Referer": static_referer(SCHEME)},
            cb_kwargs={"ptwebqq": ptwebqq},
        )

    def parse_getvfwebqq(self, response: Response, ptwebqq: str) -> Any:
        vfwebqq = json.loads(response.body)["result"]["vfwebqq"]
        yield scrapy.FormRequest(
            login2_url(SCHEME),
            formdata=login2_form(ptwebqq),
            callback=self.parse_login2,
            meta=self.request(response.meta["account"], login2_url(SCHEME), None).meta,
            dont_filter=True,
            errback=self.failed,
            headers={"Referer": dynamic_referer(SCHEME)},
            cb_kwargs={"vfwebqq": vfwebqq},
        )

    def parse_login2(self, response: Response, vfwebqq: str) -> Any:
        result = json.loads(response.body)["result"]
        call = web2.online_buddies2(
            SCHEME, vfwebqq=vfwebqq, psessionid=result["psessionid"], t_ms=int(time.time() * 1000)
        )
        url, headers = call.url, {"Referer": call.referer}
        yield self.request(response.meta["account"], url, self.parse_buddies, headers=headers)

    def parse_buddies(self, response: Response) -> None:
        account = response.meta["account"]
        self.in_flight.discard(account)
        if json.loads(response.body).get("retcode") == 0:
            self.ok += 1
            self.last_ok = time.time()
            self.felt_wait.stored(account)
            took = time.monotonic() - self.started.pop(account, time.monotonic())
            self.login_duration.ended(took, time.monotonic())
        else:
            self.felt_wait.forget(account)

    def closed(self, reason: str) -> None:
        self.lag.stop()
        self.headroom.stop()
        assert self.crawler.stats is not None
        doc = {
            "reason": reason,
            "ok": self.ok,
            # Its own wall, measured here: spider open → close, and → the last login ended
            # ok (the project's "wall" is spider open → the last credentials stored).
            "wall": time.time() - self.opened[0],
            "wall_to_last_ok": (self.last_ok or time.time()) - self.opened[0],
            "cpu": _cpu() - self.opened[1],
            "requests": self.crawler.stats.get_value("downloader/request_count", 0),
        }
        Path(self.out).write_text(json.dumps(doc))
