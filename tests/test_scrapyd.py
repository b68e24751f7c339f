"""The scrapyd deployment, for real: build the egg, deploy it to a scrapyd subprocess with basic
auth on a free loopback port, schedule ``qrlogin`` through ``schedule.json``, and check what the
job stored and logged (docs/scrapyd.md).

scrapyd runs each job with its own interpreter and the project's dependencies from its own
environment; here that is this test's interpreter (scrapyd and scrapyd-client come from
requirements-dev.txt). scrapyd is started in a temporary directory, so the job can import
``webqq_scrapy`` only from the deployed egg (checked), never from this checkout.
"""

from __future__ import annotations

import base64
import configparser
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from webqq_scrapy.store import list_credentials, list_outcomes, load_credentials

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "webqq_scrapy"
USERNAME = "deployer"
PASSWORD = "s3cret-" + uuid.uuid4().hex[:8]
ACCOUNTS = ("alice", "bob")


def _tool(script: str, module: str) -> list[str]:
    """The console script next to this interpreter, else ``python -m module``."""
    path = Path(sys.executable).parent / script
    return [str(path)] if path.exists() else [sys.executable, "-m", module]


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that would point a child at this checkout."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "PYTHONPATH" and not key.startswith(("SCRAPY_", "SCRAPYD_"))
    }
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Scrapyd:
    url: str
    home: Path
    output: Path

    def request(
        self, path: str, data: list[tuple[str, str]] | None = None, *, auth: bool = True
    ) -> bytes:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(f"{self.url}/{path}", data=body)
        if auth:
            token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def api(self, path: str, data: list[tuple[str, str]] | None = None) -> dict:
        answer = json.loads(self.request(path, data))
        assert answer.get("status") == "ok", answer
        return answer


@pytest.fixture(scope="module")
def scrapyd(tmp_path_factory: pytest.TempPathFactory):
    """A scrapyd on 127.0.0.1 with basic auth, stopped (with its jobs) after the module."""
    home = tmp_path_factory.mktemp("scrapyd")
    (home / "scrapyd.conf").write_text(
        "[scrapyd]\n"
        f"eggs_dir = {home / 'eggs'}\n"
        f"logs_dir = {home / 'logs'}\n"
        f"dbs_dir = {home / 'dbs'}\n"
        "items_dir =\n"
        "jobstorage = scrapyd.jobstorage.SqliteJobStorage\n"
        "poll_interval = 0.2\n"
        "max_proc = 2\n"
    )
    port = _free_port()
    env = _clean_env(
        SCRAPYD_BIND_ADDRESS="127.0.0.1",
        SCRAPYD_HTTP_PORT=str(port),
        SCRAPYD_USERNAME=USERNAME,
        SCRAPYD_PASSWORD=PASSWORD,
    )
    # The precondition of "the job ran the egg": from scrapyd's directory and environment,
    # the package is not importable.
    probe = subprocess.run(
        [sys.executable, "-c", "import webqq_scrapy"], cwd=home, env=env, capture_output=True
    )
    assert probe.returncode != 0, "webqq_scrapy is importable without the egg: test is void"

    output = home / "scrapyd.out"
    with output.open("wb") as out:
        # Its own session, so that teardown can stop scrapyd and the jobs it spawned.
        process = subprocess.Popen(
            _tool("scrapyd", "scrapyd"),
            cwd=home,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while "available at" not in output.read_text(errors="replace"):
            assert process.poll() is None, f"scrapyd exited:\n{output.read_text()}"
            assert time.monotonic() < deadline, f"scrapyd did not start:\n{output.read_text()}"
            time.sleep(0.1)
        assert f"http://127.0.0.1:{port}/" in output.read_text()
        yield Scrapyd(url=f"http://127.0.0.1:{port}", home=home, output=output)
    finally:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture(scope="module")
def egg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The egg exactly as users build it: ``scrapyd-deploy --build-egg`` in this checkout."""
    path = tmp_path_factory.mktemp("egg") / f"{PROJECT}.egg"
    subprocess.run(
        [*_tool("scrapyd-deploy", "scrapyd_client.deploy"), "--build-egg", str(path)],
        cwd=ROOT,
        env=_clean_env(),
        check=True,
        capture_output=True,
    )
    return path


def test_egg_holds_the_package_and_no_tests(egg: Path) -> None:
    with zipfile.ZipFile(egg) as archive:
        names = set(archive.namelist())
        entry_points = archive.read("EGG-INFO/entry_points.txt").decode()
    code = {n for n in names if not n.startswith("EGG-INFO/")}
    assert all(n.startswith(f"{PROJECT}/") for n in code), sorted(code)
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n]
    expected = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / PROJECT).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert code == expected  # every module and subpackage, and nothing else
    for package in ("simulator", "spiders", "commands"):
        assert f"{PROJECT}/{package}/__init__.py" in names
    parser = configparser.ConfigParser()
    parser.read_string(entry_points)
    assert parser["scrapy"]["settings"] == "webqq_scrapy.settings"


def test_deploy_target_has_no_trailing_slash() -> None:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "scrapy.cfg")
    url = parser["deploy"]["url"]
    assert not url.endswith("/"), "scrapyd-client subcommands get 404s with a trailing slash"
    assert urllib.parse.urlsplit(url).path == ""
    assert parser["deploy"]["project"] == PROJECT


def test_unauthenticated_request_gets_401(scrapyd: Scrapyd) -> None:
    for path in ("daemonstatus.json", "listprojects.json", f"logs/{PROJECT}/"):
        with pytest.raises(urllib.error.HTTPError) as error:
            scrapyd.request(path, auth=False)
        assert error.value.code == 401
    assert scrapyd.api("daemonstatus.json")["running"] == 0


def test_scheduled_login_stores_credentials_and_logs_no_secret(
    scrapyd: Scrapyd, egg: Path, tmp_path: Path
) -> None:
    # Deploy the inspected egg with scrapyd-deploy, the target (with its password from the
    # environment) coming from the user's own scrapy.cfg, as docs/scrapyd.md recommends.
    config_home = tmp_path / "config"
    config_home.mkdir()
    (config_home / "scrapy.cfg").write_text(
        "[deploy:webqq-scrapyd-test]\n"
        f"url = {scrapyd.url}\n"
        f"username = {USERNAME}\n"
        "password = ${SCRAPYD_PASSWORD}\n"
        f"project = {PROJECT}\n"
    )
    deploy = subprocess.run(
        [
            *_tool("scrapyd-deploy", "scrapyd_client.deploy"),
            "webqq-scrapyd-test",
            "-v",
            "r1",
            "--egg",
            str(egg),
        ],
        cwd=ROOT,
        env=_clean_env(XDG_CONFIG_HOME=str(config_home), SCRAPYD_PASSWORD=PASSWORD),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert deploy.returncode == 0, deploy.stderr + deploy.stdout
    assert json.loads(deploy.stdout)["status"] == "ok", deploy.stdout
    assert scrapyd.api(f"listversions.json?project={PROJECT}")["versions"] == ["r1"]
    assert scrapyd.api(f"listspiders.json?project={PROJECT}")["spiders"] == [
        "qrlogin",
        "qrlogin_redis",
    ]

    database = tmp_path / "creds.sqlite3"
    database_url = f"sqlite:///{database}"
    qr_dir = tmp_path / "qr"
    job = f"login-{uuid.uuid4().hex[:12]}"
    started = time.monotonic()
    answer = scrapyd.api(
        "schedule.json",
        [
            ("project", PROJECT),
            ("spider", "qrlogin"),
            ("jobid", job),
            ("accounts", ",".join(ACCOUNTS)),
            ("setting", f"WEBQQ_DATABASE_URL={database_url}"),
            ("setting", f"WEBQQ_QR_DIR={qr_dir}"),
            ("setting", "WEBQQ_POLL_INTERVAL=0.2"),
            ("setting", "WEBQQ_SCANNED_POLL_INTERVAL=0.1"),
            ("setting", "WEBQQ_SIMULATOR_SCAN_AFTER=0.3"),
            ("setting", "WEBQQ_SIMULATOR_CONFIRM_AFTER=0.3"),
            ("setting", "WEBQQ_LOGIN_TIMEOUT=60"),
        ],
    )
    assert answer["jobid"] == job

    while (state := scrapyd.api(f"status.json?job={job}&project={PROJECT}")["currstate"]) != (
        "finished"
    ):
        assert state in ("pending", "running"), state
        assert time.monotonic() - started < 120, f"job still {state}:\n{_tail(scrapyd.output)}"
        time.sleep(0.2)

    # The credentials, tagged with the scrapyd job id.
    stored = {c.account: c for c in list_credentials(database_url=database_url)}
    assert set(stored) == set(ACCOUNTS), _tail(scrapyd.output)
    for account, creds in stored.items():
        assert creds.job == job
        assert creds.target == "simulator"
        assert creds.uin > 0 and creds.psessionid and creds.vfwebqq and creds.ptwebqq
        assert creds.cookies
        assert load_credentials(account, database_url=database_url) == creds
    outcomes = list_outcomes(database_url=database_url)
    assert {(o.account, o.outcome, o.job) for o in outcomes} == {(a, "ok", job) for a in ACCOUNTS}

    # The job's log: on disk where scrapyd.conf says, and served (behind auth) at log_url.
    finished = scrapyd.api(f"listjobs.json?project={PROJECT}")["finished"]
    (entry,) = [j for j in finished if j["id"] == job]
    assert entry["log_url"] == f"/logs/{PROJECT}/qrlogin/{job}.log"
    assert entry["items_url"] is None  # items_dir stays empty: feeds would hold secrets
    log_file = scrapyd.home / "logs" / PROJECT / "qrlogin" / f"{job}.log"
    log = log_file.read_text()
    assert scrapyd.request(entry["log_url"].lstrip("/")).decode() == log

    assert "Spider closed (finished)" in log
    for account in ACCOUNTS:
        match = re.search(rf"Account {account}: QR code #1 saved to (\S+\.png)", log)
        assert match, f"no QR location line for {account}"
        assert Path(match.group(1)).parent == qr_dir
    assert not list(qr_dir.glob("*.png"))  # each PNG is removed when its account finishes

    secrets = _secrets(stored.values())
    assert secrets
    for where, text in (("job log", log), ("scrapyd output", scrapyd.output.read_text())):
        leaked = sorted(name for name, value in secrets if value in text)
        assert not leaked, f"secrets in the {where}: {leaked}"


def _secrets(credentials) -> list[tuple[str, str]]:
    """(label, value) of every token and cookie value of the stored credentials."""
    found = []
    for creds in credentials:
        for field in ("psessionid", "vfwebqq", "ptwebqq"):
            found.append((f"{creds.account}.{field}", getattr(creds, field)))
        for cookie in creds.cookies:
            if cookie["value"]:
                found.append((f"{creds.account}.cookie.{cookie['name']}", cookie["value"]))
    return found


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
