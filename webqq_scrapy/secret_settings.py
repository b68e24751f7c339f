"""Secret settings from the environment or a file, never from the command line.

A value given with ``-s NAME=VALUE`` (or scrapyd's ``-d setting=…``) is visible to every
local user in ``ps`` and in scrapyd's ``listjobs``. The settings that carry secrets
(:data:`SECRET_SETTINGS`: the database URL with its password, the Redis URL, the webhook URL
and its headers) therefore also accept:

* ``NAME_FILE=/path``: the value is the file's content (its trailing newline dropped; for
  ``WEBQQ_QR_WEBHOOK_HEADERS_FILE``, a JSON object). A file only its owner can read keeps
  the secret from other users, as docker and systemd credentials do;
* ``${VAR}`` references inside the value, replaced by the environment variable ``VAR``:
  ``-s 'WEBQQ_DATABASE_URL=postgresql+psycopg://webqq:${WEBQQ_DB_PASSWORD}@db/webqq'``
  (quoted, so that the shell leaves it alone) puts only the name on the command line. In
  the headers, each value may hold references.

A reference to a variable that is not set, an unreadable file, or both ``NAME`` and
``NAME_FILE`` set is a :class:`~webqq_scrapy.config.SettingError` naming the setting; the
value itself is never shown.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

SECRET_SETTINGS = (
    "WEBQQ_DATABASE_URL",
    "WEBQQ_REDIS_URL",
    "WEBQQ_QR_WEBHOOK_URL",
    "WEBQQ_QR_WEBHOOK_HEADERS",
)
FILE_SUFFIX = "_FILE"
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class SecretSourceError(ValueError):
    """A secret setting's source cannot be used: (setting name, problem)."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


def expand(name: str, value: Any, environ: Mapping[str, str] | None = None) -> Any:
    """``value`` with its ``${VAR}`` references replaced (strings, and dict values)."""
    env = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {key: expand(name, item, env) for key, item in value.items()}
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        variable = match.group(1)
        if variable not in env:
            raise SecretSourceError(
                name, f"refers to the environment variable {variable}, which is not set"
            )
        return env[variable]

    return _REFERENCE.sub(replace, value)


def from_file(name: str, path: str) -> Any:
    """The value of ``name`` held in the file ``path`` (``NAME_FILE``)."""
    file_setting = name + FILE_SUFFIX
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = f"cannot read {path!r} ({exc.__class__.__name__})"
        raise SecretSourceError(file_setting, problem) from None
    text = text.rstrip("\r\n")
    if name != "WEBQQ_QR_WEBHOOK_HEADERS":
        return text
    try:
        headers = json.loads(text)
    except ValueError:
        raise SecretSourceError(file_setting, f"{path!r} does not hold a JSON object") from None
    if not isinstance(headers, dict):
        raise SecretSourceError(file_setting, f"{path!r} does not hold a JSON object")
    return headers


def resolve(name: str, value: Any, file_path: Any, default: Any = None) -> Any:
    """The value of the secret setting ``name``, from ``NAME`` or ``NAME_FILE`` (``NAME``
    still at its ``default`` counts as not set)."""
    file_path = str(file_path or "").strip()
    if file_path:
        if value and value != default:
            raise SecretSourceError(
                name + FILE_SUFFIX, f"and {name} are both set; give the secret one way"
            )
        value = from_file(name, file_path)
    return expand(name, value)
