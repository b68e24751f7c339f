"""Whether a directory may hold files with secrets (the QR files): checks, creating nothing;
and :func:`replace_private`, the one way a private file here is rewritten.

Used by ``config`` (before a crawl starts) and by ``qr.files`` (when the first QR arrives),
so that neither imports the other's package.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

NOT_A_DIRECTORY = "is not a directory"


def ancestors_problem(path: Path) -> str | None:
    """Why the directories above ``path`` let another user swap it, or None.

    Every existing directory on the way (symbolic links followed) must belong to root or
    the current user, and one that others may write to must be sticky, as /tmp is: else
    its owner, or anyone who can write there, could rename ``path`` away and put their own
    in its place, before the crawl starts or in the middle of it.
    """
    me = os.getuid()
    for directory in path.resolve().parents:
        try:
            info = directory.stat()
        except FileNotFoundError:
            continue
        if info.st_uid not in (0, me):
            return f"is inside {directory}, which belongs to another user (uid {info.st_uid})"
        shared = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if shared and not info.st_mode & stat.S_ISVTX:
            mode = stat.S_IMODE(info.st_mode)
            return f"is inside {directory}, which other users may write to (mode {mode:o})"
    return None


def qr_dir_problem(path: Path) -> str | None:
    """Why the existing ``path`` must not hold QR files, or None when it may.

    It must be a directory of the current user that no one else can write to: anyone who
    can write there could swap the QR a person is about to scan.
    """
    info = path.stat()
    if not stat.S_ISDIR(info.st_mode):
        return NOT_A_DIRECTORY
    if info.st_uid != os.getuid():
        return "belongs to another user"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"is writable by other users (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def replace_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, mode 0600: the bytes go to a temporary file
    beside it (created 0600 and exclusively by ``mkstemp``, never through a link), which then
    replaces ``path`` in one ``os.replace``; a failure removes it. No fsync."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
