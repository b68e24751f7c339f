"""Signals the qrlogin spider sends, for components that deliver the QR to a person.

Connect with ``crawler.signals.connect(handler, signal=webqq_scrapy.signals.qr_ready)``.

``qr_ready(account: str, png: bytes, path: str | None, generation: int)``
    a new QR image for ``account`` (generation 1, 2, … after each expiry).
``qr_state(account: str, state: str, outcome: str | None)``
    ``state`` is one of ``waiting``, ``scanned``, ``done``, ``failed``; ``outcome``
    is set with ``done``/``failed`` (an ``items.OUTCOMES`` value).
"""

from __future__ import annotations

qr_ready = object()
qr_state = object()

QR_WAITING = "waiting"
QR_SCANNED = "scanned"
QR_DONE = "done"
QR_FAILED = "failed"
