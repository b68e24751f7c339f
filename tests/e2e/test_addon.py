"""The add-on and the package (issue 16.1): another Scrapy project gets the login from
``pip install`` of the wheel plus ``ADDONS = {"webqq_scrapy.Addon": 500}``.

The end-to-end test builds the wheel from a copy of the package's files, installs it with
pip into a fresh virtual environment (``--system-site-packages`` and a ``.pth`` naming the
running interpreter's site-packages, for Scrapy and the other dependencies, also when the
tests run in a venv; ``--no-deps --no-index --no-build-isolation`` so nothing is
downloaded), and
runs ``scrapy list``, ``scrapy login`` and ``scrapy crawl qrlogin`` in a minimal project of
its own, in a directory outside the checkout, with an environment that cannot import the
checkout (checked: ``webqq_scrapy.__file__`` lies in the virtual environment).
"""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from scrapy import Spider
from scrapy.addons import AddonManager
from scrapy.settings import Settings
from scrapy.utils.conf import build_component_list
from scrapy.utils.misc import load_object
from scrapy.utils.test import get_crawler

from tests.fixtures.scrapyd import clean_env
from tests.settings import project_settings
from webqq_scrapy import addon
from webqq_scrapy import settings as project
from webqq_scrapy.spiders.qrlogin import QRLoginSpider

ROOT = Path(__file__).resolve().parents[2]
ADDONS = {"ADDONS": {"webqq_scrapy.Addon": 500}}


def components(settings: Settings, name: str) -> list[object]:
    """The classes a crawler would build for a component setting, in order."""
    merged = settings.get_component_priority_dict_with_base(name)
    return [load_object(path) for path in build_component_list(merged)]


def test_the_addon_gives_the_same_crawl_as_the_project_settings() -> None:
    with_project = get_crawler(QRLoginSpider, project_settings()).settings
    with_addon = get_crawler(QRLoginSpider, ADDONS).settings
    for name in addon.COMPONENT_SETTINGS:
        assert components(with_addon, name) == components(with_project, name), name
    for name in (*addon.VALUE_SETTINGS, *addon.KEYED_SETTINGS):
        assert with_addon[name] == with_project[name], name
    # Every Scrapy setting of settings.py is either carried by the add-on or left to the
    # project on purpose: a setting added there later cannot be forgotten here.
    scrapy_names = {n for n in dir(project) if n.isupper() and not n.startswith("WEBQQ_")}
    carried = {
        *addon.COMPONENT_SETTINGS,
        *addon.KEYED_SETTINGS,
        *addon.VALUE_SETTINGS,
        *addon.PROJECT_ONLY_SETTINGS,
    }
    assert scrapy_names == carried


def test_the_projects_other_spiders_are_left_alone() -> None:
    plain = get_crawler(Spider, {}).settings
    with_addon = get_crawler(Spider, ADDONS).settings
    for name in addon.COMPONENT_SETTINGS:
        assert components(with_addon, name) == components(plain, name), name
    for name in (*addon.VALUE_SETTINGS, *addon.KEYED_SETTINGS):
        assert with_addon[name] == plain[name], name


def test_the_projects_own_settings_win() -> None:
    redirect = "scrapy.downloadermiddlewares.redirect.RedirectMiddleware"
    settings = get_crawler(
        QRLoginSpider,
        {
            **ADDONS,
            "DOWNLOAD_DELAY": 1.5,
            "TELNETCONSOLE_ENABLED": True,
            "DOWNLOADER_MIDDLEWARES": {redirect: 600},
        },
    ).settings
    assert settings.getfloat("DOWNLOAD_DELAY") == 1.5
    assert settings.getbool("TELNETCONSOLE_ENABLED")
    assert load_object(redirect) in components(settings, "DOWNLOADER_MIDDLEWARES")
    # …while the add-on's own components are still there.
    assert settings.getint("CONCURRENT_ITEMS") == 1
    assert load_object("webqq_scrapy.middlewares.TargetRoutingMiddleware") in components(
        settings, "DOWNLOADER_MIDDLEWARES"
    )


def test_the_addon_adds_the_spiders_before_the_spider_loader_is_built() -> None:
    settings = Settings({**ADDONS, "SPIDER_MODULES": ["otherproj.spiders"]})
    AddonManager.load_pre_crawler_settings(settings)
    assert settings.getlist("SPIDER_MODULES") == ["otherproj.spiders", "webqq_scrapy.spiders"]


def test_importing_the_package_imports_no_scrapy() -> None:
    code = "import sys, webqq_scrapy; print('scrapy' in sys.modules, webqq_scrapy.Addon)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.split()[0] == "False", result.stdout


# --- the wheel in a fresh virtual environment, used by a separate project -----------------


def pip_offline(python: str, command: str) -> list[str]:
    """pip without downloads: no dependencies, no index, no isolated build environment."""
    return [python, "-m", "pip", command, "-q", "--no-deps", "--no-index", "--no-build-isolation"]


def build_wheel(tmp: Path) -> Path:
    """``pip wheel`` of a copy of the files the package is built from (the checkout stays
    clean of build/ and *.egg-info)."""
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "webqq_scrapy",
        source / "webqq_scrapy",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    dist = tmp / "dist"
    subprocess.run(
        [*pip_offline(sys.executable, "wheel"), "-w", str(dist), str(source)],
        check=True,
        capture_output=True,
        env=clean_env(),
    )
    (wheel,) = dist.glob("webqq_scrapy-*.whl")
    # Every file of the package is in it (modules and data files such as the QR page's),
    # and nothing else but its metadata.
    with zipfile.ZipFile(wheel) as archive:
        packed = {n for n in archive.namelist() if ".dist-info/" not in n}
    assert packed == {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "webqq_scrapy").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    return wheel


OTHER_SPIDER = '''"""The project's own spider, which the add-on must leave alone."""
import scrapy


class OtherSpider(scrapy.Spider):
    name = "other"

    async def start(self):
        yield {"site": "example", "cookies": "kept as they are"}
'''

OTHER_SETTINGS = '''"""A project that only enables the add-on."""
BOT_NAME = "otherproj"
SPIDER_MODULES = ["otherproj.spiders"]
ADDONS = {"webqq_scrapy.Addon": 500}
'''


def see_the_running_packages(python: Path) -> None:
    """Let the new venv import the packages of the interpreter running the tests.

    ``--system-site-packages`` gives it the *base* interpreter's packages; when the tests
    themselves run in a venv (the README's set-up), Scrapy and the others are in that venv,
    not in the base. A ``.pth`` file in the new venv's site-packages names the running
    interpreter's site-packages directories: they come after the new venv's own (where the
    wheel is installed), and their own ``.pth`` files are not read, so an editable install
    of the checkout stays invisible."""
    where = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    )
    running = [p for p in site.getsitepackages() if Path(p).is_dir()]
    Path(where.stdout.strip(), "running-interpreter.pth").write_text(
        "".join(f"{p}\n" for p in running)
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(python of the new venv, the other project's directory, its environment)."""
    tmp = tmp_path_factory.mktemp("addon")
    wheel = build_wheel(tmp)
    venv = tmp / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
        check=True,
        capture_output=True,
    )
    python = venv / "bin" / "python"
    see_the_running_packages(python)
    subprocess.run(
        [*pip_offline(str(python), "install"), str(wheel)],
        check=True,
        capture_output=True,
        env=clean_env(),
    )
    other = tmp / "otherproj"
    (other / "otherproj" / "spiders").mkdir(parents=True)
    (other / "scrapy.cfg").write_text("[settings]\ndefault = otherproj.settings\n")
    (other / "otherproj" / "__init__.py").write_text("")
    (other / "otherproj" / "spiders" / "__init__.py").write_text("")
    (other / "otherproj" / "spiders" / "other.py").write_text(OTHER_SPIDER)
    (other / "otherproj" / "settings.py").write_text(OTHER_SETTINGS)
    home = tmp / "home"
    home.mkdir()
    env = clean_env(HOME=str(home), XDG_DATA_HOME=str(home / "data"))
    return python, other, env


def run(installed: tuple[Path, Path, dict[str, str]], *args: str) -> subprocess.CompletedProcess:
    python, other, env = installed
    return subprocess.run(
        [str(python), *args], cwd=other, env=env, capture_output=True, text=True, timeout=180
    )


def test_the_installed_package_runs_from_a_separate_project(installed) -> None:
    python, other, _ = installed
    where = run(installed, "-c", "import webqq_scrapy; print(webqq_scrapy.__file__)")
    assert where.returncode == 0, where.stderr
    package_file = Path(where.stdout.strip())
    assert package_file.is_relative_to(python.parent.parent), package_file
    assert not package_file.is_relative_to(ROOT)
    assert not other.is_relative_to(ROOT)

    # The project's own spider runs as without the add-on: no pipeline, no store, no
    # redaction of its items.
    mine = run(installed, "-m", "scrapy", "crawl", "other", "-O", str(other / "other.json"))
    assert mine.returncode == 0, mine.stderr[-3000:]
    assert "Enabled item pipelines:\n[]" in mine.stderr
    assert json.loads((other / "other.json").read_text())[0]["cookies"] == "kept as they are"
    assert not (Path(installed[2]["XDG_DATA_HOME"]) / "webqq_scrapy").exists()

    # (`scrapy list` would not show the spiders: Scrapy 2.19's list command builds its
    # spider loader without the add-ons' pre-crawler settings; crawl and login do.)
    # `scrapy login` comes from the package's entry point, not from the project.
    commands = run(installed, "-m", "scrapy")
    for command in ("login", "creds", "send", "contacts", "messages"):
        assert f"  {command} " in commands.stdout, commands.stdout

    login = run(installed, "-m", "scrapy", "login", "alice", "bob")
    assert login.returncode == 0, login.stderr[-3000:]
    assert login.stderr.splitlines()[-1] == "login: 2 accounts: ok 2"
    assert "Enabled addons:\n[webqq_scrapy.Addon]" in login.stderr
    assert "webqq_scrapy.pipelines.DatabasePipeline" in login.stderr
    assert "Traceback" not in login.stderr

    feed = other / "credentials.json"
    crawl = run(
        installed, "-m", "scrapy", "crawl", "qrlogin", "-a", "accounts=carol", "-O", str(feed)
    )
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    assert [record["account"] for record in json.loads(feed.read_text())] == ["carol"]

    # The default SQLite store of that user holds all three.
    listing = run(installed, "-m", "scrapy", "creds", "list")
    assert listing.returncode == 0, listing.stderr
    for account in ("alice", "bob", "carol"):
        assert account in listing.stdout, listing.stdout

    # Every command of the package runs there: send (nothing holds alice: exit 1, said so),
    # and the read-back commands (nothing crawled yet: exit 1, said so).
    send = run(installed, "-m", "scrapy", "send", "alice", "buddy:5", "hello")
    assert send.returncode == 1, send.stderr
    assert "no running 'messages' spider holds alice's session" in send.stderr
    for command in ("contacts", "messages"):
        shown = run(installed, "-m", "scrapy", command, "alice")
        assert shown.returncode == 1, shown.stderr
        assert f"scrapy crawl {command} -a accounts=alice" in shown.stderr
