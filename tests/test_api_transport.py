"""The sender factory, and vcrpy recording and replaying through every transport.

vcrpy (9.x) patches httpx's own transports (``AsyncHTTPTransport``, ``ASGITransport``,
``MockTransport``) and aiohttp's ``ClientSession._request``; the aiohttp sender and
``httpx_aiohttp.AiohttpTransport`` are reached only through the latter, so each request is
recorded exactly once whichever transport sends it, and a cassette recorded through one
transport replays through the others.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr
import yaml
import yarl
from aiohttp import web
from httpx_aiohttp import AiohttpTransport

from opusclip_lib.api import ElevenLabsClient, StabilityClient, YouTubeClient, make_sender
from opusclip_lib.api.transport import (
    TRANSPORT_VARIABLE,
    AiohttpSender,
    HttpxSender,
    Outgoing,
    default_transport_name,
)
from opusclip_lib.sandbox import REAL_BASE_URLS, SandboxConfig, build_app, serve

KEY = "AIzaSyTESTKEY000000000000000000000000"
TRANSPORTS = ["aiohttp", "httpx-aiohttp", "httpx"]


async def test_default_sender_is_aiohttp_unless_the_environment_says(
        monkeypatch: pytest.MonkeyPatch) -> None:
    options = {"limits": httpx.Limits(max_connections=7), "timeout": httpx.Timeout(1.0)}
    monkeypatch.delenv(TRANSPORT_VARIABLE, raising=False)
    assert default_transport_name() == "aiohttp"
    senders = [make_sender(None, **options), make_sender("httpx-aiohttp", **options)]
    monkeypatch.setenv(TRANSPORT_VARIABLE, "httpx")
    senders.append(make_sender(None, **options))
    senders.append(make_sender(httpx.MockTransport(lambda r: httpx.Response(204)), **options))
    assert isinstance(senders[0], AiohttpSender)
    assert isinstance(senders[1], HttpxSender)
    assert isinstance(senders[1].transport, AiohttpTransport)
    assert isinstance(senders[2], HttpxSender)
    assert isinstance(senders[2].transport, httpx.AsyncHTTPTransport)
    assert isinstance(senders[3], HttpxSender)
    for sender in senders:
        await sender.aclose()
    monkeypatch.setenv(TRANSPORT_VARIABLE, "curl")
    with pytest.raises(ValueError, match="OPUSCLIP_HTTP_TRANSPORT"):
        default_transport_name()


async def test_only_a_bodiless_aiohttp_request_goes_without_the_clients_own_deadline() -> None:
    # aiohttp bounds the pool wait, the connection and every read, but no write: a body may wait
    # on a stalled peer. httpx transports may enforce nothing (ASGITransport, MockTransport).
    url = yarl.URL("http://127.0.0.1:9/videos?id=a", encoded=True)
    get, post = Outgoing("GET", url, {}), Outgoing("POST", url, {}, b"{}")
    aiohttp_sender = AiohttpSender(httpx.Limits(max_connections=2), httpx.Timeout(1.0))
    unbounded = AiohttpSender(httpx.Limits(max_connections=2), httpx.Timeout(1.0, read=None))
    mock = HttpxSender(httpx.MockTransport(lambda r: httpx.Response(204)), httpx.Timeout(1.0))
    assert aiohttp_sender.bounds(get)
    assert not aiohttp_sender.bounds(post)
    assert not unbounded.bounds(get)
    assert not mock.bounds(get)
    for sender in (aiohttp_sender, unbounded, mock):
        await sender.aclose()


def recorder(folder: Path, mode: str) -> vcr.VCR:
    return vcr.VCR(cassette_library_dir=str(folder), record_mode=mode,
                   filter_headers=[("authorization", "REDACTED"), ("xi-api-key", "REDACTED")],
                   filter_query_parameters=[("key", "REDACTED")])


async def generate(base_urls: dict[str, str], transport: Any) -> tuple[bytes, bytes, list[str]]:
    """One image, one speech and one videos.list through ``transport`` (a name or a factory)."""
    def pick() -> Any:
        return transport() if callable(transport) else transport

    async with StabilityClient("sk-stab-key", base_url=base_urls["stability"],
                               transport=pick()) as sd:
        image = await sd.generate_core("a red fox", seed=11)
    async with ElevenLabsClient("el-key-0123456789", base_url=base_urls["elevenlabs"],
                                transport=pick()) as tts:
        speech = await tts.text_to_speech("Hello from the cassette", "21m00Tcm4TlvDq8ikWAM")
    async with YouTubeClient(KEY, base_url=base_urls["youtube"], transport=pick()) as yt:
        videos = await yt.videos(["opusSample1"])
    return image.image, speech.audio, [v.id for v in videos]  # type: ignore[union-attr]


def interactions(cassette: Path) -> list[dict[str, Any]]:
    return yaml.safe_load(cassette.read_text())["interactions"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("recording_transport", TRANSPORTS)
async def test_cassette_round_trip_is_byte_exact_through_every_transport(
        tmp_path: Path, recording_transport: str) -> None:
    cassette = tmp_path / "round_trip.yaml"
    async with serve(SandboxConfig()) as urls:
        base_urls = {"stability": urls.stability, "elevenlabs": urls.elevenlabs,
                     "youtube": urls.youtube}
        with recorder(tmp_path, "all").use_cassette(cassette.name):
            recorded = await generate(base_urls, recording_transport)
    assert recorded[0].startswith(b"\x89PNG")
    assert recorded[1][:3] in (b"ID3", b"\xff\xfb")
    assert len(interactions(cassette)) == 3  # one entry per request: nothing recorded twice
    text = cassette.read_text()
    assert KEY not in text
    assert "el-key-0123456789" not in text
    assert "sk-stab-key" not in text
    # The server is gone: only the cassette can answer now, through either transport.
    for replaying_transport in TRANSPORTS:
        with recorder(tmp_path, "none").use_cassette(cassette.name) as played:
            replayed = await generate(base_urls, replaying_transport)
        assert played.all_played
        assert [hashlib.sha256(b).hexdigest() for b in replayed[:2]] == [
            hashlib.sha256(b).hexdigest() for b in recorded[:2]]
        assert replayed == recorded


async def test_asgi_recording_replays_through_aiohttp(tmp_path: Path) -> None:
    """Record against the in-process sandbox with the real base URLs, replay over aiohttp."""
    app = build_app(SandboxConfig())
    with recorder(tmp_path, "all").use_cassette("asgi.yaml"):
        recorded = await generate(REAL_BASE_URLS, lambda: httpx.ASGITransport(app))
    assert len(interactions(tmp_path / "asgi.yaml")) == 3
    assert interactions(tmp_path / "asgi.yaml")[0]["request"]["uri"].startswith(
        "https://api.stability.ai/v2beta/")
    with recorder(tmp_path, "none").use_cassette("asgi.yaml"):
        replayed = await generate(REAL_BASE_URLS, "aiohttp")
    assert replayed == recorded



async def test_aiohttp_sender_hands_back_the_decoded_body_with_the_wire_headers() -> None:
    """The body arrives compressed (``auto_decompress=False``); the ``httpx.Response`` it is
    handed back as is read through httpx's decoders, and keeps the headers the server sent."""
    body = b'{"items": []}' * 50
    compressed = gzip.compress(body)

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=compressed, content_type="application/json",
                            headers={"Content-Encoding": "gzip"})

    app = web.Application()
    app.router.add_get("/v", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    sender = AiohttpSender(httpx.Limits(max_connections=2), httpx.Timeout(5.0))
    try:
        response = await sender.send(Outgoing("GET", yarl.URL(f"http://127.0.0.1:{port}/v"),
                                              {"Accept-Encoding": "gzip"}))
    finally:
        await sender.aclose()
        await runner.cleanup()
    assert response.status_code == 200
    assert response.content == body
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-length"] == str(len(compressed))
