"""The QR in a terminal: half-block rendering of the PNG, its parser, and when to print."""

from __future__ import annotations

import io
import re
import sys
from typing import TYPE_CHECKING, cast

from PIL import Image

if TYPE_CHECKING:
    from typing import TextIO

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
    data = grey.tobytes()  # mode "L": one byte per pixel, row by row

    def pixel(x: int, y: int) -> int:
        return data[y * width + x]

    low, high = cast("tuple[int, int]", grey.getextrema())
    if high - low < 64:
        raise ValueError("not a QR image: no contrast")
    threshold = (low + high) / 2
    dark = grey.point(lambda value: 255 if value < threshold else 0)
    box = dark.getbbox()
    if box is None:  # pragma: no cover - excluded by the contrast check
        raise ValueError("not a QR image: nothing dark")
    left, top, right, bottom = box
    run = 0
    while left + run < right and pixel(left + run, top) < threshold:
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
            pixel(
                min(width - 1, int(left + (col + 0.5) * pitch_x)),
                min(height - 1, int(top + (row + 0.5) * pitch_y)),
            )
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
