"""pyproject.toml and requirements.txt agree (issue 16.1): every pinned runtime package is
declared by the package (as a dependency or in an extra), and every pin lies within the
range the package declares, so the tested set is one the package allows.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def pins() -> dict[str, str]:
    found = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", line
            found[canonicalize_name(requirement.name)] = specifier.version
    return found


def declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines.extend(extra)
    return {canonicalize_name(r.name): r for r in map(Requirement, lines)}


def test_every_pin_is_declared_and_within_its_range() -> None:
    pinned, ranges = pins(), declared()
    assert sorted(pinned) == sorted(ranges)
    for name, version in pinned.items():
        assert ranges[name].specifier.contains(version), (name, version, ranges[name])


def test_extras_name_the_optional_parts() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert [Requirement(r).name for r in extras["postgresql"]] == ["psycopg"]
    assert [Requirement(r).name for r in extras["redis"]] == ["redis"]
    entry_points = project["entry-points"]
    # Every command of the package but `crawl` (which would replace Scrapy's own in every
    # project), so each works in a project that only uses the add-on (issue 21, point 6).
    commands = {
        path.stem
        for path in (ROOT / "webqq_scrapy" / "commands").glob("*.py")
        if not path.stem.startswith("_")
    }
    assert entry_points["scrapy.commands"] == {
        name: f"webqq_scrapy.commands.{name}:Command" for name in sorted(commands - {"crawl"})
    }
