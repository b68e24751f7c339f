"""Packaging for scrapyd: ships only the webqq_scrapy package (never tests/)."""

from setuptools import find_packages, setup

setup(
    name="webqq_scrapy",
    version="0.1.0",
    packages=find_packages(include=["webqq_scrapy", "webqq_scrapy.*"]),
    include_package_data=True,
    entry_points={"scrapy": ["settings = webqq_scrapy.settings"]},
)
