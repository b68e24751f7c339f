"""Kept for scrapyd-deploy only: the package's metadata is in pyproject.toml.

``scrapyd-deploy`` runs ``python setup.py bdist_egg`` in this directory and, when there is
no ``setup.py``, writes its own, whose bare ``find_packages()`` would also ship ``tests/``.
This one defers to pyproject.toml, so the egg holds the ``webqq_scrapy`` package, its QR
page's static files and the ``scrapy`` settings entry point (docs/scrapyd.md), the same as
the wheel. scrapyd installs no dependencies from an egg: they are installed into scrapyd's
own environment (``pip install -r requirements.txt``). scrapyd ignores the version; the
deployed version is ``scrapyd-deploy --version``.
"""

from setuptools import setup

# No .pyc in the egg: bdist_egg byte-compiles unless PYTHONDONTWRITEBYTECODE is set, so the
# egg's content would depend on the shell it was built in; scrapyd compiles on import anyway.
setup(options={"install_lib": {"compile": False}})
