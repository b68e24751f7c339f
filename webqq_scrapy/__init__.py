"""webqq_scrapy: WebQQ/SmartQQ QR login with Scrapy, its stores, and an offline simulator.

``webqq_scrapy.Addon`` is the Scrapy add-on (``ADDONS = {"webqq_scrapy.Addon": 500}``,
``webqq_scrapy/addon.py``). It is loaded on first use: the simulator and the pure
``protocol`` package import this package too, and must not pull in Scrapy with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from webqq_scrapy.addon import Addon

__all__ = ["Addon"]


def __getattr__(name: str) -> Any:
    if name == "Addon":
        from webqq_scrapy.addon import Addon

        return Addon
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
