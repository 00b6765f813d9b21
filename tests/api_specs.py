"""The offline API specs (``shared/api-reference``) the sandbox's answers are checked against,
as session fixtures for every test module (tests/conftest.py registers this module)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from opusclip_lib.config import PROJECT_ROOT

DISCOVERY_EXTRAS = {"SearchResultSnippet": {"publishTime": {"type": "string",
                                                            "format": "date-time"}}}
"""Fields real responses carry that Google's discovery document does not list."""


def api_reference() -> Path:
    folder = Path(os.environ.get("OPUSCLIP_API_REFERENCE")
                  or PROJECT_ROOT.parent / "shared" / "api-reference")
    if not folder.is_dir():
        reason = f"API specs not found at {folder} (set OPUSCLIP_API_REFERENCE)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return folder


def sample(name: str) -> Any:
    """A documented example response from the specs' ``samples/`` folder."""
    return json.loads((api_reference() / "samples" / name).read_text())


def discovery_to_json_schema(schema: dict[str, Any], name: str = "") -> dict[str, Any]:
    """Google discovery schema -> JSON Schema: ``$ref`` by id, objects closed, kinds constant."""
    if "$ref" in schema:
        return {"$ref": f"#/$defs/{schema['$ref']}"}
    out: dict[str, Any] = {}
    kind = schema.get("type")
    if kind in ("string", "integer", "number", "boolean", "array", "object"):
        out["type"] = kind  # int64/uint64 are already strings in discovery documents
    if "enum" in schema:
        out["enum"] = schema["enum"]
    if schema.get("format") == "date-time":
        out["format"] = "date-time"
    if "items" in schema:
        out["items"] = discovery_to_json_schema(schema["items"])
    if "properties" in schema or kind == "object":
        props = {k: discovery_to_json_schema(v) for k, v in schema.get("properties", {}).items()}
        kind_default = schema.get("properties", {}).get("kind", {}).get("default")
        if kind_default:
            props["kind"] = {"const": kind_default}
        props |= DISCOVERY_EXTRAS.get(name, {})
        out["properties"] = props
        extra = schema.get("additionalProperties")
        out["additionalProperties"] = discovery_to_json_schema(extra) if extra else False
    return out


@pytest.fixture(scope="session")
def youtube_validators() -> dict[str, jsonschema.Validator]:
    doc = json.loads((api_reference() / "youtube-v3-discovery.json").read_text())
    defs = {name: discovery_to_json_schema(s, name) for name, s in doc["schemas"].items()}
    return {name: jsonschema.Draft202012Validator(
        {"$ref": f"#/$defs/{name}", "$defs": defs},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        for name in ("VideoListResponse", "SearchListResponse")}


@pytest.fixture(scope="session")
def openai_spec() -> dict[str, Any]:
    """Parsed once per session: the 3 MB YAML takes over a second even with the C loader."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load((api_reference() / "openai-openapi.yaml").read_text(), Loader=loader)


@pytest.fixture(scope="session")
def elevenlabs_spec() -> dict[str, Any]:
    return json.loads((api_reference() / "elevenlabs-openapi.json").read_text())
