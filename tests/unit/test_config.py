"""Tests for webqq_scrapy.config: defaults and start-time validation."""

from __future__ import annotations

import pytest
from scrapy.settings import Settings

from webqq_scrapy.config import SettingError, WebQQConfig


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


def test_simulator_strict_is_read_as_a_boolean():
    for raw, strict in (("true", True), ("0", False), (True, True)):
        config = WebQQConfig.from_settings(Settings({"WEBQQ_SIMULATOR_STRICT": raw}))
        assert config.simulator_strict is strict
