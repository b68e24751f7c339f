"""The QR as a PNG file in WEBQQ_QR_DIR: private directory, atomic 0600 writes, removal."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from pathlib import Path

from webqq_scrapy.dirs import (
    NOT_A_DIRECTORY,
    ancestors_problem,
    qr_dir_problem,
    replace_private,
)

DIR_MODE = 0o700
FILE_MODE = 0o600

_SAFE_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
_MAX_SLUG = 40


def qr_path(directory: str | os.PathLike[str], account: str) -> Path:
    """The file of ``account``'s QR in ``directory``: a readable slug plus a hash of the name.

    Account names are arbitrary strings: only ``[A-Za-z0-9_-]`` survive in the slug (so no
    ``/``, ``..``, NUL or leading dot can reach the file system), and the hash of the full
    name keeps two names that share a slug ("a/b", "a_b") in two different files.
    """
    return Path(directory, qr_name(account))


def qr_name(account: str) -> str:
    """The name of ``account``'s QR file in its directory (:func:`qr_path`)."""
    digest = hashlib.sha256(account.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    slug = _SAFE_CHARS.sub("_", account).strip("_")[:_MAX_SLUG] or "account"
    return f"qr-{slug}-{digest}.png"


def ensure_qr_dir(directory: str | os.PathLike[str]) -> Path:
    """Create ``directory`` and its missing parents with mode 0700; refuse an unsafe one.

    An existing directory must belong to the current user and not be writable by others
    (anyone who can write there could swap the QR a person is about to scan).
    """
    path = Path(directory).expanduser().absolute()
    missing = []
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    for candidate in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(candidate, DIR_MODE)
            os.chmod(candidate, DIR_MODE)  # the umask may have taken bits; never adds any
    problem = qr_dir_problem(path) or ancestors_problem(path)
    if problem == NOT_A_DIRECTORY:
        raise NotADirectoryError(f"WEBQQ_QR_DIR: {path} {problem}")
    if problem is not None:
        raise PermissionError(
            f"WEBQQ_QR_DIR: {path} {problem}; use a directory only you can write to"
        )
    return path


def save_qr(directory: str | os.PathLike[str], account: str, png: bytes) -> Path:
    """Write ``png`` as ``account``'s QR file (mode 0600) and return its path.

    The bytes go to a new temporary file created 0600 in the same directory, which then
    replaces the account's file in one ``os.replace``: a reader (a person's image viewer)
    sees the old QR or the new one, never a partial file, and the QR is never readable by
    another user, not even for a moment. No fsync: a QR outlives neither its two minutes
    nor a crash, and the call must stay short in the crawl's thread.
    """
    # One Path made, at the end: pathlib's joins cost more than the rest of the name.
    path = f"{_checked_qr_dir(directory)}/{qr_name(account)}"
    replace_private(path, png)
    return Path(path)


# The full check of a QR directory (``ensure_qr_dir``: the directory and every one above it,
# a dozen system calls and about 0.1 ms) runs again for each save at most this often; a
# save in between checks the directory itself (one ``stat``) as the full check would.
ANCESTORS_RECHECK_S = 1.0

# directory as given → (its absolute path, when its full check passed: time.monotonic())
_checked: dict[str, tuple[Path, float]] = {}


def _checked_qr_dir(directory: str | os.PathLike[str]) -> Path:
    """``ensure_qr_dir(directory)``, with the check of the directories above it done at
    most every :data:`ANCESTORS_RECHECK_S` (a crawl saves a QR for every account)."""
    key = os.fspath(directory)
    known = _checked.get(key)
    if known is not None and time.monotonic() - known[1] < ANCESTORS_RECHECK_S:
        path = known[0]
        with contextlib.suppress(OSError):  # gone or unreadable: the full check says how
            if qr_dir_problem(path) is None:
                return path
    path = ensure_qr_dir(directory)
    _checked[key] = (path, time.monotonic())
    return path


def remove_qr(path: str | os.PathLike[str] | None) -> None:
    """Delete a QR file written by ``save_qr``; a missing file (or ``None``) is fine."""
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
