"""QR delivery helpers: the PNG file in WEBQQ_QR_DIR and the half-block terminal rendering.

The spider calls these directly: ``save_qr`` when ptqrshow returns a PNG (and again when a
new QR replaces an expired one), ``remove_qr`` when the account finishes, and
``render_terminal`` to print the QR where a person can scan it with a phone. The web page
(``webqq_scrapy.qrweb``) and the webhook (``webqq_scrapy.webhook``) listen to the spider's
signals instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import secrets
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    from typing import TextIO

__all__ = [
    "parse_terminal",
    "qr_matrix",
    "qr_path",
    "remove_qr",
    "render_terminal",
    "save_qr",
    "terminal_wanted",
]

DIR_MODE = 0o700
FILE_MODE = 0o600

# The quiet zone the QR standard asks for around the symbol, in modules; phone scanners
# find the finder patterns reliably only with a light margin around them.
QUIET_ZONE = 4

# Half-block glyphs by (top module dark, bottom module dark).
_GLYPHS = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}
_GLYPH_MODULES = {glyph: modules for modules, glyph in _GLYPHS.items()}
# Black glyphs on a white background from the 256-colour cube (16 = #000000, 231 = #ffffff):
# unlike the 16 base colours, terminal themes do not remap these, so the symbol is
# dark-on-light whatever the terminal's own background is.
_ANSI_COLOURS = "\x1b[38;5;16;48;5;231m"
_ANSI_RESET = "\x1b[0m"
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

# Sides of a QR symbol in modules: 21..177 (versions 1..40) and Micro QR 11..17.
_SYMBOL_SIZES = (11, 13, 15, 17, *range(21, 178, 4))
# A finder pattern is 7 modules wide; its top row is one dark run of that width.
_FINDER = 7

_SAFE_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
_MAX_SLUG = 40


# --- the PNG file ------------------------------------------------------------------------


def qr_path(directory: str | os.PathLike[str], account: str) -> Path:
    """The file of ``account``'s QR in ``directory``: a readable slug plus a hash of the name.

    Account names are arbitrary strings: only ``[A-Za-z0-9_-]`` survive in the slug (so no
    ``/``, ``..``, NUL or leading dot can reach the file system), and the hash of the full
    name keeps two names that share a slug ("a/b", "a_b") in two different files.
    """
    digest = hashlib.sha256(account.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    slug = _SAFE_CHARS.sub("_", account).strip("_")[:_MAX_SLUG] or "account"
    return Path(directory) / f"qr-{slug}-{digest}.png"


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
    info = path.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(f"WEBQQ_QR_DIR: {path} is not a directory")
    if info.st_uid != os.getuid():
        raise PermissionError(f"WEBQQ_QR_DIR: {path} belongs to another user")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionError(
            f"WEBQQ_QR_DIR: {path} is writable by other users (mode "
            f"{stat.S_IMODE(info.st_mode):o}); use a directory only you can write to"
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
    path = qr_path(ensure_qr_dir(directory), account)
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), FILE_MODE)
            file.write(png)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def remove_qr(path: str | os.PathLike[str] | None) -> None:
    """Delete a QR file written by ``save_qr``; a missing file (or ``None``) is fine."""
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


# --- the terminal rendering ----------------------------------------------------------------


def qr_matrix(png: bytes) -> list[list[bool]]:
    """The module matrix (True = dark) of the QR symbol in a PNG, without its quiet zone.

    Nothing is assumed about the image: the symbol is the bounding box of its dark pixels
    (whatever light border surrounds it), and the module size comes from the top-left
    finder pattern, whose top row is one dark run 7 modules wide. The side in modules is
    snapped to the nearest size a QR symbol can have, and each module is sampled at its
    centre, so any integer scale (and a slightly resampled image) works.
    """
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            grey = Image.alpha_composite(white, rgba).convert("L")
        else:
            grey = image.convert("L")
    width, height = grey.size
    pixels = grey.load()
    low, high = grey.getextrema()
    if high - low < 64:
        raise ValueError("not a QR image: no contrast")
    threshold = (low + high) / 2
    dark = grey.point(lambda value: 255 if value < threshold else 0)
    box = dark.getbbox()
    if box is None:  # pragma: no cover - excluded by the contrast check
        raise ValueError("not a QR image: nothing dark")
    left, top, right, bottom = box
    run = 0
    while left + run < right and pixels[left + run, top] < threshold:
        run += 1
    module = run / _FINDER
    side = right - left
    if module < 1 or abs((bottom - top) - side) > module:
        raise ValueError("not a QR image: no square symbol with a finder pattern")
    count = min(_SYMBOL_SIZES, key=lambda size: abs(size - side / module))
    if abs(count - side / module) > 0.5:
        raise ValueError(f"not a QR image: {side / module:.2f} modules across")
    pitch_x = side / count
    pitch_y = (bottom - top) / count
    return [
        [
            pixels[
                min(width - 1, int(left + (col + 0.5) * pitch_x)),
                min(height - 1, int(top + (row + 0.5) * pitch_y)),
            ]
            < threshold
            for col in range(count)
        ]
        for row in range(count)
    ]


def render_terminal(png: bytes, *, ansi: bool = True, quiet_zone: int = QUIET_ZONE) -> str:
    """The QR of ``png`` as text: two module rows per line with ``▀ ▄ █`` and spaces.

    The glyphs draw the dark modules, surrounded by a ``quiet_zone`` of light ones. With
    ``ansi`` (the default, for a terminal) every line is coloured black on white explicitly
    and reset before its newline: on a terminal with a dark background and light text, the
    plain glyphs would show an inverted (light-on-dark) symbol with a dark quiet zone, which
    the QR standard does not require scanners to read and some phone scanners do not. Without
    ``ansi`` the text relies on dark text on a light background (a document, a mail).
    """
    matrix = qr_matrix(png)
    side = len(matrix) + 2 * quiet_zone
    light_row = [False] * side
    rows = [light_row] * quiet_zone
    rows += [[False] * quiet_zone + row + [False] * quiet_zone for row in matrix]
    rows += [light_row] * quiet_zone
    if len(rows) % 2:
        rows.append(light_row)
    lines = []
    for top, bottom in zip(rows[::2], rows[1::2], strict=True):
        text = "".join(_GLYPHS[pair] for pair in zip(top, bottom, strict=True))
        lines.append(f"{_ANSI_COLOURS}{text}{_ANSI_RESET}" if ansi else text)
    return "\n".join(lines) + "\n"


def parse_terminal(text: str) -> list[list[bool]]:
    """The module matrix (True = dark) of a ``render_terminal`` text, without quiet zone.

    ANSI colour sequences are ignored; the result is cropped to the dark modules' bounding
    box, which for a QR symbol is the symbol itself (finder patterns touch three edges and
    the bottom and right edges hold dark modules of the bottom-left/top-right finders).
    """
    text = _ANSI_ESCAPE.sub("", text)
    rows: list[list[bool]] = []
    lines = text.splitlines()
    width = max((len(line) for line in lines), default=0)
    for line in lines:
        try:
            pairs = [_GLYPH_MODULES[glyph] for glyph in line.ljust(width)]
        except KeyError as exc:
            raise ValueError(f"not a half-block QR rendering: {exc.args[0]!r}") from None
        rows.append([top for top, _ in pairs])
        rows.append([bottom for _, bottom in pairs])
    dark_rows = [index for index, row in enumerate(rows) if any(row)]
    if not dark_rows:
        return []
    dark_cols = [col for col in range(width) if any(row[col] for row in rows)]
    return [row[dark_cols[0] : dark_cols[-1] + 1] for row in rows[dark_rows[0] : dark_rows[-1] + 1]]


def terminal_wanted(setting: bool | None, stream: TextIO | None = None) -> bool:
    """Whether to print QRs: WEBQQ_QR_TERMINAL True/False, or None ("auto") for a TTY."""
    if setting is not None:
        return setting
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
