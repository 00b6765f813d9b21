"""Stability client: multipart request, bytes and JSON answers, CONTENT_FILTERED, local checks;
then the sandbox end to end."""

from __future__ import annotations

import base64
import email.parser
import email.policy
from typing import Any

import httpx
import pytest

from opusclip_lib.api import (
    ContentFilteredError,
    InvalidRequestError,
    MalformedResponseError,
    StabilityClient,
)
from opusclip_lib.api.models import GeneratedImage
from opusclip_lib.sandbox import SandboxConfig, build_app

KEY = "sk-stab-0123456789abcdef"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def form_fields(request: httpx.Request) -> dict[str, str]:
    """The multipart body parsed back into its fields, the way a server would."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode() + request.content)
    return {part.get_param("name", header="content-disposition"): part.get_content()
            for part in message.iter_parts()}


class FakeStability:
    def __init__(self, finish: str = "SUCCESS", *, content_type: str = "image/png") -> None:
        self.finish = finish
        self.content_type = content_type
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers["accept"] == "application/json":
            return httpx.Response(200, json={"image": base64.b64encode(PNG).decode(),
                                             "finish_reason": self.finish, "seed": 42})
        return httpx.Response(200, content=PNG, headers={
            "content-type": self.content_type, "finish-reason": self.finish, "seed": "42",
            "x-request-id": "f" * 32})


def client(fake: FakeStability) -> StabilityClient:
    return StabilityClient(KEY, transport=httpx.MockTransport(fake))


async def test_bytes_mode_sends_multipart_and_returns_the_image() -> None:
    fake = FakeStability()
    async with client(fake) as sd:
        image = await sd.generate_core("a red fox", aspect_ratio="9:16", seed=7,
                                       negative_prompt="blurry")
    assert isinstance(image, GeneratedImage)
    assert (image.image, image.media_type, image.seed) == (PNG, "image/png", 42)
    assert (image.finish_reason, image.content_filtered) == ("SUCCESS", False)
    assert image.request_id == "f" * 32
    sent = fake.requests[0]
    assert sent.url == "https://api.stability.ai/v2beta/stable-image/generate/core"
    assert sent.headers["accept"] == "image/*"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert form_fields(sent) == {"prompt": "a red fox", "aspect_ratio": "9:16", "seed": "7",
                                 "negative_prompt": "blurry", "output_format": "png"}
    assert sd.usage.spent == {"credits": 3}
    assert "image=" not in repr(image)  # a repr never dumps the bytes


async def test_json_mode_decodes_base64() -> None:
    fake = FakeStability()
    async with client(fake) as sd:
        image = await sd.generate_core("a red fox", mode="json", output_format="webp")
    assert fake.requests[0].headers["accept"] == "application/json"
    assert (image.image, image.media_type, image.seed) == (PNG, "image/webp", 42)


@pytest.mark.parametrize("mode", ["bytes", "json"])
async def test_content_filtered_is_a_flag_on_the_result(mode: Any) -> None:
    async with client(FakeStability("CONTENT_FILTERED")) as sd:
        image = await sd.generate_core("something graphic", mode=mode)
    assert image.content_filtered  # type: ignore[union-attr]
    assert image.image == PNG  # type: ignore[union-attr]
    assert sd.usage.spent["credits"] == 0  # a filtered image is not charged


@pytest.mark.parametrize(("options", "problem"), [
    ({"prompt": ""}, "prompt"),
    ({"prompt": "x" * 10_001}, "prompt"),
    ({"prompt": "fox", "aspect_ratio": "4:3"}, "aspect_ratio"),
    ({"prompt": "fox", "seed": 4_294_967_295}, "seed"),
    ({"prompt": "fox", "output_format": "gif"}, "output_format"),
])
async def test_documented_limits_are_checked_before_any_request(options: dict[str, Any],
                                                                problem: str) -> None:
    fake = FakeStability()
    async with client(fake) as sd:
        with pytest.raises(InvalidRequestError, match=problem):
            await sd.generate_core(**options)
    assert fake.requests == []


async def test_answers_that_are_not_images_are_malformed() -> None:
    async with client(FakeStability(content_type="application/json")) as sd:
        with pytest.raises(MalformedResponseError, match="expected image bytes") as caught:
            await sd.generate_core("fox")
    assert caught.value.request_id == "f" * 32
    async with client(FakeStability("MAYBE")) as sd:
        with pytest.raises(MalformedResponseError, match="unknown finish reason"):
            await sd.generate_core("fox")
        with pytest.raises(MalformedResponseError, match="finish_reason"):
            await sd.generate_core("fox", mode="json")


async def test_json_mode_refuses_corrupt_base64() -> None:
    def corrupt(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"image": "not base64!", "finish_reason": "SUCCESS"})

    async with StabilityClient(KEY, transport=httpx.MockTransport(corrupt)) as sd:
        with pytest.raises(MalformedResponseError, match="not base64"):
            await sd.generate_core("fox", mode="json")


# --- against the sandbox ----------------------------------------------------------------------


async def test_sandbox_generates_filters_and_moderates() -> None:
    async with StabilityClient("sandbox-key",
                               transport=httpx.ASGITransport(build_app(SandboxConfig()))) as sd:
        image = await sd.generate_core("a red fox", seed=5)
        as_json = await sd.generate_core("a red fox", seed=5, mode="json")
        filtered = await sd.generate_core("gore in the woods")
        with pytest.raises(ContentFilteredError) as refused:
            await sd.generate_core("a forbidden fox")
    assert image.image.startswith(b"\x89PNG")  # type: ignore[union-attr]
    assert image.request_id  # type: ignore[union-attr]
    assert as_json.image == image.image  # type: ignore[union-attr]
    assert filtered.content_filtered  # type: ignore[union-attr]
    assert filtered.image.startswith(b"\x89PNG")  # type: ignore[union-attr]
    assert refused.value.code == "content_moderation"
    assert refused.value.request_id
    assert sd.usage.calls == 4
    assert sd.usage.failures == 1
    assert sd.usage.spent["credits"] == 2 * 3
