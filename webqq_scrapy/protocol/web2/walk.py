"""The one JSON decoder of post-login answers and its strict, path-naming walker."""

from __future__ import annotations

import json
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any, Final, NoReturn

from webqq_scrapy.protocol.codes import SessionState, session_state
from webqq_scrapy.protocol.common import MAX_ENVELOPE_BYTES, ProtocolError
from webqq_scrapy.protocol.errors import WebQQError
from webqq_scrapy.protocol.web2.values import MAX_ID

# ---- Strict JSON walking ------------------------------------------------------------------


class IncompleteAnswer(ProtocolError):
    """A degraded answer §4.15 records (friends without ``marknames``, groups without
    ``gmarklist``, discussions without ``dnamelist``, group detail without ``minfo``):
    real clients repeat the request (qqbot up to 5–7 times, §4.16)."""


class RetcodeError(WebQQError):
    """The service refused: a well-formed answer with a non-zero retcode; ``state`` says
    what to do (§7)."""

    def __init__(self, call: str, retcode: int, errmsg: str | None = None) -> None:
        self.call = call
        self.retcode = retcode
        self.errmsg = errmsg
        self.state: SessionState = session_state(retcode, call)
        super().__init__(f"{call}: retcode {retcode}" + (f" ({errmsg})" if errmsg else ""))


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


class _Node:
    """A value at a JSON path inside one call's answer; accessors check type and presence."""

    __slots__ = ("call", "path", "value")

    def __init__(self, call: str, path: str, value: object) -> None:
        self.call = call
        self.path = path
        self.value = value

    def fail(self, what: str, exc: type[ProtocolError] = ProtocolError) -> NoReturn:
        where = f"{self.call}: {self.path}" if self.path else self.call
        raise exc(f"{where}: {what}")

    def _expected(self, what: str) -> NoReturn:
        self.fail(f"expected {what}, got {_kind(self.value)} {_short(self.value)}")

    def child(self, name: str, value: object) -> _Node:
        return _Node(self.call, f"{self.path}.{name}" if self.path else name, value)

    def as_obj(self) -> Mapping[str, Any]:
        if not isinstance(self.value, Mapping):
            self._expected("an object")
        return self.value

    def has(self, name: str) -> bool:
        return name in self.as_obj()

    def key(self, name: str, *, degraded: bool = False) -> _Node:
        obj = self.as_obj()
        if name not in obj:
            if degraded:
                self.child(name, None).fail("missing (degraded answer, §4.15)", IncompleteAnswer)
            self.child(name, None).fail("missing")
        return self.child(name, obj[name])

    def opt(self, name: str) -> _Node | None:
        obj = self.as_obj()
        return self.child(name, obj[name]) if name in obj else None

    def items(self) -> list[_Node]:
        if not isinstance(self.value, list):
            self._expected("an array")
        return [_Node(self.call, f"{self.path}[{i}]", v) for i, v in enumerate(self.value)]

    def as_int(self, *, lo: int | None = None, hi: int | None = None) -> int:
        value = self.value
        if type(value) is not int:
            self._expected("an int")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self.fail(f"out of range: {value}")
        return value

    def as_id(self, *, zero: bool = False) -> int:
        """§4.13: a positive JSON integer that fits in 64 bits (0 only where ``zero``)."""
        return self.as_int(lo=0 if zero else 1, hi=MAX_ID)

    def as_flag(self) -> bool:
        return self.as_int(lo=0, hi=1) == 1

    def as_str(self) -> str:
        if not isinstance(self.value, str):
            self._expected("a string")
        return self.value

    def as_enum(self, allowed: Iterable[str]) -> str:
        value = self.as_str()
        if value not in allowed:
            self.fail(f"unknown value {value!r}")
        return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _result(call: str, result: object) -> _Node:
    return _Node(call, "result", result)


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


# poll2 answers (load_json(..., max_depth=…)) nesting arrays and objects deeper than this are
# refused before decoding: no answer of docs/protocol.md goes past 8 levels, and a message's
# content is whatever its sender made it (100,000 nested "[" once ended an account with a
# RecursionError traceback).
MAX_JSON_DEPTH: Final = 64
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")


def nested_deeper(body: bytes, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels in ``body`` (strings
    skipped; a rough answer for malformed JSON, which the decoder refuses anyway). Only
    bytes operations: a few milliseconds for a 1 MB answer."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # cannot be deeper than the bound
    # Outside strings: drop escaped backslashes, then escaped quotes, then every second
    # piece between quotes (the strings); keep only the brackets.
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[::2])
    brackets = outside.translate(_AS_SQUARE, _NOT_BRACKETS)
    for level in range(limit + 1):  # each pass removes the innermost level
        inner = brackets.replace(b"[]", b"")
        if not inner:
            return level + 1 > limit
        if inner == brackets:  # unbalanced: what is left opens or closes a level each
            return level + inner.count(b"[") > limit
        brackets = inner
    return True


def load_json(
    call: str, body: bytes | str, *, max_depth: int | None = None, surrogates: bool = False
) -> Any:
    """Decode an answer body strictly: UTF-8 JSON without NaN/Infinity and without
    duplicate keys (``{"retcode":0,"retcode":100001}`` would otherwise read as 100001).
    Nesting deeper than the decoder can recurse is a ProtocolError, never a RecursionError.

    It does not require a retcode, so the 2015–2017 send answer
    ``{"errCode":0,"msg":"send ok"}`` (§6.3) decodes too; :func:`load_envelope` does.

    ``max_depth``: refuse arrays and objects nested deeper (:data:`MAX_JSON_DEPTH` for
    poll2). ``surrogates``: bytes that are not UTF-8 are kept as lone surrogates
    (U+DC80–U+DCFF) instead of refusing the whole body, for a caller that refuses the item
    holding them and keeps the others (poll2, :func:`~webqq_scrapy.protocol.web2.parse_poll2`).
    """
    if max_depth is not None:
        raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
        if nested_deeper(raw, max_depth):
            raise ProtocolError(
                f"{call}: body is not JSON we read: arrays and objects nested more than "
                f"{max_depth} levels deep"
            )
    if len(body) > MAX_ENVELOPE_BYTES:
        raise ProtocolError(f"{call}: body of {len(body)} bytes is too long for an API answer")
    try:
        if surrogates and isinstance(body, bytes):
            body = body.decode("utf-8", "surrogateescape")
        return json.loads(body, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise ProtocolError(
            f"{call}: body is not JSON we read: arrays and objects nested deeper than the "
            "decoder's recursion limit"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"{call}: body is not JSON: {exc}") from None


def load_envelope(call: str, body: bytes | str, **decoding: Any) -> dict[str, Any]:
    """The one decoder of a §1.4 answer, login calls (getvfwebqq, login2) included: strict
    JSON (:func:`load_json`, ``decoding`` its keyword arguments), an object, an integer
    ``retcode`` — or ``ret``, copied to ``retcode`` (§1.4); a boolean or a float is not a
    retcode. Else ProtocolError."""
    node = _Node(call, "", load_json(call, body, **decoding))
    envelope = dict(node.as_obj())
    envelope["retcode"] = _retcode(node)
    return envelope


def result_of(call: str, envelope: object) -> Any:
    """§1.4: the ``result`` of a ``{"retcode":0,"result":…}`` envelope.

    A non-zero retcode raises :class:`RetcodeError` even when a (partial) ``result`` came
    with it (100003, §4.1); a malformed envelope raises ProtocolError.
    """
    node = _Node(call, "", envelope)
    retcode = _retcode(node)
    if retcode != 0:
        errmsg = node.opt("errmsg")
        raise RetcodeError(call, retcode, errmsg.as_str() if errmsg else None)
    return node.key("result").value


def _retcode(node: _Node) -> int:
    # §1.4: the official wrapper reads `ret` when `retcode` is absent.
    if node.has("retcode"):
        return node.key("retcode").as_int()
    if node.has("ret"):
        return node.key("ret").as_int()
    return node.key("retcode").as_int()


def _once(node: _Node, value: int, seen: Container[int], what: str = "uin") -> int:
    if value in seen:
        node.fail(f"duplicate {what} {value}")
    return value


# ---- The two joins of §4.14 -----------------------------------------------------------------


def aligned(side: _Node, key: str, main: Sequence[_Node], main_key: str, one: str) -> list[_Node]:
    """§4.14 "one entry per member, same order, same uin": the array ``side`` has one entry
    per entry of ``main``, the ``i``-th entry's ``key`` equal to ``main[i]``'s ``main_key``
    (``one`` names what a ``main`` entry is: "friend", "member"). Returns ``side``'s
    entries, in ``main``'s order."""
    entries = side.items()
    if len(entries) != len(main):
        side.fail(
            f"{len(entries)} entries for {len(main)} {one}s (§4.14: one per {one}, same order)"
        )
    for entry, owner in zip(entries, main, strict=True):
        got, want = entry.key(key).as_id(), owner.key(main_key).as_id()
        if got != want:
            entry.key(key).fail(f"{got} != {owner.path}.{main_key} {want} (§4.14)")
    return entries


def keyed(
    entries: Iterable[_Node],
    key: str,
    members: Container[int],
    outsider: str = "is not a member",
    what: str = "uin",
) -> dict[int, _Node]:
    """§4.14 "a side table keyed by uin, a member, once": each entry's ``key`` is one of
    ``members`` (else "<id> ``outsider``") and names one entry only. Returns the entries by
    that id, in the answer's order."""
    out: dict[int, _Node] = {}
    for entry in entries:
        node = entry.key(key)
        value = node.as_id()
        if value not in members:
            node.fail(f"{value} {outsider} (§4.14)")
        out[_once(node, value, out, what)] = entry
    return out
