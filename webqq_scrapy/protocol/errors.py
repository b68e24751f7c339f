"""The protocol package's exceptions: one base, the service's faults apart from the caller's.

``WebQQError`` is the base of every exception ``webqq_scrapy.protocol`` raises on purpose:

* the service sent something wrong — :class:`ProtocolError` (an answer without the recorded
  shape; its subclass ``web2.IncompleteAnswer``, a degraded answer worth asking again) and
  ``web2.RetcodeError`` (a well-formed refusal: a non-zero retcode, docs/protocol.md §7);
* the caller asked for something wrong — :class:`CallArgumentError` (a value a builder
  refuses: an id out of range, a status the protocol does not have; ``apps.UnknownApp``) and
  :class:`CallArgumentTypeError` (a value of the wrong type, a missing or unknown
  parameter). They subclass ``ValueError`` / ``TypeError``, which the builders raised before.

Pure: no Scrapy, no I/O. docs/protocol.md §1.4 (the envelope), docs/adding-a-call.md.
"""

from __future__ import annotations

__all__ = ["CallArgumentError", "CallArgumentTypeError", "ProtocolError", "WebQQError"]


class WebQQError(Exception):
    """Base of the protocol package's exceptions (see the module docstring)."""


class ProtocolError(WebQQError, ValueError):
    """The service sent something wrong: an answer that does not have the recorded shape."""


class CallArgumentError(WebQQError, ValueError):
    """The caller asked for something wrong: a builder refused an argument's value."""


class CallArgumentTypeError(CallArgumentError, TypeError):
    """The caller asked for something wrong: an argument of the wrong type, or a parameter
    missing or unknown to the call."""
