"""Packaging for scrapyd (docs/scrapyd.md): the egg holds the webqq_scrapy package and nothing else.

``scrapyd-deploy`` runs ``python setup.py bdist_egg`` in this directory; without this file it
would write its own, whose bare ``find_packages()`` also ships ``tests/``. The ``scrapy``
entry point names the settings module scrapyd runs the egg's spiders with. Data files must
be listed in ``package_data``: the QR web page's CSS, script and HTML (``webqq_scrapy/qr/
static/``, read with ``importlib.resources``, which reads them inside the zipped egg too).
Dependencies are not declared: scrapyd installs nothing from an egg, so they are installed
into scrapyd's own environment (``pip install -r requirements.txt``).
scrapyd ignores ``version``; the deployed version is ``scrapyd-deploy --version``.
"""

from setuptools import find_packages, setup

setup(
    name="webqq_scrapy",
    version="0.1.0",
    packages=find_packages(include=["webqq_scrapy", "webqq_scrapy.*"]),
    package_data={"webqq_scrapy.qr": ["static/*"]},
    entry_points={"scrapy": ["settings = webqq_scrapy.settings"]},
)
