"""The spiders: per-account chains of requests on the plumbing of ``base.AccountSpider``.

``base`` (the reusable spider base), ``accounts`` (where accounts come from: arguments,
file, Redis leases), ``qrlogin`` and ``qrlogin_redis`` (the QR login), ``session`` (the
base of the spiders that work on stored credentials) and ``session_check`` (the liveness
check of ``scrapy creds check``). Spiders may import
``protocol``, ``config``, ``items``, ``meta``, ``retry``, ``signals``, ``qr`` and ``store``;
never the simulator (the routing middleware starts it by dotted path). docs/spiders.md
shows how to write a spider on the base.
"""
