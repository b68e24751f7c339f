"""The project's ``scrapy`` commands: ``crawl`` (checks settings first), ``login``, ``creds``.

Commands may import every other part of the client side (config, spiders, store); never
the simulator.
"""
