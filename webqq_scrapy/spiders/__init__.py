"""The spiders (docs/spiders.md; what each one does: the README and docs/data-spiders.md).

``base`` (``AccountSpider``, the per-account plumbing every spider builds on), ``qrlogin``
and ``qrlogin_redis`` (the QR login), ``session`` (the base of the spiders on stored
credentials), ``session_check`` (``scrapy creds check``), ``web2base`` (the post-login
calls with retries) and the data spiders ``contacts`` and ``messages`` on it. Where the
accounts come from is not a spider: ``webqq_scrapy.sources``. Spiders never import the
simulator (the routing middleware starts it by dotted path); pyproject.toml's contracts.
"""
