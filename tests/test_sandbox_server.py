"""Routing, serving over loopback, and the knobs: latency distributions and injected faults."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from pydantic import ValidationError

from opusclip_lib.sandbox import (
    Latency,
    SandboxConfig,
    build_app,
    clients,
    serve,
)

RACHEL = "21m00Tcm4TlvDq8ikWAM"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
VIDEO = {"part": "snippet", "id": "opusSample1"}


async def test_serve_answers_all_four_services_on_one_loopback_port(config):
    async with serve(config) as urls, clients(urls) as api:
        assert urls.openai.startswith("http://127.0.0.1:")
        assert urls.openai.endswith("/openai/v1")
        video = await api.youtube.get("/videos", params=VIDEO)
        chat = await api.openai.post("/chat/completions", json=CHAT)
        image = await api.stability.post("/v2beta/stable-image/generate/core",
                                         data={"prompt": "x"}, files={"none": ""})
        speech = await api.elevenlabs.post(f"/v1/text-to-speech/{RACHEL}", json={"text": "Hi"})
        assert [r.status_code for r in (video, chat, image, speech)] == [200] * 4
        assert video.json()["items"][0]["id"] == "opusSample1"
        assert image.content.startswith(b"\x89PNG")
        assert speech.headers["content-type"] == "audio/mpeg"
        assert len(speech.content) > 1000
        config.youtube.daily_quota = 0  # knobs flip while the server thread runs
        assert (await api.youtube.get("/videos", params=VIDEO)).status_code == 403
        urls.sandbox.reset()
        config.youtube.daily_quota = 1
        assert (await api.youtube.get("/videos", params=VIDEO)).status_code == 200


async def test_real_hosts_route_by_host_header_and_unknown_paths_404():
    transport = httpx.ASGITransport(build_app(SandboxConfig()))
    async with httpx.AsyncClient(transport=transport) as client:
        alias = await client.get("https://youtube.googleapis.com/youtube/v3/videos",
                                 params=VIDEO | {"key": "k"})
        assert alias.status_code == 200
        assert (await client.get("https://api.openai.com/v1/nothing")).status_code == 404
        assert (await client.get("https://example.com/v1/voices")).status_code == 404


@pytest.mark.looptime
async def test_latency_applies_per_endpoint(config, sandbox):
    """On looptime's fake loop clock only the sandbox's waits count, so each is exact."""
    loop = asyncio.get_running_loop()
    config.set_latency("openai", 80)
    started = loop.time()
    await sandbox.openai.post("/chat/completions", json=CHAT)
    assert loop.time() - started == pytest.approx(0.08)
    started = loop.time()
    await sandbox.youtube.get("/videos", params=VIDEO)
    assert loop.time() - started == 0
    config.set_latency("openai", None)
    assert config.latency == {}


def test_latency_distributions_are_seeded_and_bounded():
    first = Latency.lognormal(50, 0.5, seed=3).sample_s()
    samples = Latency.lognormal(50, 0.5, seed=3)
    again = [samples.sample_s() for _ in range(200)]
    assert first == again[0]
    assert len(set(again)) > 100
    assert 0.03 < sorted(again)[100] < 0.07  # median near 50 ms
    uniform = Latency.uniform(10, 20, seed=1)
    assert all(0.01 <= uniform.sample_s() <= 0.02 for _ in range(100))
    assert Latency.fixed(5).sample_s() == 0.005
    with pytest.raises(ValidationError):
        SandboxConfig(latency={"openai.chat": Latency.fixed(1)})


async def test_rate_limit_fault_for_the_next_n_requests(config, sandbox):
    fault = config.inject("openai", "rate_limit", times=2, retry_after_s=1.5)
    first, second, third = [await sandbox.openai.post("/chat/completions", json=CHAT)
                            for _ in range(3)]
    assert [first.status_code, second.status_code, third.status_code] == [429, 429, 200]
    assert first.headers["retry-after"] == "2"
    assert first.headers["retry-after-ms"] == "1500"
    assert first.headers["x-ratelimit-remaining-requests"] == "0"
    assert first.json()["error"]["code"] == "rate_limit_exceeded"
    assert first.json()["error"]["message"].endswith("Please try again in 1.5s.")
    assert fault.times == 0


@pytest.mark.parametrize(("kind", "status"), [("server_error", 500), ("unavailable", 503)])
async def test_server_faults_use_each_services_error_shape(config, sandbox, kind, status):
    config.inject("*", kind)
    youtube = await sandbox.youtube.get("/videos", params=VIDEO)
    openai = await sandbox.openai.post("/chat/completions", json=CHAT)
    stability = await sandbox.stability.post("/v2beta/stable-image/generate/core",
                                             data={"prompt": "x"}, files={"none": ""})
    elevenlabs = await sandbox.elevenlabs.get("/v1/voices")
    assert {r.status_code for r in (youtube, openai, stability, elevenlabs)} == {status}
    assert youtube.json()["error"]["errors"][0]["reason"] == "backendError"
    assert openai.json()["error"]["type"] == "server_error"
    assert "errors" in stability.json()
    assert "status" in elevenlabs.json()["detail"]


async def test_faults_target_one_endpoint_only(config, sandbox):
    config.inject("youtube.videos.list", "server_error")
    assert (await sandbox.youtube.get("/videos", params=VIDEO)).status_code == 500
    assert (await sandbox.youtube.get("/search", params={"part": "id"})).status_code == 200
    config.clear_faults()
    assert (await sandbox.youtube.get("/videos", params=VIDEO)).status_code == 200


async def test_probabilistic_faults_are_seeded(config, sandbox):
    async def failures(seed: int) -> list[int]:
        config.clear_faults()
        config.inject("youtube", "server_error", probability=0.5, seed=seed)
        return [(await sandbox.youtube.get("/videos", params=VIDEO)).status_code
                for _ in range(20)]

    run = await failures(7)
    assert run == await failures(7)
    assert {200, 500} == set(run)


async def test_malformed_fault_truncates_a_200_body(config, sandbox):
    config.inject("youtube", "malformed", times=1)
    broken = await sandbox.youtube.get("/videos", params=VIDEO)
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    assert json.loads((await sandbox.youtube.get("/videos", params=VIDEO)).content)["items"]


async def test_timeout_fault_hangs_then_answers_504(config, sandbox):
    config.inject("elevenlabs", "timeout", times=1, hang_s=0.2)
    started = time.perf_counter()
    response = await sandbox.elevenlabs.get("/v1/voices")
    assert response.status_code == 504
    assert time.perf_counter() - started >= 0.2


async def test_timeout_fault_over_http_trips_the_client_timeout_and_shuts_down(config):
    """The server stops with the hang still pending; were it to wait out the hour, the
    suite's pytest-timeout would fail this test."""
    config.inject("openai", "timeout", hang_s=3600)
    async with serve(config) as urls, clients(urls, timeout_s=0.3) as api:
        with pytest.raises(httpx.ReadTimeout):
            await api.openai.post("/chat/completions", json=CHAT)


def test_unlimited_config_turns_every_limit_off():
    config = SandboxConfig.unlimited()
    assert config.youtube.daily_quota is None
    assert config.openai.requests_per_minute is None
    assert config.openai.tokens_per_minute is None
    assert config.stability.requests_per_window is None
    assert config.elevenlabs.concurrency_limit is None


async def test_concurrent_requests_all_succeed_with_limits_off():
    config = SandboxConfig.unlimited()
    config.set_latency("*", Latency.uniform(5, 15, seed=1))
    async with clients(build_app(config)) as api:
        responses = await asyncio.gather(*(api.youtube.get("/videos", params=VIDEO)
                                           for _ in range(200)))
    assert {r.status_code for r in responses} == {200}
