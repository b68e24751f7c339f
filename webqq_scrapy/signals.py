"""Signals the spiders send, for components that tell a person (QR delivery, alerting).

Connect with ``crawler.signals.connect(handler, signal=webqq_scrapy.signals.qr_ready)``.

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

qr_ready = object()
qr_state = object()
session_ended = object()
cancel_downloads = object()

# Waiting for admission (WEBQQ_MAX_ACCOUNTS_IN_FLIGHT): no QR fetched yet.
QR_QUEUED = "queued"
QR_WAITING = "waiting"
QR_SCANNED = "scanned"
QR_DONE = "done"
QR_FAILED = "failed"
