"""Qzone benchmark: ``qzone_posts`` over N accounts of M posts each, stored in SQLite.

Run from the repository root::

    python -m bench.qzone --accounts 50 --posts 200

What it does: starts the simulator CLI on 127.0.0.1 (instant phone, ``--qzone-posts M``, no
friends), logs every account in to Qzone (the QR login of app ``qzone`` walked with urllib,
each session stored as the account's ``qzone`` credentials: the login is not measured), then
runs ``scrapy crawl qzone_posts`` twice on every account (SQLite store in a temporary
directory, removed at the end): a first crawl that reads and stores everything, and a second
one that finds everything stored unchanged (the nightly case). A 1-account crawl run the same
way first gives the baseline memory. Everything stops by itself.

Figures (printed), per crawl, measured by ``bench/probe.py`` inside the crawl process:

* ``posts``, ``comments``: records yielded (and stored); ``pages``: posts and comment pages
  read;
* ``wall s``: spider opened → closed; ``posts/s``: posts read per second of it (the second
  crawl reads only the newest ``WEBQQ_QZONE_RECHECK_POSTS`` per owner);
* ``peak MB``: the crawl's peak RSS; ``KB/account``: (peak − the 1-account crawl's peak) /
  (accounts − 1), within the noise of RSS (a few hundred KB: it can come out below 0 when
  the crawl holds little); ``CPU s``: the crawl process's CPU.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.login import PROBE, ROOT, SimulatorProcess, _env, machine
from bench.messages import _crawl
from webqq_scrapy.items import utc_timestamp
from webqq_scrapy.protocol import hash33, parse_ptuicb
from webqq_scrapy.protocol.apps import APPS

MB = 1024 * 1024


@dataclass
class Run:
    label: str
    accounts: int
    ok: int
    posts_read: int
    posts: int
    comments: int
    pages: int
    wall: float
    peak: int
    cpu: float

    def row(self, baseline: int) -> str:
        per = (self.peak - baseline) / max(1, self.accounts - 1) / 1024
        rate = self.posts_read / self.wall if self.wall else float("nan")
        return (
            f"{self.label:>8}{self.accounts:>6}{self.ok:>6}{self.posts:>8}{self.comments:>10}"
            f"{self.pages:>7}{self.wall:>8.1f}{rate:>9.0f}{self.peak / MB:>9.1f}"
            f"{per:>12.0f}{self.cpu:>7.1f}"
        )


HEAD = (
    f"{'crawl':>8}{'accts':>6}{'ok':>6}{'posts':>8}{'comments':>10}{'pages':>7}{'wall s':>8}"
    f"{'posts/s':>9}{'peak MB':>9}{'KB/account':>12}{'CPU s':>7}"
)


def _run(sim: SimulatorProcess, tmp: Path, names: list[str], label: str, db: str) -> Run:
    from webqq_scrapy import settings as project  # the project's pipelines, plus the probe

    (tmp / f"{label}.txt").write_text("\n".join(names) + "\n")
    probe = tmp / f"probe-{label}.json"
    command = _crawl(
        "qzone_posts",
        sim.url,
        tmp,
        "-a",
        f"accounts_file={tmp / f'{label}.txt'}",
        log=f"{label}.log",
    )
    extra = {
        "WEBQQ_DATABASE_URL": f"sqlite:///{tmp / db}",
        "ITEM_PIPELINES": json.dumps({**project.ITEM_PIPELINES, PROBE: 900}),
        "BENCH_PROBE_PATH": probe,
    }
    for name, value in extra.items():
        command += ["-s", f"{name}={value}"]
    subprocess.run(command, cwd=ROOT, env=_env(tmp), capture_output=True, check=True, timeout=3600)
    doc = json.loads(probe.read_text())
    stats = doc["stats"]
    return Run(
        label=label,
        accounts=len(names),
        ok=int(stats.get("webqq/outcome/ok", 0)),
        posts_read=int(stats.get("webqq/qzone/posts_read", 0)),
        posts=int(stats.get("webqq/qzone/posts", 0)),
        comments=int(stats.get("webqq/qzone/comments", 0)),
        pages=int(stats.get("webqq/qzone/pages", 0))
        + int(stats.get("webqq/qzone/detail_pages", 0)),
        wall=doc["closed"]["time"] - doc["opened"]["time"],
        peak=doc["maxrss"],
        cpu=doc["closed"]["cpu"] - doc["opened"]["cpu"],
    )


def _qzone_login(sim_url: str, account: str) -> dict[str, Any]:
    """The QR login of app ``qzone`` through the simulator (its phone confirms at once): the
    account's ``qzone`` credentials record."""
    jar = CookieJar()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # check_sig's 302 carries the cookies; not followed

    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": sim_url}),
        urllib.request.HTTPCookieProcessor(jar),
        NoRedirect(),
    )
    token = base64.b64encode(f"{account}:".encode()).decode()
    headers = {"Proxy-Authorization": f"Basic {token}"}

    def get(url: str) -> bytes:
        request = urllib.request.Request(url, headers=headers)
        try:
            with opener.open(request, timeout=30) as answer:
                return bytes(answer.read())
        except urllib.error.HTTPError as exc:
            if exc.code != 302:
                raise
            return b""

    app = APPS["qzone"]
    show = {"appid": app.appid, "e": 2, "l": "M", "s": 3, "d": 72, "v": 4, "t": "0.5",
            "daid": app.daid, "pt_3rd_aid": 0}  # fmt: skip
    get("http://ssl.ptlogin2.qq.com/ptqrshow?" + urlencode(show))
    qrsig = next(c.value for c in jar if c.name == "qrsig")
    poll = {"u1": app.s_url, "ptqrtoken": hash33(qrsig), "ptredirect": 0, "h": 1, "t": 1,
            "g": 1, "from_ui": 1, "ptlang": 2052, "js_type": 1, "pt_uistyle": 40,
            "aid": app.appid, "daid": app.daid}  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        cb = parse_ptuicb(get("http://ssl.ptlogin2.qq.com/ptqrlogin?" + urlencode(poll)).decode())
        if cb.code == 0:
            break
        if cb.code not in (66, 67) or time.monotonic() > deadline:
            raise RuntimeError(f"{account}: the Qzone login answered {cb.code}")
        time.sleep(0.05)
    get(cb.url)
    cookies = [
        {"name": c.name, "value": c.value, "domain": c.domain, "path": c.path,
         "expires": c.expires}
        for c in jar
    ]  # fmt: skip
    uin = int(next(c.value for c in jar if c.name == "uin").lstrip("o"))
    return {
        "account": account, "app": "qzone", "uin": uin, "nickname": cb.nickname,
        "cookies": cookies, "ptwebqq": "", "vfwebqq": "", "psessionid": "", "clientid": 0,
        "obtained_at": utc_timestamp(), "expires_at": utc_timestamp(), "target": sim_url,
    }  # fmt: skip


def _login(sim: SimulatorProcess, tmp: Path, names: list[str]) -> None:
    """Every account's Qzone session, in one store per measured crawl."""
    from webqq_scrapy.items import Credentials
    from webqq_scrapy.store.database import DatabaseStore
    from webqq_scrapy.store.writer import keyed_record

    records = [Credentials(**_qzone_login(sim.url, name)) for name in names]
    for db, accounts in (("one.sqlite3", records[:1]), ("all.sqlite3", records)):
        store = DatabaseStore(f"sqlite:///{tmp / db}")
        try:
            store.write(dict(filter(None, (keyed_record(r, "bench") for r in accounts))))
        finally:
            store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.qzone", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--accounts", type=int, default=50, help="accounts (50)")
    parser.add_argument("--posts", type=int, default=200, help="own posts of each (200)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.accounts < 2:
        parser.error("--accounts must be at least 2 (one is the baseline)")
    tmp = Path(tempfile.mkdtemp(prefix="webqq-bench-qzone-"))
    names = [f"bench{i:05d}" for i in range(args.accounts)]
    sim_args = [
        "--host", "127.0.0.1", "--phone", "auto", "--scan-after-polls", "1",
        "--confirm-after-polls", "1", "--qr-lifetime", "600",
        "--qzone-posts", str(args.posts), "--qzone-friends", "0",
    ]  # fmt: skip
    print(f"machine: {machine()}")
    print(f"{args.accounts} accounts × {args.posts} posts (comments as the simulator's world)")
    sim = SimulatorProcess(tmp, sim_args)
    try:
        _login(sim, tmp, names)
        print(HEAD, flush=True)
        base = _run(sim, tmp, names[:1], "one", "one.sqlite3")
        print(base.row(base.peak), flush=True)
        for label in ("first", "again"):
            print(_run(sim, tmp, names, label, "all.sqlite3").row(base.peak), flush=True)
    finally:
        sim.stop()
        if args.keep:
            print(f"  (kept {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
