"""Tests for webqq_scrapy.config: defaults and start-time validation."""

from __future__ import annotations

import pytest
from scrapy.settings import Settings

from webqq_scrapy.config import QzoneConfig, SettingError, WebQQConfig


def test_defaults_are_the_documented_ones():
    config = WebQQConfig.from_settings(Settings())
    assert config.target == "simulator"
    assert config.poll_interval == 2.0
    assert config.scanned_poll_interval == 1.0
    assert config.max_qr_refreshes == 5
    assert config.login_timeout == 600.0
    assert config.session_lifetime == 2 * 24 * 3600
    assert config.scheme == "http"
    assert config.simulator_strict is False  # the real service's leniency (docs/simulator.md)


def test_url_target_is_normalised():
    config = WebQQConfig.from_settings(Settings({"WEBQQ_TARGET": "http://127.0.0.1:8123/"}))
    assert (config.target, config.simulator_url) == ("url", "http://127.0.0.1:8123")


def test_tencent_target_uses_https():
    assert WebQQConfig.from_settings(Settings({"WEBQQ_TARGET": "tencent"})).scheme == "https"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEBQQ_TARGET", "tencnet"),
        ("WEBQQ_TARGET", "https://127.0.0.1:8000"),
        ("WEBQQ_POLL_INTERVAL", "-1"),
        ("WEBQQ_POLL_INTERVAL", "soon"),
        ("WEBQQ_SCANNED_POLL_INTERVAL", "0"),
        ("WEBQQ_MAX_QR_REFRESHES", "-2"),
        ("WEBQQ_MAX_QR_REFRESHES", "2.5"),
        ("WEBQQ_MAX_ACCOUNTS_IN_FLIGHT", "-1"),
        ("WEBQQ_MAX_ACCOUNTS_IN_FLIGHT", "2.5"),
        ("WEBQQ_ADMISSION_RATE", "-1"),
        ("WEBQQ_ADMISSION_RATE", "fast"),
        ("WEBQQ_ADMISSION_MAX_LAG", "-0.1"),
        ("WEBQQ_WAIT_TICK", "-0.05"),
        ("WEBQQ_WAIT_TICK", "20"),
        ("WEBQQ_CONTACTS_MAX_ACCOUNTS_IN_FLIGHT", "-1"),
        ("WEBQQ_CONTACTS_MAX_ACCOUNTS_IN_FLIGHT", "1e7"),
        ("WEBQQ_LOGIN_TIMEOUT", "nan"),
        ("WEBQQ_QR_TERMINAL", "maybe"),
        ("WEBQQ_SIMULATOR_STRICT", "sometimes"),
    ],
)
def test_bad_values_fail_with_the_setting_name(name, value):
    with pytest.raises(SettingError) as info:
        WebQQConfig.from_settings(Settings({name: value}))
    assert str(info.value).startswith(f"{name}: ")


def test_path_settings_are_absolute_and_of_the_right_kind(tmp_path, monkeypatch):
    """WEBQQ_UNFINISHED_PATH names a file, WEBQQ_QZONE_PICTURES_DIR a directory: the other
    kind is refused naming the setting; a relative path is taken from where the crawl
    starts; empty: off."""
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    monkeypatch.chdir(tmp_path)
    wrong_kind = (
        (WebQQConfig, "WEBQQ_UNFINISHED_PATH", "dir"),
        (QzoneConfig, "WEBQQ_QZONE_PICTURES_DIR", "file"),
    )
    for config, name, wrong in wrong_kind:
        with pytest.raises(SettingError, match=f"^{name}: is "):
            config.from_settings(Settings({name: wrong}))
    unfinished = WebQQConfig.from_settings(Settings({"WEBQQ_UNFINISHED_PATH": "u/left.txt"}))
    assert unfinished.unfinished_path == tmp_path / "u" / "left.txt"
    pictures = QzoneConfig.from_settings(Settings({"WEBQQ_QZONE_PICTURES_DIR": "~/p"}))
    assert pictures.pictures_dir is not None and pictures.pictures_dir.is_absolute()
    off = WebQQConfig.from_settings(Settings({"WEBQQ_UNFINISHED_PATH": " "}))
    assert off.unfinished_path is None
    assert QzoneConfig.from_settings(Settings()).pictures_dir is None


def test_simulator_strict_is_read_as_a_boolean():
    for raw, strict in (("true", True), ("0", False), (True, True)):
        config = WebQQConfig.from_settings(Settings({"WEBQQ_SIMULATOR_STRICT": raw}))
        assert config.simulator_strict is strict


# --- one reader, one rule (issue 23) ------------------------------------------------------


def test_only_config_reads_webqq_settings():
    """A component that read WEBQQ_* itself would skip its validation and its default: the
    settings are read by config.py (its *Config classes) and nowhere else."""
    import re
    from pathlib import Path

    import webqq_scrapy

    package = Path(webqq_scrapy.__file__).parent
    read = re.compile(r"""(settings|defaults)\s*(\.get\w*\(\s*|\.)["']?WEBQQ_|environ.*WEBQQ_""")
    readers = sorted(
        f"{path.relative_to(package)}:{number}"
        for path in package.rglob("*.py")
        if path.name not in ("config.py", "settings.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if read.search(line)
    )
    assert readers == []


def test_credentials_are_read_from_the_store_the_database_pipeline_writes(tmp_path):
    """With WEBQQ_JSON_PATH and the database on (no URL), both stores are written; the
    database is the one read, the one a data spider also writes its records to."""
    from webqq_scrapy.config import StorageConfig, credentials_source
    from webqq_scrapy.store import default_database_url

    json_path = str(tmp_path / "creds.json")
    both = Settings({"WEBQQ_JSON_PATH": json_path})
    storage = StorageConfig.from_settings(both)
    source, label = credentials_source(both)
    assert storage.json_path is not None and storage.database_url is not None
    assert source == {"database_url": storage.database_url}
    assert label == default_database_url()
    json_only = Settings({"WEBQQ_JSON_PATH": json_path, "WEBQQ_DATABASE_ENABLED": False})
    assert credentials_source(json_only) == ({"json_path": json_path}, json_path)
    with pytest.raises(SettingError, match=r"^WEBQQ_DATABASE_ENABLED: no store to read"):
        credentials_source(Settings({"WEBQQ_DATABASE_ENABLED": False}))
    # A command's option wins.
    assert credentials_source(both, json_path="x.json") == ({"json_path": "x.json"}, "x.json")


def test_storage_config_is_parsed_once_per_crawl(tmp_path):
    from webqq_scrapy.config import StorageConfig

    settings = Settings({"WEBQQ_JSON_PATH": str(tmp_path / "creds.json")})
    assert StorageConfig.of(settings) is not StorageConfig.of(settings)  # not frozen yet
    settings.freeze()
    assert StorageConfig.of(settings) is StorageConfig.of(settings)


def test_validate_all_creates_nothing(tmp_path, monkeypatch):
    """Even when the predictable default QR directory is taken by someone else, checking
    the settings only picks the fallback's name; the directory is made with the first QR."""
    import os

    from webqq_scrapy import config

    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(config.tempfile, "gettempdir", lambda: str(tmp_path))
    config._fallback_qr_dir.cache_clear()
    taken = tmp_path / f"webqq_scrapy-{os.getuid()}"
    taken.mkdir(mode=0o777)
    taken.chmod(0o777)  # not safely ours
    before = sorted(tmp_path.iterdir())
    try:
        checked = config.validate_all(Settings({"WEBQQ_DATABASE_ENABLED": False}))
    finally:
        config._fallback_qr_dir.cache_clear()
    assert checked.qr_dir_default
    assert checked.qr_dir.parent.parent == tmp_path and checked.qr_dir.parent != taken
    assert sorted(tmp_path.iterdir()) == before
