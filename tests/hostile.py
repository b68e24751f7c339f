"""A small hostile HTTP server on 127.0.0.1 for the user-level tests of hostile answers.

:class:`HostileProxy` is what ``WEBQQ_TARGET=http://127.0.0.1:PORT`` points the qrlogin
spider at: an HTTP forward proxy (a thread server of the standard library) that forwards
every request to an upstream simulator, except the ones a test answers itself. A rule is
chosen by the request's URL path (``/ptqrlogin``, ``/check_sig``, …) and gets a
:class:`Call`; it returns an :class:`Answer`, or :data:`NEVER` to hold the connection open
without answering until the server stops. Every request received, proxied or not, is
recorded (``calls``), so a test can say where a token went.
"""

from __future__ import annotations

import base64
import http.client
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


@dataclass
class Answer:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | Iterable[bytes] = b""
    length: int | None = None  # Content-Length when the body is an iterable of chunks


NEVER = object()  # a rule's return value: never answer
CLOSE = object()  # a rule's return value: close the connection without an answer


@dataclass
class Call:
    """One request the server received."""

    method: str
    target: str  # the request line's target: an absolute URL when proxied
    headers: dict[str, str]
    body: bytes
    server: HostileProxy

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def account(self) -> str | None:
        """The account of a proxied request (the user part of the proxy URL)."""
        auth = self.headers.get("proxy-authorization", "")
        if not auth.startswith("Basic "):
            return None
        return base64.b64decode(auth[6:]).decode("utf-8").split(":", 1)[0]

    def forward(self) -> Answer:
        """The upstream simulator's answer to this request."""
        upstream = urlsplit(self.server.upstream)
        conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k not in HOP_BY_HOP}
            conn.request(self.method, self.target, body=self.body or None, headers=headers)
            resp = conn.getresponse()
            kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
            return Answer(resp.status, kept, resp.read())
        finally:
            conn.close()


class HostileProxy:
    """Forward to ``upstream``; answer the paths in ``rules`` as the rule says (None:
    forward after all)."""

    def __init__(self, upstream: str, rules: dict[str, Callable[[Call], object]]) -> None:
        self.upstream = upstream
        self.rules = rules
        self.calls: list[Call] = []
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                call = Call(
                    method=self.command,
                    target=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                    server=server,
                )
                server.calls.append(call)
                rule = server.rules.get(call.path)
                answer = rule(call) if rule is not None else None
                if answer is NEVER:
                    server.stopping.wait()
                    self.close_connection = True
                    return
                if answer is CLOSE:
                    self.close_connection = True
                    return
                if answer is None:
                    answer = call.forward()
                assert isinstance(answer, Answer)
                self._send(answer)

            def _send(self, answer: Answer) -> None:
                body = answer.body
                self.send_response(answer.status)
                for name, value in answer.headers:
                    self.send_header(name, value)
                size = len(body) if isinstance(body, bytes) else answer.length
                if size is not None:
                    self.send_header("Content-Length", str(size))
                else:
                    self.close_connection = True
                self.end_headers()
                try:
                    for chunk in [body] if isinstance(body, bytes) else body:
                        if server.stopping.is_set():
                            break
                        self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up on a hostile answer

            do_GET = do_POST = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.port = self.httpd.server_port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)

    def calls_to(self, path: str) -> list[Call]:
        return [call for call in self.calls if call.path == path]
