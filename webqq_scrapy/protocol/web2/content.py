"""The friends hash, msg_id sequence and message content (docs/protocol.md §2.2, §5.4, §6.2)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Final, NamedTuple

from webqq_scrapy.protocol.errors import CallArgumentError
from webqq_scrapy.protocol.web2.calls import _arg_int, _json
from webqq_scrapy.protocol.web2.values import _MAX_UIN32
from webqq_scrapy.protocol.web2.walk import _Node

# ---- Algorithms (§2.2, §2.4, §5.4, §6.2) ------------------------------------------------

_ECOK = b"ECOK"


def friends_hash(uin: int, ptwebqq: str) -> str:
    """§2.2 ``hash2(uin, ptwebqq)`` for get_user_friends2 / get_group_name_list_mask2.

    ``uin`` is the user's own QQ number from login2; ``ptwebqq`` the cookie (may be "").
    """
    if type(uin) is not int or not 0 <= uin <= _MAX_UIN32:
        raise CallArgumentError(f"uin must be an int below 2**32 for the hash: {uin!r}")
    if not ptwebqq.isascii():
        raise CallArgumentError("ptwebqq is not ASCII (it is hex, §2.6)")
    p = [0, 0, 0, 0]
    for i, ch in enumerate(ptwebqq):
        p[i % 4] ^= ord(ch)
    v = [b ^ s for b, s in zip(uin.to_bytes(4, "big"), _ECOK, strict=True)]
    return "".join(f"{p[i]:02X}{v[i]:02X}" for i in range(4))


class MsgIdSequence:
    """§2.4, the official msg_id: base ``(floor(now_ms/1000) mod 10000) * 10000``, then +1.

    ``now_ms`` is the clock reading when the session's page "loaded" (pass it in; nothing
    here reads a clock). ``sequence`` restores a persisted counter. Ids only need to be
    unique per session: re-using one is the one thing reported to fail.
    """

    def __init__(self, now_ms: float, sequence: int = 0) -> None:
        if isinstance(now_ms, bool) or not isinstance(now_ms, int | float) or now_ms < 0:
            raise CallArgumentError(f"now_ms must be a non-negative number: {now_ms!r}")
        self.base: int = (int(now_ms // 1000) % 10000) * 10000
        self.sequence: int = _arg_int("sequence", sequence)

    def __iter__(self) -> MsgIdSequence:
        return self

    def __next__(self) -> int:
        self.sequence += 1
        return self.base + self.sequence

    def next(self) -> int:
        return next(self)


@dataclass(frozen=True)
class Font:
    """The font element of a message (§5.4, §6.2); style = [bold, italic, underline]."""

    name: str = "宋体"
    size: int = 10
    style: tuple[int, int, int] = (0, 0, 0)
    color: str = "000000"

    def as_json(self) -> dict[str, object]:
        # §6.2: the official `fontFormat` key order.
        return {
            "name": self.name,
            "size": self.size,
            "style": list(self.style),
            "color": self.color,
        }


DEFAULT_FONT: Final = Font()

_FACE_TOKEN = re.compile(r"\[face:([0-9]{1,4})\]", re.ASCII)


def encode_content(text: str, *, font: Font = DEFAULT_FONT, faces: bool = True) -> str:
    """§6.2: the ``content`` *string*: a JSON array of pieces with the font element last.

    With ``faces`` (default), ``[face:N]`` tokens — what :func:`decode_content` produces —
    become ``["face", N]`` pieces, so received text can be sent back unchanged. No HTML
    escaping: the server escapes on delivery (§6.3).
    """
    pieces: list[object] = []
    pos = 0
    if faces:
        for m in _FACE_TOKEN.finditer(text):
            if m.start() > pos:
                pieces.append(text[pos : m.start()])
            pieces.append(["face", int(m.group(1))])
            pos = m.end()
    if pos < len(text):
        pieces.append(text[pos:])
    pieces.append(["font", font.as_json()])
    return _json(pieces)


class DecodedContent(NamedTuple):
    """Received content: ``text`` (entities decoded, faces as ``[face:N]``) and ``raw``,
    the array as received, re-serialized as compact JSON."""

    text: str
    raw: str


def decode_content(content: object, *, where: str = "content") -> DecodedContent:
    """§5.4: font element first and exactly once, then strings, ``["face", id]`` and the
    pre-2015-12 ``["cface", {…}]`` / ``["offpic", {…}]`` (rendered ``[cface]``/``[offpic]``).

    Strings are HTML-unescaped (the server escapes delivered text, §5.4/§6.3); ``\\r\\n``
    is kept as sent. A font-only content (how a 2018 image arrived) gives ``text == ""``.
    ``where`` prefixes error messages (``"poll2: result[0].value.content"``).
    """
    call, _, path = where.partition(": ")
    node = _Node(call, path, content)
    items = node.items()
    if not items:
        node.fail("empty, expected the font element first (§5.4)")
    out: list[str] = []
    for i, piece in enumerate(items):
        value = piece.value
        if isinstance(value, str):
            if i == 0:
                piece.fail("expected the font element first (§5.4)")
            out.append(html.unescape(value))
            continue
        parts = piece.items()
        if len(parts) != 2:
            piece.fail(f"expected [kind, value], got {len(parts)} elements")
        kind = parts[0].as_str()
        if kind == "font":
            if i != 0:
                piece.fail("font element not first (§5.4: first, exactly once)")
            parts[1].as_obj()
        elif i == 0:
            piece.fail(f"expected the font element first, got {kind!r} (§5.4)")
        elif kind == "face":
            out.append(f"[face:{parts[1].as_int(lo=0)}]")
        elif kind in ("cface", "offpic"):
            parts[1].as_obj()
            out.append(f"[{kind}]")
        else:
            parts[0].fail(f"unknown content piece {kind!r} (§5.4)")
    return DecodedContent("".join(out), _json(content))
