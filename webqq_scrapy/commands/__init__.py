"""The project's ``scrapy`` commands: ``crawl`` (checks settings first), ``login``, ``creds``
(``_check`` runs ``creds check``; a module without a command class is not a command).

Commands may import every other part of the client side (config, spiders, store); never
the simulator.
"""
