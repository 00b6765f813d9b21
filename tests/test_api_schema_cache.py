"""strict_json_schema builds each model's schema once, and hands out copies nobody can corrupt."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from opusclip_lib.api._schema import strict_json_schema


def _counted_schema_builds(model: type[BaseModel], monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Patch ``model.model_json_schema`` to count its calls; returns the one-slot counter."""
    calls = [0]
    build: Callable[..., dict[str, Any]] = model.model_json_schema

    def counting(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls[0] += 1
        return build(*args, **kwargs)

    monkeypatch.setattr(model, "model_json_schema", counting)
    return calls


def test_schema_is_built_once_per_model(monkeypatch: pytest.MonkeyPatch) -> None:
    class Caption(BaseModel):  # a class of its own: no other test has cached it
        text: str

    builds = _counted_schema_builds(Caption, monkeypatch)
    first = strict_json_schema(Caption)
    assert strict_json_schema(Caption) == first
    assert builds == [1]


def test_mutating_a_returned_schema_does_not_change_the_next() -> None:
    class Clip(BaseModel):
        start: float
        title: str

    class Picks(BaseModel):
        clips: list[Clip]

    pristine = strict_json_schema(Picks)
    corrupted = strict_json_schema(Picks)
    corrupted["json_schema"]["name"] = "Other"
    clip = corrupted["json_schema"]["schema"]["$defs"]["Clip"]  # nested: a shallow copy would leak
    clip["properties"]["title"]["type"] = "number"
    clip["required"].append("extra")
    assert strict_json_schema(Picks) == pristine
    assert pristine["json_schema"]["schema"]["$defs"]["Clip"]["required"] == ["start", "title"]
