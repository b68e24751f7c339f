"""Whether a directory may hold files with secrets (the QR files): checks, creating nothing;
and :func:`replace_private`, the one way a private file here is rewritten.

Used by ``config`` (before a crawl starts) and by ``qr.files`` (when the first QR arrives),
so that neither imports the other's package.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import stat
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


# How a temporary file beside a private file is opened: created here and now (O_EXCL: an
# existing name, a symbolic link too, is refused, never opened or followed), write-only,
# not inherited by a child process; its mode is given to os.open (0600, the umask can only
# take bits away).
_TMP_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_TMP_MODE = 0o600
# Names already taken in a row before replace_private gives up (tempfile's TMP_MAX is 10000;
# a name here is unique to this process and this call, so one is taken only by someone
# creating files named like ours on purpose).
_TMP_TRIES = 100
_tmp_serial = itertools.count()
# Random per process (fixed at import): the names are not guessable in advance.
_TMP_TOKEN = os.urandom(4).hex()


def replace_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, mode 0600: the bytes go to a temporary file
    beside it, created 0600 and exclusively (``O_CREAT | O_EXCL | O_NOFOLLOW``: never an
    existing file, never through a link), which then replaces ``path`` in one
    ``os.replace``; a failure removes it. No fsync.

    The temporary name is ``.NAME.PID-TOKEN-N.tmp`` (``TOKEN`` random per process, ``N`` a
    counter): what ``tempfile.mkstemp`` guarantees, with two system calls' worth of Python
    instead of mkstemp's and a file object's (a QR file is written for every account,
    docs/performance.md).
    """
    target = os.fspath(path)
    directory, name = os.path.split(target)
    prefix = f"{directory or '.'}/.{name}.{os.getpid()}-{_TMP_TOKEN}-"
    for _ in range(_TMP_TRIES):
        tmp = f"{prefix}{next(_tmp_serial)}.tmp"
        try:
            fd = os.open(tmp, _TMP_FLAGS, _TMP_MODE)
        except FileExistsError:
            continue
        break
    else:
        raise FileExistsError(
            errno.EEXIST, f"no free temporary name after {_TMP_TRIES} tries", f"{prefix}N.tmp"
        )
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
