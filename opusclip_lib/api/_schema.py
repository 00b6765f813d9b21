"""Turn a pydantic model into the JSON schema OpenAI's strict structured outputs accept.

Strict mode wants every object closed (``additionalProperties: false``) and every property
listed in ``required``; pydantic's schema has neither, so we add them. Nothing else changes:
constraints such as ``minimum``/``maximum`` stay, so the model sees the same rules the answer
is validated against.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from pydantic import BaseModel


def _close_objects(node: Any) -> Any:
    if isinstance(node, dict):
        closed = {key: _close_objects(value) for key, value in node.items()}
        if closed.get("type") == "object" and "properties" in closed:
            closed["additionalProperties"] = False
            closed["required"] = list(closed["properties"])
        return closed
    if isinstance(node, list):
        return [_close_objects(item) for item in node]
    return node


def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``response_format`` for ``model``: ``{"type": "json_schema", "json_schema": {...}}``.

    Built once per model (pydantic takes milliseconds to) and copied on every call: it goes into
    a request body, which is the caller's to change.
    """
    return copy.deepcopy(_built_json_schema(model))


@functools.cache
def _built_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {"name": model.__name__, "strict": True,
                        "schema": _close_objects(model.model_json_schema())},
    }
