"""The project's settings as a dict, for get_crawler() (which does not load them itself)."""

from __future__ import annotations

from typing import Any

from webqq_scrapy import settings as project


def project_settings(**overrides: Any) -> dict[str, Any]:
    values = {name: getattr(project, name) for name in dir(project) if name.isupper()}
    # The project's own tests run the simulator strict (docs/simulator.md, "Two modes").
    values["WEBQQ_SIMULATOR_STRICT"] = True
    values.update(overrides)
    return values
