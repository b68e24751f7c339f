"""The README's settings table lists every WEBQQ_* setting once, with the type the
validation really accepts (issue 16.7).

A setting added to settings.py without a README row fails here; so does a row whose type
says "integer" for a setting that accepts 1.5, or "number" for one that refuses it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from scrapy.settings import Settings

from webqq_scrapy import settings as defaults
from webqq_scrapy.config import SettingError, known_settings, validate_all

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| `(WEBQQ_\w+)` \| ([^|]+?) \| ([^|]+?) \| (.+) \|$", re.M)


def table() -> dict[str, str]:
    rows = ROW.findall(README.read_text(encoding="utf-8"))
    names = [name for name, *_ in rows]
    assert len(names) == len(set(names)), "a setting has two rows"
    return {name: kind for name, kind, _, _ in rows}


def accepts(name: str, value: str) -> bool:
    try:
        validate_all(Settings({name: value}))
    except SettingError as error:
        assert error.name == name
        return False
    return True


def test_every_setting_has_a_row() -> None:
    assert sorted(table()) == known_settings()


@pytest.mark.parametrize("name", known_settings())
def test_the_row_states_the_type_the_setting_accepts(name: str) -> None:
    kind = table()[name]
    default = getattr(defaults, name)
    if kind == "integer":
        assert isinstance(default, int) and not accepts(name, "1.5") and accepts(name, "2")
    elif kind == "number":
        assert isinstance(default, (int, float)) and accepts(name, "1.5")
    elif kind == "boolean":
        assert isinstance(default, bool) and accepts(name, "yes") and not accepts(name, "maybe")
    elif kind == "`auto` or boolean":
        assert accepts(name, "auto") and accepts(name, "false") and not accepts(name, "maybe")
    elif kind == "number or `auto`":
        assert accepts(name, "auto") and accepts(name, "1.5") and not accepts(name, "soon")
    elif kind == "dict":
        assert isinstance(default, dict) and not accepts(name, "[1, 2]")
    else:
        assert kind == "string" and isinstance(default, str), kind
