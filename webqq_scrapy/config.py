"""The only reader of ``WEBQQ_*`` settings: one typed, validated dataclass per component.

``WebQQConfig`` (the login and its target), ``StorageConfig`` (the stores), ``QRPageConfig``
and ``WebhookConfig`` (QR delivery), ``RedisConfig`` (the Redis feed). Each
``from_settings`` raises :class:`SettingError`, whose message starts with the setting's
name and says what it accepts. :func:`validate_all` runs every one of them, plus a check for
``WEBQQ_*`` names nobody reads (a misspelling, with the closest known name suggested), so
``scrapy crawl``, ``scrapy login`` and scrapyd jobs fail before anything starts. Booleans
accept the same spellings everywhere: true/false, 1/0, yes/no, on/off.
"""

from __future__ import annotations

import difflib
import functools
import logging
import math
import os
import re
import secrets
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from webqq_scrapy import settings as defaults
from webqq_scrapy.dirs import ancestors_problem, qr_dir_problem
from webqq_scrapy.protocol.apps import APPS
from webqq_scrapy.protocol.codes import QR_LIFETIME
from webqq_scrapy.secret_settings import (
    FILE_SUFFIX,
    SECRET_SETTINGS,
    SecretSourceError,
    resolve,
)

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

TARGET_SIMULATOR = "simulator"
TARGET_TENCENT = "tencent"


_UNSAFE_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def file_name_part(text: str, limit: int = 100) -> str:
    """``text`` (a spider name, a scrapyd job id: it may come from a spider argument) made
    safe as a part of one file name: every character but ``[A-Za-z0-9._-]`` becomes ``_``
    (no separator, NUL or control character is left), no leading dot, at most ``limit``
    characters; never empty."""
    return _UNSAFE_IN_FILE_NAME.sub("_", text).lstrip(".")[:limit] or "_"


class SettingError(ValueError):
    """A WEBQQ_* setting (or spider argument) has a value the project cannot use."""

    def __init__(self, name: str, problem: str, value: object) -> None:
        self.name = name
        super().__init__(f"{name}: {problem} (got {value!r})")


# The largest value any duration setting may take (a day, or a year for the session
# lifetime): beyond it a typo (1e12) would overflow dates or never end.
DAY = 24 * 3600.0
MAXIMA: dict[str, float] = {
    "WEBQQ_POLL_INTERVAL": 3600,
    "WEBQQ_QR_WEB_GRACE": 3600,
    "WEBQQ_SCANNED_POLL_INTERVAL": 3600,
    "WEBQQ_MAX_QR_REFRESHES": 1000,
    "WEBQQ_LOGIN_TIMEOUT": DAY,
    "WEBQQ_MAX_ACCOUNTS_IN_FLIGHT": 1_000_000,
    "WEBQQ_ADMISSION_RATE": 1_000_000,
    "WEBQQ_ADMISSION_MAX_LAG": 3600,
    "WEBQQ_WAIT_TICK": 10,
    "WEBQQ_ADMISSION_CPU_SHARE": 64,
    "WEBQQ_ADMISSION_MAX_WAIT": 3600,
    "WEBQQ_CONTACTS_MAX_ACCOUNTS_IN_FLIGHT": 1_000_000,
    "WEBQQ_MESSAGES_MAX_STARTING": 1_000_000,
    "WEBQQ_MESSAGES_STOP_WAIT": 3600,
    "WEBQQ_QZONE_RECHECK_POSTS": 1_000_000,
    "WEBQQ_QZONE_RATE_LIMIT_WAIT": 3600,
    "WEBQQ_QZONE_RATE_LIMIT_TRIES": 100,
    "WEBQQ_QZONE_TIMEOUT": 7 * DAY,
    "WEBQQ_RETRY_TIMES": 100,
    "WEBQQ_RETRY_BACKOFF": 3600,
    "WEBQQ_SESSION_LIFETIME": 366 * DAY,
    "WEBQQ_SIMULATOR_SCAN_AFTER": DAY,
    "WEBQQ_SIMULATOR_CONFIRM_AFTER": DAY,
    "WEBQQ_SIMULATOR_QR_LIFETIME": DAY,
    "WEBQQ_STORE_RETRY_TIMES": 100,
    "WEBQQ_STORE_RETRY_BACKOFF": 3600,
    "WEBQQ_QR_WEBHOOK_RETRIES": 100,
    "WEBQQ_QR_WEBHOOK_BACKOFF": 3600,
    "WEBQQ_QR_WEBHOOK_TIMEOUT": 3600,
    "WEBQQ_REDIS_BATCH_SIZE": 10000,
    "WEBQQ_REDIS_MAX_IN_FLIGHT": 1_000_000,
    "WEBQQ_REDIS_IDLE_CLOSE": DAY,
    "WEBQQ_REDIS_LEASE_MARGIN": DAY,
    "WEBQQ_REDIS_HEARTBEAT": DAY,
    "WEBQQ_GC_THRESHOLD": 10_000_000,
    "WEBQQ_STORE_GROUP_DELAY": 10,
    "WEBQQ_STORE_GROUP_SIZE": 1_000_000,
}
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def _raw(settings: BaseSettings, name: str) -> Any:
    value = settings.get(name, getattr(defaults, name))
    return _secret(settings, name, value) if name in SECRET_SETTINGS else value


def _secret(settings: BaseSettings, name: str, value: Any) -> Any:
    """A secret setting's value from ``NAME``, ``NAME_FILE`` or ``${VAR}`` references
    (webqq_scrapy.secret_settings): never on the command line."""
    try:
        file_path = settings.get(name + FILE_SUFFIX, "")
        return resolve(name, value, file_path, getattr(defaults, name))
    except SecretSourceError as exc:
        raise SettingError(exc.name, exc.problem, "…") from None


def secret_setting(settings: BaseSettings, name: str) -> Any:
    """The value of the secret setting ``name`` (SECRET_SETTINGS) wherever it comes from."""
    return _raw(settings, name)


def _number(
    settings: BaseSettings, name: str, *, positive: bool = True, integer: bool = False
) -> float:
    raw = _raw(settings, name)
    kind = "an integer" if integer else "a number"
    if isinstance(raw, bool):
        raise SettingError(name, f"must be {kind}", raw)
    try:
        value = int(str(raw).strip()) if integer else float(raw)
    except (TypeError, ValueError):
        raise SettingError(name, f"must be {kind}", raw) from None
    if not math.isfinite(value):
        raise SettingError(name, "must be a finite number", raw)
    if positive and value <= 0:
        raise SettingError(name, "must be greater than 0", raw)
    if not positive and value < 0:
        raise SettingError(name, "must not be negative", raw)
    maximum = MAXIMA.get(name)
    if maximum is not None and value > maximum:
        raise SettingError(name, f"must be at most {maximum:g}", raw)
    return value


def _count(settings: BaseSettings, name: str, *, positive: bool = True) -> int:
    """A whole number setting (``_number`` with ``integer=True``), as an int."""
    return int(_number(settings, name, positive=positive, integer=True))


def read_bool(settings: BaseSettings, name: str) -> bool:
    value = _tristate(settings, name, auto=False)
    assert value is not None
    return value


def _tristate(settings: BaseSettings, name: str, *, auto: bool = True) -> bool | None:
    raw = _raw(settings, name)
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    text = str(raw).strip().lower()
    if auto and text == "auto":
        return None
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    accepted = "true or false (also 1/0, yes/no, on/off)"
    raise SettingError(name, f'must be "auto", {accepted}' if auto else f"must be {accepted}", raw)


def _optional_text(settings: BaseSettings, name: str) -> str:
    """The setting as text, stripped; "" when it is empty or None (the feature is off)."""
    return str(_raw(settings, name) or "").strip()


def _text(settings: BaseSettings, name: str) -> str:
    value = _optional_text(settings, name)
    if not value:
        raise SettingError(name, "must not be empty", value)
    return value


def _port(settings: BaseSettings, name: str) -> int:
    raw = _raw(settings, name)
    try:
        port = int(str(raw).strip())
    except ValueError:
        raise SettingError(name, "must be an integer", raw) from None
    if isinstance(raw, bool) or not 0 <= port <= 65535:
        raise SettingError(name, "must be 0 (a free port) to 65535", raw)
    return port


def target_given(settings: BaseSettings) -> bool:
    """WEBQQ_TARGET was chosen rather than left at the shipped default: set to anything but
    "simulator", or given above the project's settings (``-s`` on the command line, a
    spider's custom settings, a scrapyd job's settings)."""
    from scrapy.settings import SETTINGS_PRIORITIES

    raw = settings.get("WEBQQ_TARGET", defaults.WEBQQ_TARGET)
    if str(raw).strip() != defaults.WEBQQ_TARGET:
        return True
    return (settings.getpriority("WEBQQ_TARGET") or 0) > SETTINGS_PRIORITIES["project"]


def target_of(settings: BaseSettings) -> str | None:
    """The kind of WEBQQ_TARGET ("simulator", "tencent" or "url"), or None when it is not
    valid (validate_all / WebQQConfig report that); for code that runs before the config."""
    try:
        return parse_target(settings.get("WEBQQ_TARGET", defaults.WEBQQ_TARGET))[0]
    except SettingError:
        return None


def parse_target(raw: object) -> tuple[str, str | None]:
    """Return (kind, simulator_url): kind is "simulator", "tencent" or "url"."""
    text = str(raw).strip()
    if text in (TARGET_SIMULATOR, TARGET_TENCENT):
        return text, None
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme == "http" and parts.hostname and port and parts.path in ("", "/"):
        return "url", f"http://{parts.hostname}:{port}"
    raise SettingError(
        "WEBQQ_TARGET", 'must be "simulator", "tencent" or a URL like http://127.0.0.1:8000', raw
    )


def read_app(settings: BaseSettings) -> str:
    """WEBQQ_APP: the name of a row of the ptlogin2 app table (docs/apps.md)."""
    raw = settings.get("WEBQQ_APP", defaults.WEBQQ_APP)
    name = str(raw).strip()
    if name not in APPS:
        raise SettingError("WEBQQ_APP", f"must be one of {', '.join(sorted(APPS))}", raw)
    return name


def check_qr_dir(path: Path) -> None:
    """Raise SettingError unless WEBQQ_QR_DIR can hold the QR files; create nothing.

    The same rules as ``qr.ensure_qr_dir`` applies when the first QR arrives (a directory
    of this user, not writable by others, on a path no other user controls), checked
    before anything runs.
    """
    name = "WEBQQ_QR_DIR"
    path = path.expanduser().absolute()
    problem = ancestors_problem(path)
    if problem is None and path.exists():
        problem = qr_dir_problem(path)
        if problem is None and not os.access(path, os.W_OK | os.X_OK):
            problem = "is not writable"
    if problem is not None:
        raise SettingError(name, problem, str(path))
    if not path.exists():
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
    """Where the QR files go when WEBQQ_QR_DIR is empty.

    The per-user runtime directory (``$XDG_RUNTIME_DIR/webqq_scrapy/qr``, on a systemd
    machine ``/run/user/<uid>``, which no other user can enter) when there is one; else
    ``<temp dir>/webqq_scrapy-<uid>/qr``. That name is predictable under a shared /tmp: when
    another user got there first (the directory exists and is not safely ours), a fresh
    unpredictable ``<temp dir>/webqq_scrapy-<uid>-<random>/qr`` is used for this process
    instead of refusing to start.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime) and _private_dir(Path(runtime)):
        return Path(runtime) / "webqq_scrapy" / "qr"
    base = Path(tempfile.gettempdir()) / f"webqq_scrapy-{os.getuid()}"
    if not os.path.lexists(base) or _private_dir(base):
        return base / "qr"
    return _fallback_qr_dir()


def _private_dir(path: Path) -> bool:
    """A real directory (not a link) of the current user that only it can write to."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


@functools.cache
def _fallback_qr_dir() -> Path:
    taken = Path(tempfile.gettempdir()) / f"webqq_scrapy-{os.getuid()}"
    # A name nobody could have guessed in advance, created (0700, checked) only when the
    # QR directory is made (qr.ensure_qr_dir): reading the settings creates nothing.
    base = Path(tempfile.gettempdir()) / f"webqq_scrapy-{os.getuid()}-{secrets.token_hex(8)}"
    logger.warning(
        "WEBQQ_QR_DIR: %s exists and is not safely this user's (created by another user?); "
        "the QR files go to %s instead",
        taken,
        base / "qr",
    )
    return base / "qr"


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
    max_accounts_in_flight: int = 0  # 0: no limit
    admission_rate: float = 0.0  # accounts admitted per second; 0: no pacing
    admission_max_lag: float = 0.0  # s of event-loop lateness that stops admission; 0: off
    admission_cpu_share: float = 0.0  # cores the accounts in flight may take; 0: off
    admission_max_wait: float = 0.0  # s from confirm to stored above which admission slows; 0: off
    contacts_max_accounts_in_flight: int = 0  # 0: no limit
    simulator_world: dict[str, float] = field(default_factory=dict)
    simulator_strict: bool = False
    unfinished_path: Path | None = None  # None: one file per run in default_unfinished_dir()
    # WEBQQ_TARGET was chosen (see target_given); else a session spider uses the target
    # stored with each record (docs/sessions.md, "Which target").
    target_explicit: bool = False
    qr_dir_default: bool = False  # WEBQQ_QR_DIR empty: qr_dir is default_qr_dir()
    app: str = "webqq"  # WEBQQ_APP: the default app (protocol/apps.py)
    wait_tick: float = 0.0  # s: the grid accounts' waits end on (AccountSpider.later); 0: none

    def unfinished_file(self, spider: str, job: str | None) -> Path:
        """Where a run's accounts left without an outcome are listed (WEBQQ_UNFINISHED_PATH)."""
        if self.unfinished_path is not None:
            return self.unfinished_path
        run = job or f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}"
        return default_unfinished_dir() / f"{file_name_part(spider)}-{file_name_part(run)}.txt"

    @property
    def scheme(self) -> str:
        """The historical hosts are https; the simulator is reached as an http proxy."""
        return "https" if self.target == TARGET_TENCENT else "http"

    @property
    def qr_lifetime(self) -> float:
        """How long a QR is expected to stay valid (a countdown, never a decision): the
        simulator's setting, else about 2 minutes (docs/protocol.md §3.2)."""
        if self.target == TARGET_SIMULATOR:
            return self.simulator_qr_lifetime
        return QR_LIFETIME

    @property
    def target_label(self) -> str:
        """What the records name as their target: "simulator", "tencent" or the URL."""
        if self.target == "url" and self.simulator_url:
            return self.simulator_url
        return self.target

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
            max_qr_refreshes=_count(settings, "WEBQQ_MAX_QR_REFRESHES", positive=False),
            login_timeout=_number(settings, "WEBQQ_LOGIN_TIMEOUT"),
            retry_times=_count(settings, "WEBQQ_RETRY_TIMES", positive=False),
            retry_backoff=_number(settings, "WEBQQ_RETRY_BACKOFF", positive=False),
            session_lifetime=_number(settings, "WEBQQ_SESSION_LIFETIME"),
            qr_dir=qr_dir,
            qr_dir_default=not qr_dir_raw,
            qr_terminal=_tristate(settings, "WEBQQ_QR_TERMINAL"),
            simulator_scan_after=_number(settings, "WEBQQ_SIMULATOR_SCAN_AFTER", positive=False),
            simulator_confirm_after=_number(
                settings, "WEBQQ_SIMULATOR_CONFIRM_AFTER", positive=False
            ),
            simulator_qr_lifetime=_number(settings, "WEBQQ_SIMULATOR_QR_LIFETIME"),
            log_secrets=read_bool(settings, "WEBQQ_LOG_SECRETS"),
            max_accounts_in_flight=_count(settings, "WEBQQ_MAX_ACCOUNTS_IN_FLIGHT", positive=False),
            admission_rate=_number(settings, "WEBQQ_ADMISSION_RATE", positive=False),
            admission_max_lag=_number(settings, "WEBQQ_ADMISSION_MAX_LAG", positive=False),
            admission_cpu_share=_number(settings, "WEBQQ_ADMISSION_CPU_SHARE", positive=False),
            admission_max_wait=admission_max_wait(settings),
            wait_tick=_number(settings, "WEBQQ_WAIT_TICK", positive=False),
            contacts_max_accounts_in_flight=_count(
                settings, "WEBQQ_CONTACTS_MAX_ACCOUNTS_IN_FLIGHT", positive=False
            ),
            unfinished_path=_optional_path(settings, "WEBQQ_UNFINISHED_PATH"),
            simulator_world=simulator_world(settings),
            simulator_strict=read_bool(settings, "WEBQQ_SIMULATOR_STRICT"),
            target_explicit=target_given(settings),
            app=read_app(settings),
        )


# The least WEBQQ_ADMISSION_MAX_WAIT=auto gives: below it, the four steps after a confirm and
# the store's group commit of a merely busy process would already hold admission back.
MIN_AUTO_MAX_WAIT = 1.0


def admission_max_wait(settings: BaseSettings) -> float:
    """WEBQQ_ADMISSION_MAX_WAIT in seconds: a number (0 = off), or ``auto``: half of
    WEBQQ_SCANNED_POLL_INTERVAL + 0.3 s, the wait a person should feel at most after a
    confirm (the poll that brings it comes up to one interval later, then 0.3 s for the
    steps after it) — half, because the accounts confirming while admission slows down are
    already in flight and still need the other half —, and at least MIN_AUTO_MAX_WAIT."""
    name = "WEBQQ_ADMISSION_MAX_WAIT"
    if str(_raw(settings, name)).strip().lower() == "auto":
        half = (_number(settings, "WEBQQ_SCANNED_POLL_INTERVAL") + 0.3) / 2
        return max(MIN_AUTO_MAX_WAIT, half)
    return _number(settings, name, positive=False)


# The embedded simulator's world settings → Simulator keyword arguments (docs/simulator.md).
_SIMULATOR_WORLD = {
    "WEBQQ_SIMULATOR_FRIENDS": ("friends", True),
    "WEBQQ_SIMULATOR_GROUPS": ("groups", True),
    "WEBQQ_SIMULATOR_GROUP_MEMBERS": ("group_members", True),
    "WEBQQ_SIMULATOR_DISCUSSIONS": ("discussions", True),
    "WEBQQ_SIMULATOR_CHATTER": ("chatter", False),
    "WEBQQ_SIMULATOR_POLL_HOLD": ("poll_hold", False),
}


def simulator_world(settings: BaseSettings) -> dict[str, float]:
    """The Simulator keyword arguments of WEBQQ_SIMULATOR_FRIENDS … _POLL_HOLD."""
    out: dict[str, float] = {}
    for name, (keyword, integer) in _SIMULATOR_WORLD.items():
        value = _number(settings, name, positive=False, integer=integer)
        out[keyword] = int(value) if integer else value
    if out["group_members"] < 1:
        raise SettingError(
            "WEBQQ_SIMULATOR_GROUP_MEMBERS", "must be at least 1 (the user)", out["group_members"]
        )
    return out


@dataclass(frozen=True)
class MessagesConfig:
    """The messages spider: WEBQQ_MESSAGES_*."""

    outbox_interval: float
    retry_delay: float
    max_failures: int
    max_starting: int = 0  # 0: no limit
    stop_wait: float = 65.0

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> MessagesConfig:
        return cls(
            outbox_interval=_number(settings, "WEBQQ_MESSAGES_OUTBOX_INTERVAL"),
            retry_delay=_number(settings, "WEBQQ_MESSAGES_RETRY_DELAY", positive=False),
            max_failures=_count(settings, "WEBQQ_MESSAGES_MAX_FAILURES", positive=False),
            max_starting=_count(settings, "WEBQQ_MESSAGES_MAX_STARTING", positive=False),
            stop_wait=_number(settings, "WEBQQ_MESSAGES_STOP_WAIT", positive=False),
        )


@dataclass(frozen=True)
class GCConfig:
    """The garbage collector's handling (webqq_scrapy/gctuning.py): WEBQQ_GC_*."""

    enabled: bool
    threshold: int  # the youngest generation's; 0: Python's own

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> GCConfig:
        return cls(
            enabled=read_bool(settings, "WEBQQ_GC_TUNING"),
            threshold=_count(settings, "WEBQQ_GC_THRESHOLD", positive=False),
        )


@dataclass(frozen=True)
class QzoneConfig:
    """The Qzone spiders: WEBQQ_QZONE_*."""

    recheck_posts: int
    rate_limit_wait: float
    rate_limit_tries: int
    timeout: float
    pictures_dir: Path | None  # None: the picture download is off

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> QzoneConfig:
        return cls(
            recheck_posts=_count(settings, "WEBQQ_QZONE_RECHECK_POSTS", positive=False),
            rate_limit_wait=_number(settings, "WEBQQ_QZONE_RATE_LIMIT_WAIT", positive=False),
            rate_limit_tries=_count(settings, "WEBQQ_QZONE_RATE_LIMIT_TRIES"),
            timeout=_number(settings, "WEBQQ_QZONE_TIMEOUT"),
            pictures_dir=_optional_path(settings, "WEBQQ_QZONE_PICTURES_DIR", directory=True),
        )


def default_unfinished_dir() -> Path:
    """Beside the default SQLite store: ``<user data dir>/webqq_scrapy/unfinished``."""
    import platformdirs

    return platformdirs.user_data_path("webqq_scrapy") / "unfinished"


def _optional_path(settings: BaseSettings, name: str, *, directory: bool = False) -> Path | None:
    """A path setting, absolute; None when it is empty (the feature is off). A file's path
    must not be a directory, a ``directory`` must be one if it exists; either must be
    creatable (nothing is created here)."""
    raw = _optional_text(settings, name)
    if not raw:
        return None
    path = Path(raw).expanduser().absolute()
    if directory and path.exists() and not path.is_dir():
        raise SettingError(name, "is not a directory", str(path))
    if not directory and path.is_dir():
        raise SettingError(name, "is a directory, not a file", str(path))
    check_creatable(name, path / "x" if directory else path)
    return path


@dataclass(frozen=True)
class QRPageConfig:
    """The QR web page (``webqq_scrapy.qr.page``): WEBQQ_QR_WEB_*."""

    enabled: bool
    host: str
    port: int
    grace: float

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> QRPageConfig:
        host = str(_raw(settings, "WEBQQ_QR_WEB_HOST")).strip()
        if not host:
            raise SettingError("WEBQQ_QR_WEB_HOST", "must be an address to bind", host)
        return cls(
            enabled=read_bool(settings, "WEBQQ_QR_WEB_ENABLED"),
            host=host,
            port=_port(settings, "WEBQQ_QR_WEB_PORT"),
            grace=_number(settings, "WEBQQ_QR_WEB_GRACE", positive=False),
        )


@dataclass(frozen=True)
class WebhookConfig:
    """The QR webhook (``webqq_scrapy.qr.webhook``): WEBQQ_QR_WEBHOOK_*. ``url`` empty: off."""

    url: str
    retries: int
    backoff: float
    timeout: float
    headers: dict[str, str]

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> WebhookConfig:
        name = "WEBQQ_QR_WEBHOOK_URL"
        url = _optional_text(settings, name)
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname or not _port_ok(parts):
                # The value may hold a secret: name the setting, show only its scheme.
                raise SettingError(name, "must be an http:// or https:// URL", f"{parts.scheme}:…")
        return cls(
            url=url,
            retries=_count(settings, "WEBQQ_QR_WEBHOOK_RETRIES", positive=False),
            backoff=_number(settings, "WEBQQ_QR_WEBHOOK_BACKOFF", positive=False),
            timeout=_number(settings, "WEBQQ_QR_WEBHOOK_TIMEOUT"),
            headers=_headers(settings, "WEBQQ_QR_WEBHOOK_HEADERS"),
        )


def _port_ok(parts: Any) -> bool:
    """False when the URL's port is not a number from 0 to 65535."""
    try:
        parts.port  # noqa: B018 - the property raises ValueError for a bad port
    except ValueError:
        return False
    return True


def _headers(settings: BaseSettings, name: str) -> dict[str, str]:
    try:
        headers = _secret(settings, name, settings.getdict(name, getattr(defaults, name)))
    except (TypeError, ValueError) as exc:
        if isinstance(exc, SettingError):
            raise
        raise SettingError(name, "must be a dict (or its JSON text)", "…") from None
    if not all(isinstance(key, str) and isinstance(v, str) for key, v in headers.items()):
        # Header values may be secrets (an Authorization token): never show them.
        raise SettingError(name, "must map header names to string values", "…")
    return dict(headers)


@dataclass(frozen=True)
class RedisConfig:
    """The Redis feed of ``qrlogin_redis``: WEBQQ_REDIS_*."""

    url: str
    key: str
    batch_size: int
    max_in_flight: int
    idle_close: float
    lease_prefix: str
    lease_margin: float
    heartbeat: float

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> RedisConfig:
        url = _text(settings, "WEBQQ_REDIS_URL")
        parts = urlsplit(url)
        host_or_path = parts.hostname if parts.scheme != "unix" else parts.path
        if (
            parts.scheme not in ("redis", "rediss", "unix")
            or not host_or_path
            or not _port_ok(parts)
        ):
            shown = f"{parts.scheme}:…" if parts.password else url
            raise SettingError(
                "WEBQQ_REDIS_URL", "must be a redis://, rediss:// or unix:// URL", shown
            )
        return cls(
            url=url,
            key=_text(settings, "WEBQQ_REDIS_KEY"),
            batch_size=_count(settings, "WEBQQ_REDIS_BATCH_SIZE"),
            max_in_flight=_count(settings, "WEBQQ_REDIS_MAX_IN_FLIGHT"),
            idle_close=_number(settings, "WEBQQ_REDIS_IDLE_CLOSE", positive=False),
            lease_prefix=_text(settings, "WEBQQ_REDIS_LEASE_PREFIX"),
            lease_margin=_number(settings, "WEBQQ_REDIS_LEASE_MARGIN", positive=False),
            heartbeat=_number(settings, "WEBQQ_REDIS_HEARTBEAT"),
        )


def known_settings() -> list[str]:
    """Every WEBQQ_* setting the project reads (defined, with its default, in settings.py)."""
    return sorted(name for name in dir(defaults) if name.startswith("WEBQQ_"))


def check_unknown(settings: BaseSettings) -> None:
    """A WEBQQ_* setting nobody reads is a misspelling: name it, suggest the closest."""
    known = known_settings()
    for name in sorted(str(key) for key in settings.attributes):
        if not name.startswith("WEBQQ_") or name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]}?" if close else "see webqq_scrapy/settings.py"
        raise SettingError(name, f"is not a setting of webqq_scrapy; {hint}", settings.get(name))


# Checks the embedded simulator's state file (a dotted path: config never imports the
# simulator package, see the import contracts in pyproject.toml).
SIMULATOR_STATE_PROBLEM = "webqq_scrapy.simulator.persist.state_problem"


class SimulatorStateError(SettingError):
    """The embedded simulator's state file is unusable: one line naming it and the fix."""

    def __init__(self, message: str) -> None:
        self.name = "WEBQQ_TARGET"
        ValueError.__init__(self, message)


def check_simulator_state() -> None:
    """Raise SimulatorStateError when WEBQQ_TARGET=simulator cannot continue its saved
    world (a corrupt or newer-format state file); reads only."""
    from scrapy.utils.misc import load_object

    problem = load_object(SIMULATOR_STATE_PROBLEM)()
    if problem is not None:
        raise SimulatorStateError(problem)


def validate_all(settings: BaseSettings) -> WebQQConfig:
    """Check every WEBQQ_* setting of every component before anything starts.

    Raises :class:`SettingError` naming the first bad setting; creates and writes nothing.
    """
    check_unknown(settings)
    config = WebQQConfig.from_settings(settings)
    check_qr_dir(config.qr_dir)
    if config.target == TARGET_SIMULATOR:
        check_simulator_state()
    StorageConfig.from_settings(settings)
    QRPageConfig.from_settings(settings)
    WebhookConfig.from_settings(settings)
    RedisConfig.from_settings(settings)
    MessagesConfig.from_settings(settings)
    QzoneConfig.from_settings(settings)
    GCConfig.from_settings(settings)
    return config


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
    group_delay: float = 0.0  # s a record waits for others to share its write; 0: none
    group_size: int = 1  # records that make a group written at once

    @classmethod
    def of(cls, settings: BaseSettings) -> StorageConfig:
        """:meth:`from_settings`, parsed once per crawl: a crawl's settings are frozen, and
        the parsed config is kept with them (the pipelines and the session spiders share it)."""
        if not settings.frozen:
            return cls.from_settings(settings)
        cached = settings.__dict__.get("_webqq_storage_config")
        if not isinstance(cached, cls):
            cached = settings.__dict__["_webqq_storage_config"] = cls.from_settings(settings)
        return cached

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> StorageConfig:
        from webqq_scrapy.store import default_database_url

        raw_json = settings.get("WEBQQ_JSON_PATH", defaults.WEBQQ_JSON_PATH)
        json_path = None
        if raw_json:
            json_path = check_writable_file("WEBQQ_JSON_PATH", Path(str(raw_json)).expanduser())
        # The same spellings as every other boolean (yes/no, on/off too), not Scrapy's getbool.
        enabled = read_bool(settings, "WEBQQ_DATABASE_ENABLED")
        database_url = None
        if enabled:
            raw_url = _raw(settings, "WEBQQ_DATABASE_URL")
            database_url = parse_database_url(raw_url or default_database_url())
        return cls(
            json_path=json_path,
            database_url=database_url,
            retry_times=_count(settings, "WEBQQ_STORE_RETRY_TIMES", positive=False),
            retry_backoff=_number(settings, "WEBQQ_STORE_RETRY_BACKOFF", positive=False),
            group_delay=_number(settings, "WEBQQ_STORE_GROUP_DELAY", positive=False),
            group_size=_count(settings, "WEBQQ_STORE_GROUP_SIZE"),
        )


def credentials_source(
    settings: BaseSettings,
    *,
    json_path: str | None = None,
    database_url: str | None = None,
) -> tuple[dict[str, Any], str]:
    """The store to read credentials from, as ``webqq_scrapy.store`` keywords, and its name
    for messages (a URL without its password).

    ``json_path`` / ``database_url`` (a command's options) win. Else one rule, the one the
    pipelines write by (:class:`StorageConfig`): the database when it is on
    (``WEBQQ_DATABASE_URL``, else the default SQLite file), else the ``WEBQQ_JSON_PATH``
    file; with neither, SettingError. So a data spider reads credentials from the database
    it writes its records to (docs/storage.md, "Which store is read").
    """
    from webqq_scrapy.store.sql import redact_url

    if json_path:
        return {"json_path": json_path}, json_path
    if database_url:
        return {"database_url": database_url}, redact_url(database_url)
    storage = StorageConfig.of(settings)
    if storage.database_url is not None:
        return {"database_url": storage.database_url}, redact_url(storage.database_url)
    if storage.json_path is not None:
        return {"json_path": str(storage.json_path)}, str(storage.json_path)
    raise SettingError(
        "WEBQQ_DATABASE_ENABLED",
        "no store to read: the database is off and WEBQQ_JSON_PATH is empty",
        settings.get("WEBQQ_DATABASE_ENABLED"),
    )
