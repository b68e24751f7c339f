"""Token generators of the simulator: qrsig, ptwebqq, skey, ptsigx, vfwebqq, psessionid (§2.6).

Pure functions over a ``random.Random``; the simulator passes the operating system's random
source (``random.SystemRandom``, as the ``secrets`` module uses), also under ``--seed``, since
anyone who knows a seed could predict the tokens. The formats are the ones decoded from the
recorded fixtures in docs/protocol.md §2.6.
"""

from __future__ import annotations

import random
import string
import zlib

__all__ = ["TokenFactory", "erlang_psessionid", "qq_number", "uin_cookie"]

# §2.6: qrsig is 64 chars of [A-Za-z0-9*-]; p_skey/pt4_token/superkey are 44 chars from the
# same alphabet ending in "_".
_SIG_ALPHABET = string.ascii_letters + string.digits + "*-"
_ALNUM = string.ascii_letters + string.digits
_HEX = "0123456789abcdef"

# Self uins of the simulator lie in [QQ_MIN, QQ_MIN + QQ_SPAN): above 2**27, so the Erlang
# term of §2.6 encodes them as SMALL_BIG_EXT with 4 bytes exactly as in the recorded
# psessionid (224 hex), and below 2**32 (the hash2 of §2.2 takes 4 bytes of the uin).
QQ_MIN = 200_000_000
QQ_SPAN = 3_000_000_000

# §2.6: the PID inside the recorded psessionid lives on this Erlang node.
PSESSION_NODE = "connserver_webqq@10.133.41.84"

# Erlang external term format tags (used by psessionid, §2.6).
_ETF_VERSION = 131
_ETF_SMALL_TUPLE = 104
_ETF_PID = 103
_ETF_ATOM = 100
_ETF_INTEGER = 98
_ETF_SMALL_BIG = 110
_ETF_BINARY = 109


def qq_number(account: str) -> int:
    """The account's QQ number: stable across logins, derived from its name (crc32)."""
    return QQ_MIN + zlib.crc32(account.encode("utf-8")) % QQ_SPAN


def uin_cookie(qq: int) -> str:
    """§2.6: ``o`` + the QQ number zero-padded to 10 digits (uin, superuin, p_uin, pt2gguin)."""
    return f"o{qq:010d}"


def erlang_psessionid(
    uin: int, skey: str, vfwebqq: str, pid_id: int, pid_serial: int, creation: int = 2
) -> str:
    """§2.6: hex of ``term_to_binary({Pid, Uin, SkeyBinary, VfwebqqBytes})``."""
    node = PSESSION_NODE.encode("ascii")
    out = bytearray([_ETF_VERSION, _ETF_SMALL_TUPLE, 4])
    out += bytes([_ETF_PID, _ETF_ATOM]) + len(node).to_bytes(2, "big") + node
    out += pid_id.to_bytes(4, "big") + pid_serial.to_bytes(4, "big") + bytes([creation])
    if uin < 2**27:
        out += bytes([_ETF_INTEGER]) + uin.to_bytes(4, "big")
    else:
        size = (uin.bit_length() + 7) // 8
        out += bytes([_ETF_SMALL_BIG, size, 0]) + uin.to_bytes(size, "little")
    key = skey.encode("ascii")
    out += bytes([_ETF_BINARY]) + len(key).to_bytes(4, "big") + key
    raw = bytes.fromhex(vfwebqq)
    out += bytes([_ETF_BINARY]) + len(raw).to_bytes(4, "big") + raw
    return out.hex()


class TokenFactory:
    """Issues fresh tokens in the recorded formats (§2.6)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def _pick(self, alphabet: str, length: int) -> str:
        """``length`` characters of ``alphabet``, uniformly: bytes in one call of the source
        (one ``os.urandom`` for the system one), the few above a multiple of the alphabet's
        size rejected."""
        size = len(alphabet)
        limit = 256 - 256 % size
        out: list[str] = []
        while len(out) < length:
            for byte in self._rng.randbytes(length + length // 2):
                if byte < limit:
                    out.append(alphabet[byte % size])
                    if len(out) == length:
                        break
        return "".join(out)

    def qrsig(self) -> str:
        return self._pick(_SIG_ALPHABET, 64)

    def login_sig(self) -> str:
        """pt_login_sig / g_login_sig of the login page (§3.0; its format is not recorded)."""
        return self._pick(_SIG_ALPHABET, 64)

    def qr_id(self) -> str:
        return self._pick(_ALNUM, 24)

    def ptwebqq(self) -> str:
        return self._pick(_HEX, 64)

    def vfwebqq(self) -> str:
        return self._pick(_HEX, 80)

    def ptsigx(self) -> str:
        return self._pick(_HEX, 128)

    def skey(self) -> str:
        return "@" + self._pick(_ALNUM, 9)

    def key44(self) -> str:
        """p_skey, pt4_token, superkey: 43 signature chars and a final ``_``."""
        return self._pick(_SIG_ALPHABET, 43) + "_"

    def supertoken(self) -> str:
        # The recorded jar holds a decimal supertoken ("397467713").
        return str(self._rng.randrange(10**8, 2**31))

    def guid_sig(self) -> str:
        return self._pick(_HEX, 64)

    def recent_uins(self) -> str:
        return self._pick(_HEX, 112)

    def rk(self) -> str:
        return self._pick(_ALNUM, 10)

    def psessionid(self, uin: int, skey: str, vfwebqq: str) -> str:
        # PID numbers: 15-bit id and 13-bit serial, as in Erlang's external PID format.
        return erlang_psessionid(
            uin, skey, vfwebqq, self._rng.randrange(1, 2**15), self._rng.randrange(0, 2**13)
        )
