"""pyproject.toml (the core and every extra) and environment.yml must ask for the same packages
with the same bounds."""

from __future__ import annotations

import tomllib

import yaml

from opusclip_lib.config import PROJECT_ROOT


def _normalise(requirement: str) -> str:
    return requirement.replace(" ", "").lower()


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    wanted = {*project["dependencies"], *(
        dep for extra in project["optional-dependencies"].values() for dep in extra
        if not dep.startswith(f"{project['name']}[")  # an extra that gathers other extras
    )}
    environment = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    declared = [req for req in pip_section if not req.startswith("-")]
    assert sorted(map(_normalise, declared)) == sorted(map(_normalise, wanted))
    python = next(d for d in environment["dependencies"]
                  if isinstance(d, str) and d.startswith("python"))
    assert python.removeprefix("python") == project["requires-python"]
