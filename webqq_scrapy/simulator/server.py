"""Twisted web glue of the simulator: one port, every host, as a forward proxy or by Host.

``twisted.internet.reactor`` is imported inside functions only: Scrapy installs its
asyncio reactor after this module may have been imported.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from twisted.internet.protocol import connectionDone
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from webqq_scrapy.simulator.endpoints import (
    SEND_STEPS,
    Call,
    Reply,
    is_qq_host,
    route,
    text_reply,
)
from webqq_scrapy.simulator.qzone import qzone_route

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall
    from twisted.python.failure import Failure
    from twisted.web.server import Request

    from webqq_scrapy.simulator import Simulator
    from webqq_scrapy.simulator.state import Session

__all__ = ["SimulatorSite", "build_call"]

FORM_TYPE = "application/x-www-form-urlencoded"
SENT_ANYWAY = (1202, 100100)  # §6.3: send answers whose message may have arrived anyway


def _header(request: Request, name: str) -> str | None:
    values = request.requestHeaders.getRawHeaders(name.encode("ascii"))
    if values is None:
        return None
    return ", ".join(v.decode("latin-1") for v in values)


def _split_host(value: str) -> str:
    """``host:port`` / ``[::1]:port`` → host, lowercased."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def proxy_account(header: str | None) -> str | None:
    """The user name of ``Proxy-Authorization: Basic base64(name:)``: whose phone scans."""
    if not header:
        return None
    scheme, _, data = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(data.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    name = unquote(decoded.partition(":")[0])
    return name or None


def build_call(request: Request) -> Call:
    """Absolute-form (proxy) or origin-form (Host header) request → Call."""
    uri = request.uri.decode("latin-1")
    if uri.lower().startswith(("http://", "https://")):
        parts = urlsplit(uri)
        host = (parts.hostname or "").lower()
        path, query = parts.path or "/", parts.query
    else:
        host = _split_host(_header(request, "host") or "")
        path, _, query = uri.partition("?")
    method = request.method.decode("latin-1").upper()
    form: dict[str, str] = {}
    content_type = (_header(request, "content-type") or "").lower()
    raw = b""
    if method == "POST" and request.content is not None:
        request.content.seek(0)
        raw = request.content.read()
    if method == "POST" and content_type.startswith(FORM_TYPE):
        form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    from webqq_scrapy.simulator.cookies import parse_cookie_header

    address = request.getClientAddress()
    return Call(
        method=method,
        host=host,
        path=path,
        query=dict(parse_qsl(query, keep_blank_values=True)),
        form=form,
        cookies=parse_cookie_header(_header(request, "cookie")),
        referer=_header(request, "referer"),
        account=proxy_account(_header(request, "proxy-authorization")),
        client_ip=getattr(address, "host", "127.0.0.1"),
        body=raw,
        content_type=content_type,
    )


class _Root(Resource):
    isLeaf = True

    def __init__(self, sim: Simulator) -> None:
        super().__init__()
        self.sim = sim

    def render(self, request: Request) -> Any:
        sim = self.sim
        call = build_call(request)
        if call.method == "CONNECT":
            return self._send(request, text_reply(501, "CONNECT is not supported: use http://\n"))
        if not is_qq_host(call.host):
            return self._send(request, sim.control.handle(call))
        step = route(call.host, call.path) or qzone_route(call.host, call.path)
        if step is None:
            return self._send(request, sim.webqq.not_found(call))
        # Cookie scoping is judged by WebQQ's cookie table: not for Qzone's hosts.
        reply = None if step.startswith("qzone_") else sim.webqq.scoping_error(call)
        if reply is not None:
            sim.store.stats.count(step, reply.answer)
            return self._send(request, reply)
        fault = sim.faults.pick(step, call.account) if step in sim.fault_steps else None
        if fault is None:
            return self._answer(request, step, call)
        if fault.delay > 0:
            self._later(request, fault.delay, self._apply_fault, request, step, call, fault)
            return NOT_DONE_YET
        return self._apply_fault(request, step, call, fault)

    def _apply_fault(self, request: Request, step: str, call: Call, fault: Any) -> Any:
        stats = self.sim.store.stats
        if fault.lost:
            # Processed, then the answer is lost on the way back (the server's state moved on).
            # (A poll2 that would be held is simply given up.)
            self.sim.webqq.handle(step, call)
            stats.count(step, "fault_lost")
        if fault.drop or fault.lost:
            if fault.drop:
                stats.count(step, "fault_drop")
            transport = request.channel.transport if request.channel else None
            if transport is not None:
                abort = getattr(transport, "abortConnection", transport.loseConnection)
                abort()
            return NOT_DONE_YET
        if fault.degraded:
            call.degraded = True
            return self._answer(request, step, call)
        if fault.retcode in SENT_ANYWAY and step in SEND_STEPS:
            call.forced_retcode = fault.retcode  # §6.3: delivered, answered 1202 / 100100
            return self._answer(request, step, call)
        if (
            fault.status is None
            and fault.retcode is None
            and not fault.malformed
            and not fault.ratelimit
        ):
            return self._answer(request, step, call)  # delay only
        reply = self.sim.webqq.fault_reply(step, fault)
        stats.count(step, f"fault_{reply.answer}")
        return self._send(request, reply)

    def _answer(self, request: Request, step: str, call: Call) -> Any:
        reply = self.sim.webqq.handle(step, call)
        if reply.waiter is not None and reply.hold > 0:
            _HeldPoll(self, request, step, reply.waiter, reply.hold)
            return NOT_DONE_YET
        self.sim.store.stats.count(step, reply.answer)
        if reply.hold > 0:
            self._later(request, reply.hold, self._send, request, reply)
            return NOT_DONE_YET
        return self._send(request, reply)

    def _later(self, request: Request, seconds: float, fn: Any, *args: Any) -> None:
        from twisted.internet import reactor

        calls = self.sim._delayed

        def fire() -> None:
            calls.discard(delayed)
            if not getattr(request, "_disconnected", False) and not request.finished:
                fn(*args)

        delayed: IDelayedCall = reactor.callLater(seconds, fire)
        calls.add(delayed)

        def gone(_: object) -> None:
            calls.discard(delayed)
            if delayed.active():
                delayed.cancel()

        request.notifyFinish().addBoth(gone)

    def _send(self, request: Request, reply: Reply) -> Any:
        if getattr(request, "_disconnected", False) or request.finished:
            return NOT_DONE_YET
        request.setResponseCode(reply.status)
        headers = request.responseHeaders
        # Only the login server's Server header is recorded (§3.3); no Twisted banner.
        headers.removeHeader("server")
        for name, value in reply.headers:
            headers.addRawHeader(name, value.encode("utf-8"))
        # Delayed answers are written here too, so always finish explicitly (Twisted omits
        # the body of a HEAD answer by itself).
        request.setHeader("Content-Length", str(len(reply.body)))
        request.write(reply.body)
        request.finish()
        return NOT_DONE_YET


class _HeldPoll:
    """A poll2 held open (§5.1) until its session has something or the hold ends."""

    def __init__(self, root: _Root, request: Request, step: str, session: Session, hold: float):
        from twisted.internet import reactor

        self.root, self.request, self.step, self.session = root, request, step, session
        self.done = False
        previous = getattr(session.waiter, "__self__", None)
        if isinstance(previous, _HeldPoll):
            previous.expire()  # one held poll per session: the older one answers now
        session.waiter = self.wake
        root.sim._held.add(self)
        self.timer: IDelayedCall = reactor.callLater(hold, self.expire)
        request.notifyFinish().addBoth(self._gone)

    def wake(self) -> None:
        """Called through ``Session.wake`` (which already unset the waiter)."""
        if self.done:
            return
        reply = self.root.sim.webqq.poll_now(self.session)
        if reply is None:
            self.session.waiter = self.wake  # nothing to deliver after all: keep holding
            return
        self._finish(reply)

    def expire(self) -> None:
        if self.done:
            return
        if self.session.waiter == self.wake:
            self.session.waiter = None
        self._finish(self.root.sim.webqq.poll_timeout(self.session))

    def _finish(self, reply: Reply) -> None:
        self.done = True
        if self.timer.active():
            self.timer.cancel()
        self.root.sim._held.discard(self)
        self.root.sim.store.stats.count(self.step, reply.answer)
        self.root._send(self.request, reply)

    def _gone(self, _: object) -> None:
        if self.done:
            return
        self.done = True
        if self.timer.active():
            self.timer.cancel()
        self.root.sim._held.discard(self)
        if self.session.waiter == self.wake:
            self.session.waiter = None


class _Channel(HTTPChannel):
    """An HTTP/1.1 channel the site can close when the simulator stops."""

    def connectionMade(self) -> None:
        super().connectionMade()
        self.factory.channels.add(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.factory.channels.discard(self)
        super().connectionLost(reason)


class SimulatorSite(Site):
    """The Site of the simulator: silent (no access log: URLs carry secrets)."""

    noisy = False
    protocol = _Channel  # type: ignore[assignment]

    def __init__(self, sim: Simulator) -> None:
        super().__init__(_Root(sim))
        self.channels: set[HTTPChannel] = set()

    def log(self, request: Any) -> None:
        # Secrets (ptsigx, ptwebqq in query strings) never reach a log.
        return

    def close_channels(self) -> None:
        for channel in list(self.channels):
            if channel.transport is not None:
                channel.transport.loseConnection()
