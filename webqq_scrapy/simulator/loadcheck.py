"""Load check: N concurrent clients log in against a CLI simulator; prints figures.

``python -m webqq_scrapy.simulator.loadcheck --clients 2000`` starts
``python -m webqq_scrapy.simulator`` in poll-count mode, opens N keep-alive connections
(absolute-form requests, one account each), fetches a QR on each and polls ptqrlogin every
``--interval`` s until code 0 (and then check_sig). It reports how many finished, errors,
wall time, request rate, latency percentiles and the server's peak RSS. No assertions: a
benchmark-style tool (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from webqq_scrapy import protocol

_QRSIG = re.compile(rb"qrsig=([A-Za-z0-9*-]+)")
_CODE = re.compile(rb"ptuiCB\('(\d+)'")
_URL = re.compile(rb"ptuiCB\('0','0','([^']*)'")


def _found(pattern: re.Pattern[bytes], data: bytes) -> bytes:
    """The first group of ``pattern`` in ``data``; an answer without it is a surprise."""
    match = pattern.search(data)
    if match is None:
        raise RuntimeError(f"unexpected answer: {data[:80]!r}")
    return match.group(1)


class _Client:
    def __init__(self, host: str, port: int, account: str) -> None:
        self.host, self.port = host, port
        token = base64.b64encode(f"{account}:".encode()).decode()
        self.auth = f"Proxy-Authorization: Basic {token}\r\n"
        self.cookies: dict[str, str] = {}
        self.latencies: list[float] = []

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def get(self, url: str) -> tuple[int, list[bytes], bytes]:
        host = urlsplit(url).hostname
        # qrsig belongs to ptlogin2.qq.com only (the simulator rejects it elsewhere).
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if not (host or "").endswith("ptlogin2.qq.com"):
            cookie = ""
        head = (
            f"GET {url} HTTP/1.1\r\nHost: {host}\r\n{self.auth}"
            + (f"Cookie: {cookie}\r\n" if cookie else "")
            + "\r\n"
        )
        start = time.monotonic()
        self.writer.write(head.encode())
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        set_cookies = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
            elif name.lower() == b"set-cookie":
                set_cookies.append(value.strip())
        body = await self.reader.readexactly(length)
        self.latencies.append(time.monotonic() - start)
        return status, set_cookies, body

    async def login(self, interval: float, deadline: float) -> int:
        """Requests made; raises on any protocol surprise."""
        requests = 1
        _, set_cookies, _ = await self.get(protocol.ptqrshow_url("http", 0.5))
        self.cookies["qrsig"] = _found(_QRSIG, b"".join(set_cookies)).decode()
        token = protocol.hash33(self.cookies["qrsig"])
        while time.monotonic() < deadline:
            await asyncio.sleep(interval)
            _, _, body = await self.get(protocol.ptqrlogin_url("http", token, 1000))
            requests += 1
            code = int(_found(_CODE, body))
            if code == protocol.QR_OK:
                status, _, _ = await self.get(_found(_URL, body).decode())
                if status != 302:
                    raise RuntimeError(f"check_sig answered {status}")
                return requests + 1
            if code not in (protocol.QR_WAITING, protocol.QR_SCANNED):
                raise RuntimeError(f"unexpected ptuiCB code {code}")
        raise TimeoutError("no code 0 before the deadline")


def _rss_kb(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"VmHWM:\s+(\d+)", text)
    return int(match.group(1)) if match else 0


async def run(url: str, clients: int, interval: float, timeout: float) -> dict[str, float | str]:
    parts = urlsplit(url)
    pool = [_Client(parts.hostname or "", parts.port or 80, f"load{i}") for i in range(clients)]
    start = time.monotonic()
    opened = await asyncio.gather(*(c.open() for c in pool), return_exceptions=True)
    connect_errors = sum(isinstance(r, BaseException) for r in opened)
    connected = [c for c, r in zip(pool, opened, strict=True) if not isinstance(r, BaseException)]
    deadline = time.monotonic() + timeout
    results = await asyncio.gather(
        *(c.login(interval, deadline) for c in connected), return_exceptions=True
    )
    wall = time.monotonic() - start
    for c in connected:
        c.writer.close()
    errors = [r for r in results if isinstance(r, BaseException)]
    requests = sum(r for r in results if isinstance(r, int))
    latencies = sorted(lat for c in connected for lat in c.latencies)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0.0

    figures: dict[str, float | str] = {
        "clients": clients,
        "connected": len(connected),
        "connect_errors": connect_errors,
        "logged_in": len(results) - len(errors),
        "errors": len(errors),
        "first_error": repr(errors[0]) if errors else "",
        "requests": requests,
        "wall_s": round(wall, 2),
        "req_per_s": round(requests / wall, 1) if wall else 0.0,
        "latency_p50_ms": round(pct(0.5) * 1000, 1),
        "latency_p99_ms": round(pct(0.99) * 1000, 1),
    }
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webqq_scrapy.simulator.loadcheck")
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    parser.add_argument("--polls", type=int, default=5, help="code 0 at this poll")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--url", help="use a running simulator instead of starting one")
    args = parser.parse_args(argv)
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    proc = None
    url = args.url
    if url is None:
        scan = max(1, args.polls // 2)
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "webqq_scrapy.simulator", "--port", "0"),
                *("--scan-after-polls", str(scan)),
                *("--confirm-after-polls", str(args.polls - scan)),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        url = "http://" + proc.stdout.readline().split("http://", 1)[1].strip()
    try:
        figures = asyncio.run(run(url, args.clients, args.interval, args.timeout))
        if proc is not None:
            figures["server_peak_rss_mb"] = round(_rss_kb(proc.pid) / 1024, 1)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
    for key, value in figures.items():
        print(f"{key}: {value}")
    return 0 if figures["logged_in"] == args.clients else 1


if __name__ == "__main__":
    sys.exit(main())
