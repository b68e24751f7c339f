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


# --- storage (WEBQQ_JSON_PATH, WEBQQ_DATABASE_*, WEBQQ_STORE_*) ---------------------------
# SQLAlchemy and webqq_scrapy.store are imported where they are used: the crawl's other
# components read this module without loading the database layer.

if TYPE_CHECKING:
    from sqlalchemy.engine import URL


def check_writable_file(name: str, path: Path) -> Path:
    """Raise SettingError unless ``path`` is a file that can be created or replaced."""
    if path.is_dir():
        raise SettingError(name, "is a directory, not a file", str(path))
    check_creatable(name, path)
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise SettingError(name, "is not writable: no read and write permission", str(path))
    return path


def parse_database_url(raw: object, name: str = "WEBQQ_DATABASE_URL") -> URL:
    """A usable SQLAlchemy URL (its dialect and driver importable), or SettingError."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from webqq_scrapy.store.sql import redact_url, sqlite_path

    text = str(raw or "").strip()
    try:
        url = make_url(text)
    except ArgumentError:
        raise SettingError(
            name,
            "is not a SQLAlchemy URL like sqlite:////path/creds.sqlite3 or "
            "postgresql+psycopg://user:password@host/dbname",
            redact_url(text),
        ) from None
    try:
        url.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError) as exc:
        hint = ""
        if url.get_backend_name() == "postgresql":
            hint = "; for PostgreSQL use postgresql+psycopg://"
        raise SettingError(
            name, f"has no usable database driver ({exc}){hint}", redact_url(url)
        ) from None
    path = sqlite_path(url)
    if path is not None:
        check_writable_file(name, path)
    return url


@dataclass(frozen=True)
class StorageConfig:
    """The ``WEBQQ_*`` storage settings, read and validated together."""

    json_path: Path | None
    database_url: URL | None  # None: the database is switched off
    retry_times: int
    retry_backoff: float

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> StorageConfig:
        from webqq_scrapy.store import default_database_url

        raw_json = settings.get("WEBQQ_JSON_PATH", defaults.WEBQQ_JSON_PATH)
        json_path = None
        if raw_json:
            json_path = check_writable_file("WEBQQ_JSON_PATH", Path(str(raw_json)).expanduser())
        try:
            enabled = settings.getbool("WEBQQ_DATABASE_ENABLED", defaults.WEBQQ_DATABASE_ENABLED)
        except ValueError:
            name = "WEBQQ_DATABASE_ENABLED"
            raise SettingError(name, "must be true or false", settings[name]) from None
        database_url = None
        if enabled:
            raw_url = settings.get("WEBQQ_DATABASE_URL", defaults.WEBQQ_DATABASE_URL)
            database_url = parse_database_url(raw_url or default_database_url())
        return cls(
            json_path=json_path,
            database_url=database_url,
            retry_times=int(
                _number(settings, "WEBQQ_STORE_RETRY_TIMES", positive=False, integer=True)
            ),
            retry_backoff=_number(settings, "WEBQQ_STORE_RETRY_BACKOFF", positive=False),
        )
