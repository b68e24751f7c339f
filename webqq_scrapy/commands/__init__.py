"""The project's ``scrapy`` commands: ``crawl`` (checks settings first), ``login``, ``creds``
(``_check`` runs ``creds check``; a module without a command class is not a command).

Commands may import every other part of the client side (config, spiders, store); never
the simulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from webqq_scrapy.protocol.apps import APPS

if TYPE_CHECKING:
    import argparse


def add_app_option(parser: argparse.ArgumentParser, purpose: str, *, same_as: str = "") -> None:
    """``--app NAME`` of ``login`` and ``creds``: the ptlogin2 app ``purpose`` says, one of
    the app table's (docs/apps.md); ``same_as``: the spider argument it stands for."""
    *names, last = APPS
    default = "default WEBQQ_APP, webqq"
    parser.add_argument(
        "--app",
        metavar="NAME",
        help=f"the ptlogin2 app {purpose}: {', '.join(names)} or {last} "
        f"({f'same as {same_as}; ' if same_as else ''}{default})",
    )
