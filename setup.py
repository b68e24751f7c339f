"""Packaging for scrapyd (docs/scrapyd.md): the egg holds the webqq_scrapy package and nothing else.

``scrapyd-deploy`` runs ``python setup.py bdist_egg`` in this directory; without this file it
would write its own, whose bare ``find_packages()`` also ships ``tests/``. The ``scrapy``
entry point names the settings module scrapyd runs the egg's spiders with. The package has
no data files (the simulator draws its QR codes with segno); one added later must be listed
in ``package_data``. Dependencies are not declared: scrapyd installs nothing from an egg, so
they are installed into scrapyd's own environment (``pip install -r requirements.txt``).
scrapyd ignores ``version``; the deployed version is ``scrapyd-deploy --version``.
"""

from setuptools import find_packages, setup

setup(
    name="webqq_scrapy",
    version="0.1.0",
    packages=find_packages(include=["webqq_scrapy", "webqq_scrapy.*"]),
    entry_points={"scrapy": ["settings = webqq_scrapy.settings"]},
)
