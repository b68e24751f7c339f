"""QR delivery: how the QR of each login reaches the person who must scan it.

``files`` writes the PNG into WEBQQ_QR_DIR (``save_qr`` when ptqrshow returns one, again
when a new QR replaces an expired one, ``remove_qr`` when the account finishes);
``terminal`` renders it with half-block characters (``render_terminal``, when
``terminal_wanted``). The spider calls those directly, as ``qr.save_qr(...)``. The two
extensions listen to the spider's signals (``webqq_scrapy.signals``) instead: ``page``
(``QRWebPage``, the token-protected web page, its CSS, script and HTML in ``static/``) and
``webhook`` (``QRWebhook``, a JSON POST per event).

``files`` and ``terminal`` import the standard library and Pillow only; ``page`` and
``webhook`` also Scrapy, Twisted, ``webqq_scrapy.signals``, ``webqq_scrapy.config``,
``webqq_scrapy.items`` and ``webqq_scrapy.retry``. Nothing here imports the spiders, the
protocol, the store or the simulator; importing this package loads neither extension.
"""

from __future__ import annotations

from webqq_scrapy.qr.files import ensure_qr_dir, qr_path, remove_qr, save_qr
from webqq_scrapy.qr.terminal import (
    QUIET_ZONE,
    parse_terminal,
    qr_matrix,
    render_terminal,
    terminal_wanted,
)

__all__ = [
    "QUIET_ZONE",
    "ensure_qr_dir",
    "parse_terminal",
    "qr_matrix",
    "qr_path",
    "remove_qr",
    "render_terminal",
    "save_qr",
    "terminal_wanted",
]
