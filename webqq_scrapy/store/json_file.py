"""The JSON file store (WEBQQ_JSON_PATH): its format, atomic writes and the lock file."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from typing import TYPE_CHECKING, Any

from webqq_scrapy.items import DEFAULT_RECORD_APP, SCHEMA_VERSION
from webqq_scrapy.store.records import (
    CREDENTIALS,
    OUTCOMES,
    STATUS_FIELDS,
    UPDATES,
    StoreError,
    apply_update,
    record_app,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from pathlib import Path

    from webqq_scrapy.store.records import Batch

# {"schema_version": 3,
#  "credentials": {"<account>": {<Credentials fields>, "stored_at": "..."}, ...},
#  "outcomes": {"<account>": {<LoginOutcome fields>, "run_id": "...", "stored_at": "..."}},
#  "apps": {"<app>": {"credentials": {"<account>": ...}, "outcomes": {"<account>": ...}}}}
#
# A record is keyed (account, app): WebQQ's, the default app's, stay at the top level where
# every version kept them (a program reading the file for WebQQ keeps working), every other
# app's (docs/apps.md) are under "apps". "outcomes" keeps each (account, app)'s latest
# outcome; the history is in the SQL table login_attempts. A file of an older
# schema_version is upgraded by JSON_MIGRATIONS when read (and written back in the new
# version with the next write); a newer one is refused.


def _add_status(doc: dict[str, Any]) -> dict[str, Any]:
    """1 → 2: credentials carry the session's status; none was checked yet."""
    for record in doc["credentials"].values():
        for name in STATUS_FIELDS:
            record.setdefault(name, None)
    return doc


def _add_app(doc: dict[str, Any]) -> dict[str, Any]:
    """2 → 3: every record so far is WebQQ's; other apps get their own section."""
    for section in ("credentials", "outcomes"):
        for record in (doc.get(section) or {}).values():
            if isinstance(record, dict):
                record.setdefault("app", DEFAULT_RECORD_APP)
    doc.setdefault("apps", {})
    return doc


# {from_version: function(doc) -> doc of from_version + 1}
JSON_MIGRATIONS: dict[int, Any] = {1: _add_status, 2: _add_app}


def empty_json_store() -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "credentials": {}, "outcomes": {}, "apps": {}}


def app_section(doc: dict[str, Any], app: str, section: str) -> dict[str, Any]:
    """The ``section`` ("credentials" or "outcomes") of ``app`` in a JSON store ``doc``,
    made (empty) when missing; raises StoreError when the file holds something else."""
    if app == DEFAULT_RECORD_APP:
        part = doc.setdefault(section, {})
    else:
        apps = doc.setdefault("apps", {})
        if not isinstance(apps, dict) or not isinstance(apps.setdefault(app, {}), dict):
            raise StoreError("the JSON store's 'apps' is not an object of objects")
        part = apps[app].setdefault(section, {})
    if not isinstance(part, dict):
        raise StoreError(f"the JSON store's {section} of app {app!r} is not an object")
    return part


def read_json_store(path: Path) -> dict[str, Any]:
    """The content of a JSON store (empty when the file does not exist yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return empty_json_store()
    except OSError as exc:
        raise StoreError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise StoreError(f"{path}: is not valid JSON ({exc})") from None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("schema_version"), int)
        or not isinstance(doc.get("credentials"), dict)
    ):
        raise StoreError(f"{path}: is not a webqq_scrapy credentials file")
    version = doc["schema_version"]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema_version {version} is newer than this webqq_scrapy "
            f"({SCHEMA_VERSION}); upgrade webqq_scrapy to read it"
        )
    while version < SCHEMA_VERSION:
        doc = JSON_MIGRATIONS[version](doc)
        version = doc["schema_version"] = version + 1
    doc.setdefault("outcomes", {})
    doc.setdefault("apps", {})
    return doc


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` with mode 0700 (parents too); an existing one is left as it is."""
    if not directory.is_dir():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, doc: Any) -> None:
    """Replace ``path`` with ``doc`` so that a crash leaves the old or the new file, whole.

    The temporary file lives in the same directory (``os.replace`` is atomic only within a
    file system), is created 0600 by ``mkstemp``, and is fsynced before the rename; the
    directory is fsynced after it, so the rename itself survives a power cut.
    """
    directory = path.parent
    ensure_private_dir(directory)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(doc, file, ensure_ascii=False, indent=2)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


@contextlib.contextmanager
def json_store_lock(path: Path) -> Iterator[None]:
    """Serialise read-modify-write cycles of processes sharing one JSON store."""
    ensure_private_dir(path.parent)
    fd = os.open(path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        # A temporary file seen under the lock was left by a writer that was killed.
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        yield
    finally:
        os.close(fd)


def update_json_store(
    path: Path,
    credentials: Mapping[Any, dict[str, Any]],
    outcomes: Mapping[Any, dict[str, Any]],
    updates: Iterable[Mapping[str, Any]] = (),
) -> None:
    """Upsert records into the JSON store at ``path``, each under its own (account, app) —
    the mappings' keys only tell records apart —, then apply ``updates``
    (records.apply_update) in order."""
    with json_store_lock(path):
        doc = read_json_store(path)
        for section, records in (("credentials", credentials), ("outcomes", outcomes)):
            for record in records.values():
                app_section(doc, record_app(record), section)[record["account"]] = record
        for update in updates:
            stored = app_section(doc, record_app(update), "credentials")
            entry = stored.get(update["account"])
            if isinstance(entry, dict):
                apply_update(entry, update)
        write_json_atomic(path, doc)


class JsonFileStore:
    """The JSON file as a ``writer.RecordStore``: every write re-reads the file under the
    lock file (so several crawls can share it), upserts the batch and replaces the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = f"the JSON file {path}"

    def open(self) -> None:
        read_json_store(self.path)  # refuse to overwrite a file that is not ours

    def write(self, batch: Batch) -> None:
        credentials = {key: rec for key, rec in batch.items() if key[0] == CREDENTIALS}
        outcomes = {key: rec for key, rec in batch.items() if key[0] == OUTCOMES}
        updates = [rec for key, rec in batch.items() if key[0] == UPDATES]
        update_json_store(self.path, credentials, outcomes, updates)

    def close(self) -> None:
        pass
