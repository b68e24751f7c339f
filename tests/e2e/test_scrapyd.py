"""The scrapyd deployment, for real: build the egg, deploy it to a scrapyd subprocess with basic
auth on a free loopback port, schedule ``qrlogin`` through ``schedule.json``, and check what the
job stored and logged (docs/scrapyd.md).

scrapyd runs each job with its own interpreter and the project's dependencies from its own
environment; here that is this test's interpreter (scrapyd and scrapyd-client come from
requirements-dev.txt). scrapyd is started in a temporary directory, so the job can import
``webqq_scrapy`` only from the deployed egg (checked), never from this checkout.
The ``scrapyd`` and ``egg`` fixtures and the helpers live in ``tests/fixtures/scrapyd.py``.
"""

from __future__ import annotations

import configparser
import re
import urllib.error
import urllib.parse
import zipfile
from pathlib import Path

import pytest

from tests.fixtures.scrapyd import (
    PROJECT,
    ROOT,
    Scrapyd,
    deploy,
    schedule,
    secrets_of,
    tail,
    wait_finished,
)
from webqq_scrapy.store import list_credentials, list_outcomes, load_credentials

ACCOUNTS = ("alice", "bob")


def test_egg_holds_the_package_and_no_tests(egg: Path) -> None:
    with zipfile.ZipFile(egg) as archive:
        names = set(archive.namelist())
        entry_points = archive.read("EGG-INFO/entry_points.txt").decode()
    code = {n for n in names if not n.startswith("EGG-INFO/")}
    assert all(n.startswith(f"{PROJECT}/") for n in code), sorted(code)
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n]
    expected = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / PROJECT).rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and (path.suffix == ".py" or path.parent == ROOT / PROJECT / "qr" / "static")
    }
    assert f"{PROJECT}/qr/static/page.js" in expected
    assert code == expected  # every module and subpackage, the QR page's files, nothing else
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
    deploy(scrapyd, egg, tmp_path / "config", "r1")
    assert scrapyd.api(f"listversions.json?project={PROJECT}")["versions"] == ["r1"]
    assert scrapyd.api(f"listspiders.json?project={PROJECT}")["spiders"] == [
        "contacts",
        "messages",
        "qrlogin",
        "qrlogin_redis",
        "qzone_friends",
        "qzone_posts",
        "session_check",
    ]

    database = tmp_path / "creds.sqlite3"
    database_url = f"sqlite:///{database}"
    qr_dir = tmp_path / "qr"
    job, started = schedule(
        scrapyd,
        "login",
        ACCOUNTS,
        {
            "WEBQQ_DATABASE_URL": database_url,
            "WEBQQ_QR_DIR": str(qr_dir),
            "WEBQQ_POLL_INTERVAL": "0.2",
            "WEBQQ_SCANNED_POLL_INTERVAL": "0.1",
            "WEBQQ_SIMULATOR_SCAN_AFTER": "0.3",
            "WEBQQ_SIMULATOR_CONFIRM_AFTER": "0.3",
            "WEBQQ_LOGIN_TIMEOUT": "60",
        },
    )

    wait_finished(scrapyd, job, started)

    # The credentials, tagged with the scrapyd job id.
    stored = {c.account: c for c in list_credentials(database_url=database_url)}
    assert set(stored) == set(ACCOUNTS), tail(scrapyd.output)
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

    secrets = secrets_of(stored.values())
    assert secrets
    for where, text in (("job log", log), ("scrapyd output", scrapyd.output.read_text())):
        leaked = sorted(name for name, value in secrets if value in text)
        assert not leaked, f"secrets in the {where}: {leaked}"
