"""Bad input fails at start, names the setting or argument, and writes nothing (issue 6.5).

Every case runs ``scrapy crawl qrlogin`` and ``scrapy login`` as subprocesses in the project
directory. The working files all point into the test's directory (QR dir, JSON store, the
default SQLite database through XDG_DATA_HOME), so "nothing written" is checked by listing
that directory before and after.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.commands import run_scrapy


def prepare(tmp: Path) -> None:
    """Inputs some cases point at: a regular file, a shared directory, account files."""
    (tmp / "data").mkdir()
    (tmp / "a_file").write_text("not a directory\n", encoding="utf-8")
    (tmp / "empty.txt").write_text("# nobody yet\n\n   \n", encoding="utf-8")
    (tmp / "latin1.txt").write_bytes("jos\xe9\n".encode("latin-1"))
    (tmp / "nul.txt").write_bytes(b"al\x00ice\n")
    shared = tmp / "shared_qr"
    shared.mkdir()
    shared.chmod(0o777)


# (id, extra arguments with {tmp}, the name the message must start with, crawl today ok?)
CASES = [
    ("unknown target", ["-s", "WEBQQ_TARGET=tencnet"], "WEBQQ_TARGET"),
    ("target url without port", ["-s", "WEBQQ_TARGET=http://127.0.0.1"], "WEBQQ_TARGET"),
    ("negative poll interval", ["-s", "WEBQQ_POLL_INTERVAL=-1"], "WEBQQ_POLL_INTERVAL"),
    (
        "negative scanned interval",
        ["-s", "WEBQQ_SCANNED_POLL_INTERVAL=-0.5"],
        "WEBQQ_SCANNED_POLL_INTERVAL",
    ),
    ("empty accounts file", ["-a", "accounts_file={tmp}/empty.txt"], "accounts_file"),
    ("missing accounts file", ["-a", "accounts_file={tmp}/nope.txt"], "accounts_file"),
    ("accounts file is a directory", ["-a", "accounts_file={tmp}"], "accounts_file"),
    ("accounts file not utf-8", ["-a", "accounts_file={tmp}/latin1.txt"], "accounts_file"),
    ("duplicate accounts", ["-a", "accounts=alice,bob,alice"], "accounts"),
    ("qr dir is a file", ["-s", "WEBQQ_QR_DIR={tmp}/a_file"], "WEBQQ_QR_DIR"),
    ("qr dir under a file", ["-s", "WEBQQ_QR_DIR={tmp}/a_file/qr"], "WEBQQ_QR_DIR"),
    ("qr dir writable by all", ["-s", "WEBQQ_QR_DIR={tmp}/shared_qr"], "WEBQQ_QR_DIR"),
    ("json path under a file", ["-s", "WEBQQ_JSON_PATH={tmp}/a_file/s.json"], "WEBQQ_JSON_PATH"),
    ("json path is a directory", ["-s", "WEBQQ_JSON_PATH={tmp}"], "WEBQQ_JSON_PATH"),
    ("malformed database url", ["-s", "WEBQQ_DATABASE_URL=sqlite//creds.db"], "WEBQQ_DATABASE_URL"),
    (
        "unknown database driver",
        ["-s", "WEBQQ_DATABASE_URL=nosuchdb://host/db"],
        "WEBQQ_DATABASE_URL",
    ),
    (
        "sqlite file cannot be created",
        ["-s", "WEBQQ_DATABASE_URL=sqlite:///{tmp}/a_file/creds.db"],
        "WEBQQ_DATABASE_URL",
    ),
    # Issue 11: one validation for every component's settings, and account names.
    ("misspelt setting", ["-s", "WEBQQ_POLL_INTERVALL=3"], "WEBQQ_POLL_INTERVALL"),
    ("session lifetime overflows", ["-s", "WEBQQ_SESSION_LIFETIME=1e12"], "WEBQQ_SESSION_LIFETIME"),
    ("target port out of range", ["-s", "WEBQQ_TARGET=http://127.0.0.1:99999"], "WEBQQ_TARGET"),
    ("log secrets is not tri-state", ["-s", "WEBQQ_LOG_SECRETS=auto"], "WEBQQ_LOG_SECRETS"),
    ("qr page switch", ["-s", "WEBQQ_QR_WEB_ENABLED=sometimes"], "WEBQQ_QR_WEB_ENABLED"),
    ("qr page port", ["-s", "WEBQQ_QR_WEB_PORT=99999"], "WEBQQ_QR_WEB_PORT"),
    ("webhook url", ["-s", "WEBQQ_QR_WEBHOOK_URL=ftp://hooks.example/x"], "WEBQQ_QR_WEBHOOK_URL"),
    ("webhook headers", ["-s", "WEBQQ_QR_WEBHOOK_HEADERS=[1]"], "WEBQQ_QR_WEBHOOK_HEADERS"),
    ("redis url", ["-s", "WEBQQ_REDIS_URL=http://127.0.0.1:6379"], "WEBQQ_REDIS_URL"),
    (
        "contacts admission not an integer",
        ["-s", "WEBQQ_CONTACTS_MAX_ACCOUNTS_IN_FLIGHT=2.5"],
        "WEBQQ_CONTACTS_MAX_ACCOUNTS_IN_FLIGHT",
    ),
    (
        "messages admission negative",
        ["-s", "WEBQQ_MESSAGES_MAX_STARTING=-1"],
        "WEBQQ_MESSAGES_MAX_STARTING",
    ),
    ("account with a newline", ["-a", "accounts=al\nice"], "accounts"),
    ("account with NUL", ["-a", "accounts_file={tmp}/nul.txt"], "accounts_file"),
    ("account name too long", ["-a", "accounts=" + "a" * 256], "accounts"),
    ("account name like an option", ["-a", "accounts=--typo"], "accounts"),
]


def run(command: list[str], extra: list[str], tmp: Path) -> subprocess.CompletedProcess:
    defaults = {
        # Where a run that started would write: all inside tmp, all checked below.
        "WEBQQ_QR_DIR": f"{tmp}/qr",
        "WEBQQ_JSON_PATH": f"{tmp}/store.json",
        "WEBQQ_QR_TERMINAL": "false",
        "WEBQQ_SIMULATOR_SCAN_AFTER": "0.1",
        "WEBQQ_SIMULATOR_CONFIRM_AFTER": "0.1",
    }
    args = [arg.format(tmp=tmp) for arg in extra]
    overridden = {arg.split("=", 1)[0] for arg in args if arg.startswith("WEBQQ_")}
    settings = [
        item
        for name, value in defaults.items()
        if name not in overridden
        for item in ("-s", f"{name}={value}")
    ]
    if not any(arg.startswith("accounts") for arg in args):
        args = ["-a", "accounts=alice", *args]
    return run_scrapy(*command, *args, *settings, data_home=tmp / "data")


def tree(tmp: Path) -> set[str]:
    return {str(path.relative_to(tmp)) for path in tmp.rglob("*")}


def params():
    for case_id, extra, name in CASES:
        yield pytest.param(extra, name, id=case_id)


@pytest.mark.parametrize(("extra", "name"), params())
def test_scrapy_login_rejects_bad_input_in_one_line(tmp_path, extra, name):
    prepare(tmp_path)
    before = tree(tmp_path)
    result = run(["login"], extra, tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"login: error: {name}: "), last
    assert "Traceback" not in result.stderr
    assert tree(tmp_path) == before


@pytest.mark.parametrize(("extra", "name"), params())
def test_scrapy_crawl_rejects_bad_input(tmp_path, extra, name):
    prepare(tmp_path)
    before = tree(tmp_path)
    result = run(["crawl", "qrlogin"], extra, tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert f"{name}: " in result.stderr
    assert "Spider opened" not in result.stderr
    assert tree(tmp_path) == before


def test_scrapy_crawl_reports_bad_input_without_a_traceback(tmp_path):
    prepare(tmp_path)
    result = run(["crawl", "qrlogin"], ["-s", "WEBQQ_TARGET=tencnet"], tmp_path)
    assert result.returncode != 0
    assert "WEBQQ_TARGET: " in result.stderr
    assert "Traceback" not in result.stderr


def test_a_misspelt_setting_suggests_the_known_one(tmp_path):
    prepare(tmp_path)
    result = run(["login"], ["-s", "WEBQQ_POLL_INTERVALL=3"], tmp_path)
    assert "did you mean WEBQQ_POLL_INTERVAL?" in result.stderr.strip().splitlines()[-1]


def test_an_option_after_the_accounts_is_not_an_account(tmp_path):
    prepare(tmp_path)
    before = tree(tmp_path)
    result = run_scrapy("login", "alice", "--typo", data_home=tmp_path / "data")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "--typo" in result.stderr
    assert "Logging in" not in result.stderr
    assert tree(tmp_path) == before


def test_an_undecodable_account_name_is_refused(tmp_path):
    prepare(tmp_path)
    result = run(["login"], ["-a", "accounts=jos\udce9"], tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "login: error: accounts: " in result.stderr
    assert "not UTF-8" in result.stderr


def test_qrlogin_redis_with_a_bad_redis_url_fails_at_start(tmp_path):
    prepare(tmp_path)
    before = tree(tmp_path)
    result = run_scrapy(
        "crawl",
        "qrlogin_redis",
        "-s",
        "WEBQQ_REDIS_URL=redis://127.0.0.1:99999/0",
        "-s",
        f"WEBQQ_QR_DIR={tmp_path}/qr",
        data_home=tmp_path / "data",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "WEBQQ_REDIS_URL: " in result.stderr
    assert "Traceback" not in result.stderr
    assert tree(tmp_path) == before


# Issue 26, point 8: a spider argument never names a file outside the data directory, and
# one that would overwrite an attribute of the spider is refused like any bad argument.
INTERNAL_ARGUMENTS = [
    ("qrlogin", "name", "../../../../escaped"),
    ("qrlogin", "max_answer_bytes", "x"),
    ("qrlogin", "crawler", "x"),
    ("contacts", "crawler", "x"),
    ("messages", "max_answer_bytes", "x"),
    ("session_check", "config", "x"),
    ("qrlogin_redis", "settings", "x"),
]


def test_login_refuses_an_internal_attribute_too(tmp_path):
    prepare(tmp_path)
    result = run(["login"], ["-a", "max_answer_bytes=x"], tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("login: error: max_answer_bytes: not an argument of the qrlogin"), last


def test_a_job_id_with_separators_stays_in_the_unfinished_directory(tmp_path):
    """scrapyd passes ``_job``; a crawl stopped early lists its accounts in a file named
    after it. ``x/../../../../escaped`` wrote that file outside the data directory."""
    prepare(tmp_path)
    data = tmp_path / "data"
    result = run(
        ["crawl", "qrlogin"],
        [
            "-a", "accounts=alice,bob",
            # From data/webqq_scrapy/unfinished/, "qrlogin-x/../../../../" is tmp_path.
            "-a", "_job=x/../../../../escaped",
            # No target answers: the crawl is stopped with both accounts unfinished.
            "-s", "WEBQQ_TARGET=http://127.0.0.1:9",
            "-s", "CLOSESPIDER_TIMEOUT=1",
            "-s", "WEBQQ_RETRY_TIMES=50",
        ],
        tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    unfinished = data / "webqq_scrapy" / "unfinished"
    written = list(unfinished.iterdir())
    outside = [p for p in tmp_path.rglob("*escaped*") if p.parent != unfinished]
    assert not outside, sorted(tree(tmp_path))
    assert len(written) == 1, sorted(tree(tmp_path))
    assert "/" not in written[0].name[len("qrlogin-") :]
    assert written[0].read_text().splitlines()[-2:] == ["alice", "bob"]


# The Qzone spiders' own arguments (docs/qzone.md): one line naming the argument, exit 2,
# nothing written, whatever the value.
QZONE_ARGUMENTS = [
    ("qzone_posts", "owners", "../../../../etc"),
    ("qzone_posts", "owners", "self,,friends"),
    ("qzone_posts", "owners", "99999999999999999999"),
    ("qzone_posts", "owners", "self;rm -rf ~"),
    ("qzone_posts", "owners", "١٢٣٤٥٦"),  # Arabic-Indic digits: int() would take them
    ("qzone_posts", "owners", "12345\x1b[2J"),
    ("qzone_posts", "since", "2024-13-01"),
    ("qzone_posts", "since", "2024-01-01T00:00:00+25:00"),
    ("qzone_posts", "since", "x" * 5000),
    ("qzone_posts", "since", "1e9"),
    ("qzone_posts", "qzone_config", "x"),
    ("qzone_friends", "qzone_config", "x"),
    ("qzone_friends", "_store", "x"),
]


# What the one line says after "ARGUMENT: ", for each case of either list ("" for the Qzone
# values: each has its own reason).
BAD_ARGUMENTS = [
    *(
        pytest.param(spider, argument, value, f"not an argument of the {spider} spider")
        for spider, argument, value in INTERNAL_ARGUMENTS
    ),
    *(pytest.param(*case, "") for case in QZONE_ARGUMENTS),
]


@pytest.mark.parametrize(("spider", "argument", "value", "says"), BAD_ARGUMENTS)
def test_a_bad_spider_argument_is_one_line_and_exit_2(tmp_path, spider, argument, value, says):
    prepare(tmp_path)
    before = tree(tmp_path)
    result = run(["crawl", spider], ["-a", f"{argument}={value}"], tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "Spider opened" not in result.stderr
    named = [line for line in result.stderr.splitlines() if f"{argument}: " in line]
    assert len(named) == 1 and len(named[0]) < 300, result.stderr[-3000:]
    assert f"{argument}: {says}" in named[0]
    assert "\x1b" not in result.stderr
    assert tree(tmp_path) == before
