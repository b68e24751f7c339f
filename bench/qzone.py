"""Qzone benchmark: ``qzone_posts`` over N accounts of M posts each, stored in SQLite.

Run from the repository root::

    python -m bench.qzone --accounts 50 --posts 200

What it does: starts the simulator CLI on 127.0.0.1 (instant phone, ``--qzone-posts M``, no
friends), logs every account in to Qzone with ``scrapy crawl qrlogin -a app=qzone``, then
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
  (accounts − 1); ``CPU s``: the crawl process's CPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.login import PROBE, ROOT, SimulatorProcess, _env, machine
from bench.messages import _crawl

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


def _login(sim: SimulatorProcess, tmp: Path, names: list[str]) -> None:
    (tmp / "accounts.txt").write_text("\n".join(names) + "\n")
    command = _crawl(
        "qrlogin",
        sim.url,
        tmp,
        "-a",
        "app=qzone",
        "-a",
        f"accounts_file={tmp / 'accounts.txt'}",
        log="login.log",
    )
    proc = subprocess.run(
        command, cwd=ROOT, env=_env(tmp), capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"login crawl exited {proc.returncode}; log: {tmp / 'login.log'}")
    # The sessions, in one store per measured crawl.
    for db in ("one.sqlite3", "all.sqlite3"):
        shutil.copy(tmp / "store.sqlite3", tmp / db)


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
