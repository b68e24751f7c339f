"""All ``WEBQQ_*`` settings gathered and validated in one place (``WebQQConfig``)."""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from webqq_scrapy import settings as defaults

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

TARGET_SIMULATOR = "simulator"
TARGET_TENCENT = "tencent"


class SettingError(ValueError):
    """A WEBQQ_* setting (or spider argument) has a value the project cannot use."""

    def __init__(self, name: str, problem: str, value: object) -> None:
        self.name = name
        super().__init__(f"{name}: {problem} (got {value!r})")


def _number(
    settings: BaseSettings, name: str, *, positive: bool = True, integer: bool = False
) -> float:
    raw = settings.get(name, getattr(defaults, name))
    try:
        value = int(raw) if integer else float(raw)
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise SettingError(name, f"must be {kind}", raw) from None
    if integer and str(raw).strip() != str(value) and not isinstance(raw, int):
        raise SettingError(name, "must be an integer", raw)
    if value != value or value in (float("inf"), float("-inf")):
        raise SettingError(name, "must be a finite number", raw)
    if positive and value <= 0:
        raise SettingError(name, "must be greater than 0", raw)
    if not positive and value < 0:
        raise SettingError(name, "must not be negative", raw)
    return value


def _tristate(settings: BaseSettings, name: str) -> bool | None:
    raw = settings.get(name, getattr(defaults, name))
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text == "auto":
        return None
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise SettingError(name, 'must be "auto", true or false', raw)


def parse_target(raw: object) -> tuple[str, str | None]:
    """Return (kind, simulator_url): kind is "simulator", "tencent" or "url"."""
    text = str(raw).strip()
    if text in (TARGET_SIMULATOR, TARGET_TENCENT):
        return text, None
    parts = urlsplit(text)
    if parts.scheme == "http" and parts.hostname and parts.port and parts.path in ("", "/"):
        return "url", f"http://{parts.hostname}:{parts.port}"
    raise SettingError(
        "WEBQQ_TARGET", 'must be "simulator", "tencent" or a URL like http://127.0.0.1:8000', raw
    )


def check_qr_dir(path: Path) -> None:
    """Raise SettingError unless WEBQQ_QR_DIR can hold the QR files; create nothing.

    The same rules as ``qr.ensure_qr_dir`` applies when the first QR arrives (a directory
    of this user, not writable by others), checked before anything runs.
    """
    name = "WEBQQ_QR_DIR"
    path = path.expanduser().absolute()
    if path.exists():
        info = path.stat()
        if not stat.S_ISDIR(info.st_mode):
            raise SettingError(name, "is not a directory", str(path))
        if info.st_uid != os.getuid():
            raise SettingError(name, "belongs to another user", str(path))
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise SettingError(
                name,
                f"is writable by other users (mode {stat.S_IMODE(info.st_mode):o})",
                str(path),
            )
        if not os.access(path, os.W_OK | os.X_OK):
            raise SettingError(name, "is not writable", str(path))
        return
    check_creatable(name, path)


def check_creatable(name: str, path: Path) -> None:
    """Raise SettingError unless the missing directories up to ``path`` can be created."""
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise SettingError(name, f"cannot be created: {ancestor} is not a directory", str(path))
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise SettingError(name, f"cannot be created: {ancestor} is not writable", str(path))


def default_qr_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"webqq_scrapy-{os.getuid()}" / "qr"


@dataclass(frozen=True)
class WebQQConfig:
    target: str  # "simulator", "tencent" or "url"
    simulator_url: str | None
    poll_interval: float
    scanned_poll_interval: float
    max_qr_refreshes: int
    login_timeout: float
    retry_times: int
    retry_backoff: float
    session_lifetime: float
    qr_dir: Path
    qr_terminal: bool | None
    simulator_scan_after: float
    simulator_confirm_after: float
    simulator_qr_lifetime: float
    log_secrets: bool

    @property
    def scheme(self) -> str:
        """The historical hosts are https; the simulator is reached as an http proxy."""
        return "https" if self.target == TARGET_TENCENT else "http"

    @property
    def target_label(self) -> str:
        return self.simulator_url if self.target == "url" else self.target

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> WebQQConfig:
        target, url = parse_target(settings.get("WEBQQ_TARGET", defaults.WEBQQ_TARGET))
        qr_dir_raw = settings.get("WEBQQ_QR_DIR", defaults.WEBQQ_QR_DIR)
        qr_dir = Path(str(qr_dir_raw)).expanduser() if qr_dir_raw else default_qr_dir()
        return cls(
            target=target,
            simulator_url=url,
            poll_interval=_number(settings, "WEBQQ_POLL_INTERVAL"),
            scanned_poll_interval=_number(settings, "WEBQQ_SCANNED_POLL_INTERVAL"),
            max_qr_refreshes=int(
                _number(settings, "WEBQQ_MAX_QR_REFRESHES", positive=False, integer=True)
            ),
            login_timeout=_number(settings, "WEBQQ_LOGIN_TIMEOUT"),
            retry_times=int(_number(settings, "WEBQQ_RETRY_TIMES", positive=False, integer=True)),
            retry_backoff=_number(settings, "WEBQQ_RETRY_BACKOFF", positive=False),
            session_lifetime=_number(settings, "WEBQQ_SESSION_LIFETIME"),
            qr_dir=qr_dir,
            qr_terminal=_tristate(settings, "WEBQQ_QR_TERMINAL"),
            simulator_scan_after=_number(settings, "WEBQQ_SIMULATOR_SCAN_AFTER", positive=False),
            simulator_confirm_after=_number(
                settings, "WEBQQ_SIMULATOR_CONFIRM_AFTER", positive=False
            ),
            simulator_qr_lifetime=_number(settings, "WEBQQ_SIMULATOR_QR_LIFETIME"),
            log_secrets=bool(_tristate(settings, "WEBQQ_LOG_SECRETS")),
        )
