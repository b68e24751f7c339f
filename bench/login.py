"""Login benchmark: the simulator in one process, ``scrapy crawl`` in another, figures printed.

Run from the repository root::

    python -m bench.login                       # every target of issue 25 (see below)
    python -m bench.login --accounts 1000 --limits 0,100,200,400 --instant 2000
    python -m bench.login --accounts 1000 --waves 10000/1000

For each account count, a fresh simulator is started (``python -m webqq_scrapy.simulator``,
its phone scanning each QR at the ``--scan-after-polls``-th ptqrlogin poll and confirming
``--confirm-after-polls`` polls later), then ``scrapy crawl qrlogin`` logs every account in,
storing the credentials in a SQLite file in a temporary directory. ``bench/probe.py`` runs
inside the crawl and records when each account started, finished and was stored, and
samples RSS, CPU and the accounts in flight.

Figures (one row per account count):

* ``wall``: from the spider opening to the last credentials stored (the process also needs
  about a second to import and start, printed as ``startup``);
* ``floor``: the waits the protocol imposes on one account, scan_polls × WEBQQ_POLL_INTERVAL
  + confirm_polls × WEBQQ_SCANNED_POLL_INTERVAL (both ``--interval`` here); all accounts
  wait in parallel, so no crawl can finish sooner;
* ``confirm→stored`` p50 / p99: from the phone's confirm (the simulator's ``/_sim/stats``
  timestamp) to the moment the database pipeline had written the credentials;
* ``peak RSS``, ``RSS/acct``: (peak − RSS at spider open) / most accounts in flight at once;
  ``idle RSS``: after the last account finished and a garbage collection;
* ``CPU/login``: user + system CPU seconds of the crawl process per successful login;
* ``req/s``: downloader requests / wall.

The defaults run 1,000, 5,000 and 10,000 accounts polled, 2,000 with an instant phone and
10,000 in waves of 1,000, so that one command prints every target of issue 25. Under each
row, ``targets:`` checks them, each PASS or FAIL, with the load average of the moment (the
machine is often shared, and every figure moves with its load): p99 confirm→stored ≤
interval + 0.3 s at every count; at 1,000 accounts wall ≤ 1.5 × floor (the issue's form;
when the CPU-bound minimum itself is above 1.5 × floor, the line says so: no code meets
that form on such a machine); for every row, the CPU-bound minimum (the row's requests ×
tuned bare Scrapy's CPU per request, the cheaper of the two baseline runs of the sitting)
and wall ≤ 1.2 × it (× the floor where the floor is the larger); instant phone ≥ 110
logins/s, and with ``--reference DIR`` this code's logins/s over that checkout's, measured
just before by its own bench (≥ 1: not below it); ≤ 40 KB RSS per account in flight; CPU
per request ≤ 1.15 × tuned bare Scrapy, against the baseline run under the same admission
and against the one run all at once (both printed, each with its own wall); after the
waves, idle RSS within +20 % of the RSS at spider open.

``--reference DIR``: DIR holds another version of this repository (e.g. the code of
2026-11-28: ``git archive bfc1316 | tar -x -C DIR``); its own ``python -m bench.login``
runs the ``--instant`` count (nothing else) just before this code's instant run, and its
row is printed as ``reference``. ``--keep`` also keeps the simulator's stats
(``simulator_stats.json``: every phone confirm's time) beside the probe's JSON.

``--instant N``: the phone confirms at the first poll and the interval is 1 ms, so the
figure is the most logins per second one process achieves (``logins/s``).

``--limits 0,100,200``: each polled count runs once per ``WEBQQ_MAX_ACCOUNTS_IN_FLIGHT``
value (``default``: the project's); the rows add ``limit``, the most accounts in flight,
the longest admission wait and the CPU ms per downloaded request.

Baseline (``--no-baseline`` skips it): after each count's rows, ``bench/baseline.py`` — a
bare Scrapy spider with the same request chains, no project middleware, pipeline or
extension but the GC one, tuned as ``BASELINE_SETTINGS`` says — runs twice against a fresh
simulator with the same phone: under the project's admission (its pacing and its three
checks, with the run's settings) and all at once. The lines under the rows give its CPU
per request and the project's divided by it.

``--waves TOTAL/WAVE``: one ``qrlogin_redis`` process fed from a Redis list (a throwaway
``redis-server`` on loopback) in waves of WAVE accounts; after each wave (once the probe has
recorded the idle process, after a garbage collection) prints its RSS, pymalloc's arenas and
glibc's heap, and at the end the idle RSS as a percentage of the RSS at spider open (the
target: within +20 %) and whether it grew. ``--settle S`` also prints the RSS S seconds
after the last wave (260: after the HTTP pool's idle connections closed). With ``-s
BENCH_PROBE_DIAG=1`` the probe writes what holds the memory (``bench/probe.py``; ``--keep``
keeps the file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROBE = "bench.probe.BenchProbe"
MB = 1024 * 1024


# ---- processes ----------------------------------------------------------------------------


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["XDG_DATA_HOME"] = str(tmp / "xdg")  # never the user's default database
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


class SimulatorProcess:
    """``python -m webqq_scrapy.simulator`` on a free loopback port."""

    def __init__(self, tmp: Path, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "webqq_scrapy.simulator", "--port", "0", *args],
            cwd=ROOT,
            env=_env(tmp),
            stdout=subprocess.PIPE,
            stderr=open(tmp / "simulator.log", "wb"),  # noqa: SIM115
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"http://[\d.]+:\d+", line)
        if not match:
            self.stop()
            raise RuntimeError(f"simulator did not start: {line!r}")
        self.url = match.group(0)
        # The second line: the control host's URL, with its token.
        self.control_url = self.proc.stdout.readline().split(": ", 1)[-1].strip()
        self.control_url = self.control_url.removesuffix("/phone")

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.control_url}/_sim/stats", timeout=60) as response:
            return json.load(response)

    def rss(self) -> int:
        try:
            with open(f"/proc/{self.proc.pid}/statm", "rb") as statm:
                return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            # SIGTERM, not SIGINT: a bench started in the background of a shell (`nohup …
            # &`) hands its children SIGINT ignored, and the simulator then waited out the
            # 30 s below before it was killed. Both stop it cleanly (its __main__).
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class RedisProcess:
    """A throwaway ``redis-server`` on a free loopback port (no persistence)."""

    def __init__(self, tmp: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.proc = subprocess.Popen(
            [exe, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly",
             "no", "--dir", str(tmp)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = f"redis://127.0.0.1:{self.port}/0"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def crawl_command(
    spider: str, sim_url: str, tmp: Path, interval: float, extra: dict[str, Any]
) -> list[str]:
    sys.path.insert(0, str(ROOT))
    from webqq_scrapy import settings as project  # the project's pipelines, plus the probe

    pipelines = {**project.ITEM_PIPELINES, PROBE: 900}
    settings = {
        "WEBQQ_TARGET": sim_url,
        "WEBQQ_POLL_INTERVAL": interval,
        "WEBQQ_SCANNED_POLL_INTERVAL": interval,
        "WEBQQ_DATABASE_URL": f"sqlite:///{tmp / 'creds.sqlite3'}",
        "WEBQQ_QR_DIR": str(tmp / "qr"),
        "WEBQQ_QR_TERMINAL": "false",
        "ITEM_PIPELINES": json.dumps(pipelines),
        "BENCH_PROBE_PATH": str(tmp / "probe.json"),
        "LOG_FILE": str(tmp / "crawl.log"),
        **extra,
    }
    command = [sys.executable, "-m", "scrapy", "crawl", spider]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    return command


def run_crawl(command: list[str], tmp: Path, timeout: float) -> tuple[float, float]:
    """Run the crawl; return (process wall seconds, process CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    proc = subprocess.run(
        command, cwd=ROOT, env=_env(tmp), timeout=timeout, capture_output=True, text=True
    )
    wall = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise RuntimeError(f"crawl exited with {proc.returncode}; log: {tmp / 'crawl.log'}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


# ---- figures ------------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0–100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


@dataclass
class Result:
    label: str
    accounts: int
    ok: int
    wall: float
    startup: float
    floor: float
    start_spread: float
    confirm_p50: float
    confirm_p99: float
    peak_rss: int
    base_rss: int
    idle_rss: int
    trimmed_rss: int
    peak_in_flight: int
    cpu_per_login: float
    requests: int
    sim_cpu: float
    db_rows: int
    cpu: float = 0.0  # the crawl's CPU seconds, spider open → close
    limit: str = ""  # WEBQQ_MAX_ACCOUNTS_IN_FLIGHT of the run
    admission_max_wait: float = 0.0

    @property
    def cpu_per_request(self) -> float:
        return self.cpu / max(1, self.requests)

    @property
    def rss_per_account(self) -> float:
        return (self.peak_rss - self.base_rss) / max(1, self.peak_in_flight)

    @property
    def req_per_s(self) -> float:
        return self.requests / self.wall if self.wall else 0.0

    @property
    def logins_per_s(self) -> float:
        return self.ok / self.wall if self.wall else 0.0


def _warn_restarts(probe: dict[str, Any]) -> None:
    if probe["restarts"]:
        print(
            f"  WARNING: {probe['restarts']} request(s) of an account after its outcome: the "
            "probe counted the account in flight again (bench/probe.py)"
        )


def analyse(
    label: str, accounts: int, floor: float, tmp: Path, sim_stats: dict[str, Any], proc_wall: float
) -> Result:
    from bench.probe import load  # the crawl's modules: only once a crawl ran

    probe = load(tmp / "probe.json")
    _warn_restarts(probe)
    stats = probe["stats"]
    opened = probe["opened"]
    stored = probe["stored"]
    ok = int(stats.get("webqq/login/ok", 0))
    last_stored = max(stored.values(), default=opened["time"])
    wall = last_stored - opened["time"]
    starts = list(probe["started"].values())
    latencies = [
        stored[account] - max(times)
        for account, times in sim_stats.get("confirms", {}).items()
        if account in stored and times
    ]
    samples = probe["samples"]
    peak_sample_rss = max((s[1] for s in samples), default=0)
    idle = probe["idle"]
    with sqlite3.connect(tmp / "creds.sqlite3") as db:
        rows = db.execute("SELECT COUNT(*) FROM credentials").fetchone()[0]
    return Result(
        label=label,
        accounts=accounts,
        ok=ok,
        wall=wall,
        startup=proc_wall - (probe["closed"]["time"] - opened["time"]),
        floor=floor,
        start_spread=(max(starts) - min(starts)) if starts else 0.0,
        confirm_p50=percentile(latencies, 50) if latencies else float("nan"),
        confirm_p99=percentile(latencies, 99) if latencies else float("nan"),
        peak_rss=max(peak_sample_rss, probe["maxrss"]),
        base_rss=opened["rss"],
        idle_rss=idle[-1]["rss"] if idle else probe["closed"]["rss"],
        trimmed_rss=idle[-1]["trimmed"] if idle else probe["closed"]["rss"],
        peak_in_flight=max((s[2] for s in samples), default=0),
        cpu_per_login=(probe["closed"]["cpu"] - opened["cpu"]) / max(1, ok),
        requests=int(stats.get("downloader/request_count", 0)),
        sim_cpu=0.0,
        db_rows=rows,
        cpu=probe["closed"]["cpu"] - opened["cpu"],
        admission_max_wait=stats.get("webqq/admission/max_wait_ms", 0) / 1000,
    )


def one_run(
    label: str, accounts: int, *, interval: float, scan_polls: int, confirm_polls: int,
    log_level: str, keep: bool, extra: dict[str, str],
) -> Result:  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix=f"webqq-bench-{accounts}-"))
    names = [f"bench{i:05d}" for i in range(accounts)]
    (tmp / "accounts.txt").write_text("\n".join(names) + "\n")
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sim = SimulatorProcess(tmp, _sim_args(scan_polls, confirm_polls))
    try:
        settings = {"LOG_LEVEL": log_level, **extra}
        command = [
            *crawl_command("qrlogin", sim.url, tmp, interval, settings),
            *("-a", f"accounts_file={tmp / 'accounts.txt'}"),
        ]
        timeout = 120 + accounts * 0.2 + (scan_polls + confirm_polls) * interval
        proc_wall, crawl_cpu = run_crawl(command, tmp, timeout)
        sim_stats = sim.stats()
    finally:
        sim.stop()
    if keep:
        (tmp / "simulator_stats.json").write_text(json.dumps(sim_stats))
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    floor = scan_polls * interval + confirm_polls * interval
    result = analyse(label, accounts, floor, tmp, sim_stats, proc_wall)
    result.limit = extra.get("WEBQQ_MAX_ACCOUNTS_IN_FLIGHT", "default")
    # the simulator's CPU: all children's minus the crawl's
    result.sim_cpu = (
        (children_after.ru_utime - children_before.ru_utime)
        + (children_after.ru_stime - children_before.ru_stime)
        - crawl_cpu
    )
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"  (kept {tmp})")
    return result


def _sim_args(scan_polls: int, confirm_polls: int) -> list[str]:
    return [
        "--phone", "auto", "--scan-after-polls", str(scan_polls),
        "--confirm-after-polls", str(confirm_polls), "--qr-lifetime", "600",
    ]  # fmt: skip


# The tuned bare-Scrapy baseline (docs/performance.md "The baseline"): the project's
# concurrency (every request a real one, no global limit), the middlewares this flow does not
# use switched off as the project does (redirects are read, not followed; every request sets
# its Referer; nothing is crawled by depth), CONCURRENT_ITEMS=1, and the same GC handling
# (the project's GCTuning extension, with the project's WEBQQ_GC_* settings or the bench's
# -s overrides). Everything else is Scrapy's default.
BASELINE_SETTINGS: dict[str, Any] = {
    "CONCURRENT_REQUESTS": 0,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 5000,
    "CONCURRENT_ITEMS": 1,
    "TELNETCONSOLE_ENABLED": False,
    "DOWNLOADER_MIDDLEWARES": json.dumps(
        {
            "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
            "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
            "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
            "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
        }
    ),
    "SPIDER_MIDDLEWARES": json.dumps(
        {
            "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
            "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
            "scrapy.spidermiddlewares.referer.RefererMiddleware": None,
            "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
        }
    ),
    "EXTENSIONS": json.dumps({"webqq_scrapy.gctuning.GCTuning": 0}),
}
GC_SETTINGS = ("WEBQQ_GC_TUNING", "WEBQQ_GC_THRESHOLD")
ADMISSION_SETTINGS = (
    "WEBQQ_ADMISSION_CPU_SHARE",
    "WEBQQ_ADMISSION_MAX_LAG",
    "WEBQQ_MAX_ACCOUNTS_IN_FLIGHT",
    "WEBQQ_ADMISSION_RATE",
)


def project_admission(extra: dict[str, str], interval: float) -> str:
    """The project's admission for this run (its defaults, the bench's -s overrides) as the
    baseline's ``-a admission=SHARE,LAG,LIMIT,RATE,MAX_WAIT`` (MAX_WAIT in seconds, ``auto``
    resolved as the project resolves it)."""
    sys.path.insert(0, str(ROOT))
    from scrapy.settings import Settings

    from webqq_scrapy import config
    from webqq_scrapy import settings as project

    settings = Settings({name: getattr(project, name) for name in dir(project) if name.isupper()})
    polls = {"WEBQQ_POLL_INTERVAL": interval, "WEBQQ_SCANNED_POLL_INTERVAL": interval}
    settings.setdict({**polls, **extra}, priority="cmdline")
    values = [settings.get(name) for name in ADMISSION_SETTINGS]
    return ",".join([*map(str, values), str(config.admission_max_wait(settings))])


@dataclass
class Baseline:
    accounts: int
    ok: int
    requests: int
    cpu: float
    wall: float  # the baseline's own: spider open → the last login ended ok
    admission: str = ""  # "": all at once
    process_wall: float = 0.0  # the baseline process, start → exit (measured by this bench)

    @property
    def cpu_per_request(self) -> float:
        return self.cpu / max(1, self.requests)


def baseline_run(
    accounts: int, *, interval: float, scan_polls: int, confirm_polls: int, log_level: str,
    keep: bool, admission: str = "", extra: dict[str, str] | None = None,
) -> Baseline:  # fmt: skip
    """``bench/baseline.py`` (bare Scrapy tuned, the same request chains) against a fresh
    simulator, all at once or (``admission``) under the project's admission."""
    tmp = Path(tempfile.mkdtemp(prefix=f"webqq-baseline-{accounts}-"))
    (tmp / "accounts.txt").write_text("\n".join(f"bench{i:05d}" for i in range(accounts)) + "\n")
    sim = SimulatorProcess(tmp, _sim_args(scan_polls, confirm_polls))
    try:
        gc = {name: value for name, value in (extra or {}).items() if name in GC_SETTINGS}
        settings = {
            **BASELINE_SETTINGS,
            **gc,
            "LOG_LEVEL": log_level,
            "LOG_FILE": tmp / "crawl.log",
        }
        # From tmp (no scrapy.cfg there): no project settings at all.
        command = [sys.executable, "-m", "scrapy", "runspider", str(ROOT / "bench/baseline.py")]
        command += ["-a", f"accounts_file={tmp / 'accounts.txt'}", "-a", f"proxy={sim.url}"]
        command += ["-a", f"out={tmp / 'baseline.json'}", "-a", f"interval={interval}"]
        if admission:
            command += ["-a", f"admission={admission}"]
        for name, value in settings.items():
            command += ["-s", f"{name}={value}"]
        timeout = 120 + accounts * 0.2 + (scan_polls + confirm_polls) * interval
        began = time.monotonic()
        proc = subprocess.run(
            command, cwd=tmp, env=_env(tmp), timeout=timeout, capture_output=True, text=True
        )
        process_wall = time.monotonic() - began
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-3000:])
            raise RuntimeError(f"baseline exited with {proc.returncode}; log: {tmp}/crawl.log")
    finally:
        sim.stop()
    doc = json.loads((tmp / "baseline.json").read_text())
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    wall = doc.get("wall_to_last_ok", doc["wall"])
    return Baseline(accounts, doc["ok"], doc["requests"], doc["cpu"], wall, admission, process_wall)


def baseline_line(project: Result, base: Baseline) -> str:
    ratio = project.cpu_per_request / base.cpu_per_request if base.cpu else float("nan")
    how = f"admission {base.admission}" if base.admission else "all at once"
    return (
        f"  baseline (bare Scrapy tuned, same chains, {how}): {base.ok}/{base.accounts} ok, "
        f"{base.requests} requests, its own wall {base.wall:.2f} s (spider open → last login; "
        f"process {base.process_wall:.2f} s; the project's {project.wall:.2f} s), CPU "
        f"{base.cpu_per_request * 1000:.3f} ms/request; project "
        f"{project.cpu_per_request * 1000:.3f} ms/request ({project.requests} requests) → "
        f"project / baseline = {ratio:.2f}"
    )


# ---- waves --------------------------------------------------------------------------------


def waves_run(
    total: int, wave: int, *, interval: float, log_level: str, keep: bool, extra: dict[str, str],
    settle: float = 0.0,
) -> None:  # fmt: skip
    import redis  # the scale-out dependency; only this mode needs it

    tmp = Path(tempfile.mkdtemp(prefix="webqq-bench-waves-"))
    red = RedisProcess(tmp)
    sim = SimulatorProcess(
        tmp, ["--phone", "auto", "--scan-after-polls", "1", "--confirm-after-polls", "1"]
    )
    key = "bench:accounts"
    client = redis.Redis.from_url(red.url)
    extra = {
        "LOG_LEVEL": log_level,
        "WEBQQ_REDIS_URL": red.url,
        "WEBQQ_REDIS_KEY": key,
        # Long enough for a diagnosis (BENCH_PROBE_DIAG) between waves, and for --settle.
        "WEBQQ_REDIS_IDLE_CLOSE": 10 + settle * 2,
        **extra,
    }
    command = crawl_command("qrlogin_redis", sim.url, tmp, interval, extra)
    rows: list[tuple[int, float, float, int]] = []
    try:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=_env(tmp), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        crawl_rss = _rss_reader(proc.pid)
        time.sleep(3)  # let the spider open (it waits for work, it does not close)
        base = crawl_rss()
        for index in range(total // wave):
            names = [f"wave{index:03d}-{i:05d}" for i in range(wave)]
            client.rpush(key, *names)
            t0 = time.time()
            while _logins(sim) < (index + 1) * wave:
                if proc.poll() is not None:
                    raise RuntimeError(f"crawl ended early; log: {tmp / 'crawl.log'}")
                if time.time() - t0 > 600:
                    raise RuntimeError("wave did not finish in 600 s")
                time.sleep(0.2)
            took = time.time() - t0
            # The probe collects garbage once the last account has finished and records the
            # idle RSS: wait for that record (the crawl may lag behind the simulator).
            idle = _wait_idle(tmp / "probe.json.idle", (index + 1) * wave, proc)
            rows.append((index + 1, took, idle["rss"] / MB, len(sim.stats()["logins"])))
            print(
                f"  wave {index + 1:3d}: {wave} accounts in {took:5.1f} s, "
                f"idle RSS {rows[-1][2]:6.1f} MB (after malloc_trim {idle['trimmed'] / MB:.1f}; "
                f"at start {base / MB:.1f} MB; {_held(idle)}), "
                f"simulator RSS {sim.rss() / MB:6.1f} MB",
                flush=True,
            )
        if settle:
            # Scrapy's HTTP pool closes connections idle for 240 s (Twisted's
            # cachedConnectionTimeout): what the process gives back once they are gone.
            time.sleep(settle)
            settled = crawl_rss() / MB
            print(f"  idle RSS {settle:g} s after the last wave: {settled:.1f} MB", flush=True)
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        sim_stats = sim.stats()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)
        sim_stats_final = sim.stats() if sim.proc.poll() is None else {}
        sim.stop()
        red.stop()
    from bench.probe import load  # the crawl's modules: only once a crawl ran

    probe = load(tmp / "probe.json")
    _warn_restarts(probe)
    with sqlite3.connect(tmp / "creds.sqlite3") as db:
        stored = db.execute("SELECT COUNT(*) FROM credentials").fetchone()[0]
    logins = sim_stats.get("logins", {})
    print(
        f"  {total} accounts in {total // wave} waves: {stored} credentials stored, "
        f"{sum(logins.values())} simulator logins ({sum(v > 1 for v in logins.values())} "
        f"accounts twice); peak RSS {probe['maxrss'] / MB:.1f} MB; idle RSS after wave 1 "
        f"{rows[0][2]:.1f} MB, after wave {rows[-1][0]} {rows[-1][2]:.1f} MB "
        f"(growth {(rows[-1][2] - rows[0][2]) * 1024 / max(1, total - wave):.2f} KB per "
        f"further account); simulator live QRs {sim_stats_final.get('live_qrs', '?')}, "
        f"live sessions {sim_stats_final.get('live_sessions', '?')} (kept for session_ttl)"
    )
    opened = probe["opened"]["rss"] / MB
    idle = [entry["rss"] / MB for entry in probe["idle"]]
    if idle:
        print(
            f"  RSS at spider open {opened:.1f} MB; idle after the last wave {idle[-1]:.1f} MB"
            f"; lowest idle {min(idle):.1f} MB, highest {max(idle):.1f} MB"
        )
        growth = idle[-1] / opened - 1
        print(
            "  targets: "
            + _check("idle RSS after the waves vs spider open", growth * 100,
                     TARGET_WAVES_GROWTH * 100, " %")
            + f" (load average now {load_average()})"
        )  # fmt: skip
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)


def _held(idle: dict[str, Any]) -> str:
    """Where the idle process's heap is: pymalloc's arenas and glibc's heap (bench/probe.py)."""
    py, libc = idle.get("pymalloc", {}), idle.get("glibc", {})
    if not py:
        return "pymalloc off"
    text = (
        f"pymalloc {py.get('arenas', 0)} arenas (most {py.get('arenas_highwater', 0)}), "
        f"{py.get('allocated', 0) / MB:.1f} MB live in them"
    )
    if libc:
        text += f"; glibc heap {libc['heap'] / MB:.1f} MB, {libc['free'] / MB:.1f} MB of it free"
    return text


def _wait_idle(path: Path, finished: int, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    """The probe's idle record once ``finished`` accounts have ended (bench/probe.py)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if path.exists():
            for line in reversed(path.read_text().splitlines()):
                record = json.loads(line)
                if record["finished"] >= finished:
                    return record
        if proc.poll() is not None:
            raise RuntimeError(f"crawl ended early; log: {path.parent / 'crawl.log'}")
        time.sleep(0.2)
    raise RuntimeError(f"the crawl was not idle within 600 s after {finished} accounts")


def _rss_reader(pid: int):
    def read() -> int:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    return read


def _logins(sim: SimulatorProcess) -> int:
    return sum(sim.stats()["logins"].values())


# ---- output -------------------------------------------------------------------------------


def machine() -> str:
    model = "?"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        mem_kb = int(meminfo.readline().split()[1])
    return (
        f"{os.cpu_count()} CPU(s), {model}, {mem_kb / 1024 / 1024:.1f} GiB RAM, "
        f"Python {platform.python_version()}"
    )


HEAD = (
    f"{'run':<8}{'accts':>6}{'ok':>6}{'wall s':>8}{'floor s':>8}{'w/f':>6}{'starts s':>9}"
    f"{'c→s p50':>9}{'c→s p99':>9}{'base MB':>8}{'peak MB':>8}{'KB/acct':>8}{'idle MB':>8}"
    f"{'trim MB':>8}{'CPU ms/login':>13}{'req/s':>7}{'login/s':>8}{'limit':>8}{'inflt':>6}"
    f"{'adm wait s':>11}{'ms/req':>8}"
)
LEGEND = (
    "wall: spider open → last credentials stored; floor: polls × interval; starts: first to "
    "last account's first request; c→s: phone confirm → credentials stored, s; KB/acct: "
    "(peak − base RSS) / most accounts in flight; idle: RSS once every account finished, "
    "after gc; trim: the same after malloc_trim(0) (memory the C allocator kept, not live "
    "objects); CPU of the crawl process only (the simulator runs on the other core); limit: "
    "WEBQQ_MAX_ACCOUNTS_IN_FLIGHT (0 = none); inflt: most accounts in flight at once; adm "
    "wait: longest wait of an account for admission; ms/req: CPU ms per downloaded request."
)


def row(r: Result) -> str:
    ratio = r.wall / r.floor if r.floor else float("nan")
    text = (
        f"{r.label:<8}{r.accounts:>6}{r.ok:>6}{r.wall:>8.2f}{r.floor:>8.2f}{ratio:>6.2f}"
        f"{r.start_spread:>9.2f}{r.confirm_p50:>9.3f}{r.confirm_p99:>9.3f}"
        f"{r.base_rss / MB:>8.1f}{r.peak_rss / MB:>8.1f}{r.rss_per_account / 1024:>8.1f}"
        f"{r.idle_rss / MB:>8.1f}{r.trimmed_rss / MB:>8.1f}{r.cpu_per_login * 1000:>13.2f}"
        f"{r.req_per_s:>7.0f}{r.logins_per_s:>8.1f}{r.limit:>8}{r.peak_in_flight:>6}"
        f"{r.admission_max_wait:>11.2f}{r.cpu_per_request * 1000:>8.3f}"
    )
    if r.ok != r.accounts or r.db_rows != r.ok:
        text += f"  WARNING: {r.ok}/{r.accounts} ok, {r.db_rows} rows stored"
    return text


# Issue 25's targets (docs/performance.md "Targets"), each printed PASS or FAIL.
TARGET_SLACK_S = 0.3  # p99 confirm → stored ≤ interval + this, at every count
TARGET_WALL_FLOOR = 1.5  # at 1,000 accounts
TARGET_WALL_MINIMUM = 1.2  # at 5,000 and more: wall ≤ this × the CPU-bound minimum
TARGET_LOGINS_PER_S = 110  # instant phone
TARGET_RATIO = 1.15  # project / tuned bare Scrapy, CPU per request
TARGET_KB_PER_ACCOUNT = 40
TARGET_WAVES_GROWTH = 0.20  # idle RSS after the waves vs spider open


def _check(name: str, value: float, limit: float, unit: str = "", at_least: bool = False) -> str:
    ok = value >= limit if at_least else value <= limit
    return f"{name} {value:.2f}{unit} {'≥' if at_least else '≤'} {limit:g}{unit} " + (
        "PASS" if ok else "FAIL"
    )


def load_average() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def minimum_line(r: Result, admitted: Baseline | None, at_once: Baseline | None) -> str:
    """The CPU-bound minimum of the row (its requests × tuned bare Scrapy's CPU per request,
    the cheaper of the two baseline runs of this sitting) and the wall against it, PASS or
    FAIL against TARGET_WALL_MINIMUM; "" without a baseline."""
    bases = [b for b in (admitted, at_once) if b is not None and b.cpu]
    if not bases:
        return ""
    best = min(b.cpu_per_request for b in bases)
    minimum = r.requests * best
    text = f"CPU-bound minimum {minimum:.1f} s ({r.requests} requests × {best * 1000:.3f} ms); "
    if r.floor > minimum:
        # No crawl ends before the floor either: the wall is weighed against the larger.
        ratio = r.wall / r.floor
        return text + _check("wall/floor (above the minimum)", ratio, TARGET_WALL_MINIMUM)
    return text + _check("wall/minimum", r.wall / minimum, TARGET_WALL_MINIMUM)


def targets_line(
    r: Result,
    admitted: Baseline | None,
    at_once: Baseline | None,
    interval: float,
    reference: Reference | None = None,
) -> str:
    """Each target that applies to the row, PASS or FAIL, and the load average now."""
    checks = []
    minimum = minimum_line(r, admitted, at_once)
    if r.label == "instant":
        checks.append(_check("logins/s", r.logins_per_s, TARGET_LOGINS_PER_S, at_least=True))
        if reference is not None and reference.logins_per_s:
            ratio = r.logins_per_s / reference.logins_per_s
            checks.append(
                f"the code of {reference.name} here: {reference.logins_per_s:.1f} logins/s; "
                + _check("logins/s vs it", ratio, 1.0, at_least=True)
            )
        if minimum:
            checks.append(minimum)
    else:
        checks.append(_check("p99 c→s", r.confirm_p99, interval + TARGET_SLACK_S, " s"))
        if r.accounts <= 1000 and r.floor:
            text = _check("wall/floor", r.wall / r.floor, TARGET_WALL_FLOOR)
            bases = [b for b in (admitted, at_once) if b is not None and b.cpu]
            if bases:
                least = r.requests * min(b.cpu_per_request for b in bases)
                if least > TARGET_WALL_FLOOR * r.floor:
                    text += (
                        f" (the CPU-bound minimum {least:.1f} s exceeds "
                        f"{TARGET_WALL_FLOOR:g} × floor = {TARGET_WALL_FLOOR * r.floor:g} s: "
                        "no code meets this form on this machine; see wall/minimum)"
                    )
            checks.append(text)
        if minimum:
            checks.append(minimum)
        checks.append(_check("KB/acct in flight", r.rss_per_account / 1024, TARGET_KB_PER_ACCOUNT))
    for base, how in ((admitted, "same admission"), (at_once, "all at once")):
        if base is not None and base.cpu:
            ratio = r.cpu_per_request / base.cpu_per_request
            checks.append(_check(f"CPU/request vs tuned bare Scrapy ({how})", ratio, TARGET_RATIO))
    return f"  targets: {'; '.join(checks)} (load average now {load_average()})"


@dataclass
class Reference:
    """The instant run of another checkout's code (``--reference DIR``), by its own bench."""

    name: str
    accounts: int
    ok: int
    wall: float
    p99: float
    cpu_per_login: float  # s

    @property
    def logins_per_s(self) -> float:
        return self.ok / self.wall if self.wall else 0.0


def reference_run(directory: Path, accounts: int, log_level: str) -> Reference:
    """``python -m bench.login`` of the checkout in ``directory`` (its own bench and code),
    its instant run only; the figures read from its ``instant`` row, whose first 17 columns
    every version of this bench prints alike (run, accts, ok, wall s, …, login/s)."""
    bench = (directory / "bench" / "login.py").read_text()
    command = [sys.executable, "-m", "bench.login", "--accounts", "", "--instant",
               str(accounts), "--waves", "", "--log-level", log_level]  # fmt: skip
    if "--no-baseline" in bench:
        command.append("--no-baseline")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(directory)
    proc = subprocess.run(
        command, cwd=directory, env=env, capture_output=True, text=True, timeout=1800
    )
    for line in proc.stdout.splitlines():
        if line.startswith("instant"):
            cols = line.split()
            name = directory.name
            head = subprocess.run(
                ["git", "log", "-1", "--format=%h %cs"], cwd=directory, capture_output=True,
                text=True,
            )  # fmt: skip
            if head.returncode == 0 and head.stdout.strip():
                name = head.stdout.strip()
            return Reference(name, int(cols[1]), int(cols[2]), float(cols[3]), float(cols[8]),
                             float(cols[14]) / 1000)  # fmt: skip
    sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
    raise RuntimeError(f"--reference {directory}: its bench printed no instant row")


def reference_line(ref: Reference) -> str:
    return (
        f"  reference ({ref.name}, its own bench, just before): {ref.ok}/{ref.accounts} ok in "
        f"{ref.wall:.2f} s = {ref.logins_per_s:.1f} logins/s, p99 c→s {ref.p99:.3f} s, "
        f"CPU {ref.cpu_per_login * 1000:.2f} ms/login"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.login", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--accounts", default="1000,5000,10000", help="comma-separated counts (1000,5000,10000)"
    )
    parser.add_argument("--interval", type=float, default=2.0, help="poll interval, s (2.0)")
    parser.add_argument("--scan-after-polls", type=int, default=3, metavar="N")
    parser.add_argument("--confirm-after-polls", type=int, default=2, metavar="M")
    parser.add_argument(
        "--instant", type=int, default=2000, metavar="N", help="instant-phone run (2000; 0: none)"
    )
    parser.add_argument(
        "--limits",
        default="default",
        metavar="N,…",
        help="WEBQQ_MAX_ACCOUNTS_IN_FLIGHT values for the polled runs, one run each "
        "('default': the project's; 0: no limit)",
    )
    parser.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="skip the bare-Scrapy baseline runs (bench/baseline.py)",
    )
    parser.add_argument(
        "--waves",
        default="10000/1000",
        metavar="TOTAL/WAVE",
        help="qrlogin_redis in waves (10000/1000; '' or 0: none; needs redis-server)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        metavar="S",
        help="--waves: also print the RSS S seconds after the last wave (e.g. 260: after the "
        "HTTP pool's idle connections closed)",
    )
    parser.add_argument(
        "--reference",
        type=Path,
        metavar="DIR",
        help="another checkout (e.g. `git archive` of the code of 2026-11-28 unpacked in DIR):"
        " its own bench runs the --instant count just before this code's, and the instant "
        "target is also read as this code's logins/s over its",
    )
    parser.add_argument("--log-level", default="INFO", help="the crawl's LOG_LEVEL (INFO)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument(
        "-s",
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra Scrapy setting for the crawl (repeatable)",
    )
    args = parser.parse_args(argv)

    extra = dict(item.split("=", 1) for item in args.set)
    print(f"machine: {machine()}; load average {load_average()}")
    print(
        f"phone: scan at poll {args.scan_after_polls}, confirm {args.confirm_after_polls} "
        f"poll(s) later; interval {args.interval:g} s; LOG_LEVEL {args.log_level}; "
        f"extra settings {extra or 'none'}",
        flush=True,
    )
    print(HEAD, flush=True)
    limits = [c.strip() for c in args.limits.split(",") if c.strip()]
    runs = [
        ("polled", int(c), args.interval, args.scan_after_polls, args.confirm_after_polls)
        for c in args.accounts.split(",")
        if c.strip()
    ]
    if args.instant:
        runs.append(("instant", args.instant, 0.001, 0, 0))
    for label, count, interval, scan_polls, confirm_polls in runs:
        results = []
        same: dict[str, Any] = {
            "interval": interval,
            "scan_polls": scan_polls,
            "confirm_polls": confirm_polls,
            "log_level": args.log_level,
            "keep": args.keep,
        }
        reference = None
        if label == "instant" and args.reference is not None:
            reference = reference_run(args.reference, count, args.log_level)
            print(reference_line(reference), flush=True)
        for limit in limits if label == "polled" else ["default"]:
            settings = dict(extra)
            if limit != "default":
                settings["WEBQQ_MAX_ACCOUNTS_IN_FLIGHT"] = limit
            result = one_run(label, count, extra=settings, **same)
            results.append(result)
            print(row(result), flush=True)
        admitted = at_once = None
        if args.baseline:
            admission = project_admission(extra, interval)
            admitted = baseline_run(count, **same, admission=admission, extra=extra)
            at_once = baseline_run(count, **same, extra=extra)
        for result in results:
            for base in (admitted, at_once):
                if base is not None:
                    print(baseline_line(result, base), flush=True)
            print(targets_line(result, admitted, at_once, interval, reference), flush=True)
    print(LEGEND)
    if args.waves and args.waves != "0" and shutil.which("redis-server") is None:
        print("\nwaves skipped: redis-server is not installed (the RSS target is not checked)")
    elif args.waves and args.waves != "0":
        total, _, wave = args.waves.partition("/")
        print(f"\nrunning {total} accounts in waves of {wave} (qrlogin_redis) …", flush=True)
        waves_run(
            int(total),
            int(wave),
            interval=args.interval,
            log_level=args.log_level,
            keep=args.keep,
            extra=extra,
            settle=args.settle,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
