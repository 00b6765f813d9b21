"""Where the workflow's clients talk: one endpoint per provider, the sandbox kept out."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import httpx
import pytest

from opusclip_lib.api import ConfigurationError
from opusclip_lib.media import load_transcript, sample_transcript
from opusclip_lib.sandbox import SANDBOX_KEY, SandboxConfig, build_app
from opusclip_lib.sandbox.endpoints import LOOPBACK_PREFIXES, sandbox_endpoints
from opusclip_lib.targets import endpoints_for
from opusclip_lib.workflow import UNLIMITED, open_services
from opusclip_lib.workflow.endpoints import (
    ROOT_KEY,
    ROOT_PATHS,
    Endpoint,
    endpoints_at,
    endpoints_from_env,
)
from opusclip_lib.workflow.services import make_policy

HEAVY = ("opusclip_lib.sandbox", "starlette", "uvicorn", "PIL")


def test_importing_the_workflow_loads_no_sandbox_or_server() -> None:
    code = ("import json, sys, opusclip_lib.workflow; "
            f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({HEAVY!r}))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                       text=True, check=True, timeout=120).stdout)
    assert loaded == []


def test_environment_picks_base_urls_and_keys_per_provider() -> None:
    found = endpoints_from_env({"OPUSCLIP_OPENAI_BASE_URL": "http://127.0.0.1:8000/v1",
                                "OPENAI_API_KEY": "sk-local", "STABILITY_API_KEY": "sk-st"})
    assert found.openai == Endpoint("http://127.0.0.1:8000/v1", "sk-local")
    assert found.stability == Endpoint(None, "sk-st")
    assert found.youtube == Endpoint()
    assert found.youtube_media is None


def test_a_key_never_shows_in_a_repr() -> None:
    assert "sk-secret" not in repr(Endpoint("http://gateway", "sk-secret"))


def test_a_root_serves_the_four_apis_under_the_sandbox_layout() -> None:
    assert ROOT_PATHS == LOOPBACK_PREFIXES
    found = endpoints_at("http://127.0.0.1:9/", environ={"OPENAI_API_KEY": "sk-real"})
    assert found.openai == Endpoint("http://127.0.0.1:9/openai/v1", "sk-real")
    assert found.youtube == Endpoint("http://127.0.0.1:9/youtube/v3", ROOT_KEY)


def test_targets_name_their_endpoints() -> None:
    assert endpoints_for("live").name == "live"
    assert endpoints_for("sandbox").youtube_media is not None
    assert endpoints_for("http://gateway.invalid").openai.base_url == (
        "http://gateway.invalid/openai/v1")
    served = endpoints_for("sandbox+http://127.0.0.1:9/")
    assert served.openai.base_url == "http://127.0.0.1:9/openai/v1"
    assert served.youtube_media is not None  # YouTube ids offline, as in process


async def test_any_base_url_with_any_key_reaches_the_provider_api() -> None:
    """A gateway or compatible server: the client appends the documented path to its URL and
    sends the key it was given, nothing sandbox-specific."""
    sample = load_transcript(sample_transcript())
    seen: list[httpx.Request] = []
    sandbox = httpx.ASGITransport(build_app(SandboxConfig.unlimited()))

    async def gateway(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path.removeprefix("/gw")
        headers = {name: value for name, value in request.headers.items() if name != "host"}
        forwarded = httpx.Request(request.method, f"https://api.openai.com{path}",
                                  headers=headers | {"authorization": f"Bearer {SANDBOX_KEY}"},
                                  content=request.content)
        return await sandbox.handle_async_request(forwarded)

    endpoints = endpoints_from_env({"OPUSCLIP_OPENAI_BASE_URL": "http://gateway.local/gw/v1",
                                    "OPENAI_API_KEY": "sk-proxy-key"}).with_transports(
        {"openai": httpx.MockTransport(gateway)})
    async with open_services(endpoints, limits=UNLIMITED, cached=False) as services:
        picks = await services.openai.pick_highlights(sample.segments, 1)
    assert len(picks) == 1
    assert str(seen[0].url) == "http://gateway.local/gw/v1/chat/completions"
    assert seen[0].headers["authorization"] == "Bearer sk-proxy-key"


async def test_a_provider_without_a_key_fails_only_when_called() -> None:
    async with open_services(endpoints_from_env({}), cached=False) as services:
        with pytest.raises(ConfigurationError, match="YOUTUBE_API_KEY"):
            await services.youtube.videos(["opusSample1"])


def test_sandbox_endpoints_in_process_and_served() -> None:
    in_process = sandbox_endpoints(build_app(SandboxConfig()))
    assert in_process.openai.base_url == "https://api.openai.com/v1"
    assert isinstance(in_process.openai.transport, httpx.ASGITransport)
    served = sandbox_endpoints("http://127.0.0.1:8765")
    assert served.elevenlabs == Endpoint("http://127.0.0.1:8765/elevenlabs", SANDBOX_KEY)


@pytest.mark.parametrize("response_cache", [True, False])
def test_response_cache_off_leaves_the_json_apis_uncached(response_cache: bool) -> None:
    limits = replace(UNLIMITED, response_cache=response_cache)
    for provider in ("youtube", "openai"):
        policy = make_policy(provider, limits, None)
        assert (policy.cache is not None) == response_cache
