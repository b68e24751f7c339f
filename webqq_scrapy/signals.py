"""Signals the spiders send, for components that tell a person (QR delivery, alerting).

Connect with ``crawler.signals.connect(handler, signal=webqq_scrapy.signals.qr_ready)``;
this project's components name each handler after its signal and connect them all with
:func:`connect_handlers`.

``qr_ready(account: str, png: bytes, path: str | None, generation: int)``
    a new QR image for ``account`` (generation 1, 2, … after each expiry). The spider also
    passes ``expires_in`` (seconds the QR is expected to stay valid), ``refresh`` and
    ``max_refreshes`` (QR refreshes so far, and the limit); handlers may leave them out.
``qr_state(account: str, state: str, outcome: str | None)``
    ``state`` is one of ``queued`` (waiting for admission, WEBQQ_MAX_ACCOUNTS_IN_FLIGHT;
    no QR yet), ``waiting``, ``scanned``, ``done``, ``failed``; ``outcome``
    is set with ``done``/``failed`` (an ``items.OUTCOMES`` value).
``session_ended(account: str, reason: str, retcode: int | None)``
    the service said ``account``'s stored session is over (docs/protocol.md §7, §8: a
    retcode such as 100001 or 103, or a kick message); only a new QR login helps. Sent by
    the session spiders and by ``qrlogin -a reuse=true``; handlers may accept only
    ``account`` and ``reason``.
``cancel_downloads(match: Callable[[Request], bool])``
    the crawl is stopping: the download handler (``webqq_scrapy.download``) cancels every
    download in flight whose request ``match`` accepts (it ends with ``DownloadStopped``).
    Sent by the account spiders; each receiver returns how many it cancelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy.crawler import Crawler

T = TypeVar("T")

qr_ready = object()
qr_state = object()
session_ended = object()
cancel_downloads = object()
_OWN = {
    "qr_ready": qr_ready,
    "qr_state": qr_state,
    "session_ended": session_ended,
    "cancel_downloads": cancel_downloads,
}

# Waiting for admission (WEBQQ_MAX_ACCOUNTS_IN_FLIGHT): no QR fetched yet.
QR_QUEUED = "queued"
QR_WAITING = "waiting"
QR_SCANNED = "scanned"
QR_DONE = "done"
QR_FAILED = "failed"


def connect_handlers(crawler: Crawler, receiver: object, *names: str) -> None:
    """Connect each method of ``receiver`` named in ``names`` to the signal of that name: one
    of this module's (``qr_ready``) or of ``scrapy.signals`` (``spider_closed``)."""
    from scrapy import signals

    for name in names:
        signal = _OWN[name] if name in _OWN else getattr(signals, name)
        crawler.signals.connect(getattr(receiver, name), signal=signal)


def optional_extension(
    cls: Callable[..., T],
    config: Any,
    crawler: Crawler,
    enabled: bool,
    handlers: tuple[str, ...],
) -> T:
    """An extension's ``from_crawler``: ``cls(config, crawler=crawler)`` with its methods
    ``handlers`` connected (:func:`connect_handlers`); NotConfigured when not ``enabled``
    (off by default: Scrapy logs no warning for it)."""
    from scrapy.exceptions import NotConfigured

    if not enabled:
        raise NotConfigured
    extension = cls(config, crawler=crawler)
    connect_handlers(crawler, extension, *handlers)
    return extension
