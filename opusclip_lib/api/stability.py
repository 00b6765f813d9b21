"""Stability AI v2beta Stable Image Core: one multipart POST, the image back as bytes; and the
creative upscale, which starts a job and is polled until its result is ready (:mod:`._polling`).

Two answer modes, both returning :class:`GeneratedImage`: ``"bytes"`` asks for ``image/*`` and
reads ``finish-reason``/``seed`` from the headers; ``"json"`` asks for ``application/json`` and
decodes the base64 ``image``. ``CONTENT_FILTERED`` is a flag on the result (see
:class:`GeneratedImage` for why); a request moderation refuses outright (403
``content_moderation``) raises :class:`~opusclip_lib.api.errors.ContentFilteredError`.
"""

from __future__ import annotations

from typing import Literal

import httpx
from pydantic import ValidationError

from opusclip_lib.api._base import APIClient
from opusclip_lib.api._headers import request_id_of
from opusclip_lib.api._polling import PollPolicy, PollStats, poll
from opusclip_lib.api._urls import segment
from opusclip_lib.api.errors import APIConnectionError, InvalidRequestError
from opusclip_lib.api.models.stability import (
    AspectRatio,
    CoreJSONAnswer,
    CoreRequest,
    FinishReason,
    GeneratedImage,
    GenerationStarted,
    OutputFormat,
)
from opusclip_lib.resilience.fallback import Fallback

CORE_PATH = "/v2beta/stable-image/generate/core"
CORE_CREDITS = 3  # per generated image; failed generations are not charged
UPSCALE_CREDITS = 25  # per started creative upscale
UPSCALE_PATH = "/v2beta/stable-image/upscale/creative"
RESULTS_PATH = "/v2beta/results/"
FINISH_REASONS: tuple[FinishReason, ...] = ("SUCCESS", "CONTENT_FILTERED")
AnswerMode = Literal["bytes", "json"]


class StabilityClient(APIClient):
    """``async with StabilityClient() as sd: image = await sd.generate_core("a red fox")``.

    Key from ``STABILITY_API_KEY`` (``Authorization: Bearer``). Timeouts: 5 s to connect, 60 s
    to read (an image takes 3-15 s), 30 s for the multipart upload and for a pooled connection.
    Limits: 100 connections: Stability allows 150 requests per 10 s, so at ~5 s an image about
    75 can be in flight.
    """

    provider = "stability"
    key_variable = "STABILITY_API_KEY"
    default_base_url = "https://api.stability.ai"
    default_timeout = httpx.Timeout(60.0, connect=5.0, write=30.0, pool=30.0)
    default_limits = httpx.Limits(max_connections=100, max_keepalive_connections=100,
                                  keepalive_expiry=4.0)
    cost_unit = "credits"

    def _auth_headers(self, secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}

    def _spend(self, operation: str, response: httpx.Response, result: object) -> dict[str, float]:
        # A filtered image counts as a failed generation, which Stability does not charge
        # (unconfirmed; the sandbox does the same).
        if operation == "upscale.start":
            return {"credits": UPSCALE_CREDITS} if isinstance(result, GenerationStarted) else {}
        if operation != "generate":
            return {}
        charged = isinstance(result, GeneratedImage) and not result.content_filtered
        return {"credits": CORE_CREDITS} if charged else {}

    async def generate_core(self, prompt: str, *, aspect_ratio: AspectRatio = "1:1",
                            negative_prompt: str | None = None, seed: int = 0,
                            style_preset: str | None = None, output_format: OutputFormat = "png",
                            mode: AnswerMode = "bytes",
                            ) -> GeneratedImage | Fallback[GeneratedImage]:
        """Generate one image; the documented limits are checked before a credit is at stake."""
        try:
            form = CoreRequest(prompt=prompt, aspect_ratio=aspect_ratio,
                               negative_prompt=negative_prompt, seed=seed,
                               style_preset=style_preset, output_format=output_format)
        except ValidationError as exc:
            problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
            raise InvalidRequestError(problems, provider=self.provider) from exc
        accept = "image/*" if mode == "bytes" else "application/json"
        media_type = f"image/{output_format}"

        def parse(response: httpx.Response) -> GeneratedImage:
            if mode == "bytes":
                return self._from_bytes(response)
            return self._from_json(response, media_type)

        async def attempt() -> GeneratedImage:
            request = self._request("POST", CORE_PATH, files=form.form(),
                                    headers={"Accept": accept})
            return await self._exchange("generate", request, parse)

        return await self._call(attempt, cache_key=self._cache_key(
            "POST", CORE_PATH, {"accept": accept}, form.model_dump()))

    async def upscale_creative(self, image: bytes, prompt: str, *,
                               negative_prompt: str | None = None, creativity: float = 0.3,
                               seed: int = 0, output_format: OutputFormat = "png",
                               poll_policy: PollPolicy | None = None) -> GeneratedImage:
        """Start a creative upscale and poll until the image is ready (see :mod:`._polling`);
        past ``poll_policy.deadline_s``, :class:`GenerationPendingError` keeps the id for
        :meth:`resume`."""
        generation_id = await self.start_upscale(
            image, prompt, negative_prompt=negative_prompt, creativity=creativity, seed=seed,
            output_format=output_format)
        return await self.resume(generation_id, output_format=output_format,
                                 poll_policy=poll_policy)

    async def start_upscale(self, image: bytes, prompt: str, *,
                            negative_prompt: str | None = None, creativity: float = 0.3,
                            seed: int = 0, output_format: OutputFormat = "png") -> str:
        """``POST /v2beta/stable-image/upscale/creative``: the generation id of a started job."""
        if not prompt:
            raise InvalidRequestError("prompt: is required", provider=self.provider)
        fields = {"prompt": prompt, "creativity": str(creativity), "seed": str(seed),
                  "output_format": output_format}
        if negative_prompt:
            fields["negative_prompt"] = negative_prompt
        files = {"image": ("image", image, "application/octet-stream"),
                 **{name: (None, value) for name, value in fields.items()}}

        async def attempt() -> str:
            request = self._request("POST", UPSCALE_PATH, files=files,
                                    headers={"Accept": "application/json"})
            started = await self._exchange(
                "upscale.start", request,
                lambda response: self._parse_model(response, GenerationStarted))
            return started.id

        started = await self._call(attempt)
        if isinstance(started, Fallback):  # a job has no stand-in
            raise APIConnectionError(f"no job started: {started.reason}", provider=self.provider)
        return started

    async def resume(self, generation_id: str, *, output_format: OutputFormat = "png",
                     poll_policy: PollPolicy | None = None,
                     stats: PollStats | None = None) -> GeneratedImage:
        """Poll ``GET /v2beta/results/{id}`` (202 while running) until the image is ready."""
        request = self._request("GET", RESULTS_PATH + segment(generation_id),
                                headers={"Accept": "image/*"})

        def parse(response: httpx.Response) -> GeneratedImage | None:
            return None if response.status_code == 202 else self._from_bytes(response)

        async def fetch() -> GeneratedImage | None:
            return await self._exchange("upscale.result", request, parse)

        return await poll(fetch, generation_id=generation_id, provider=self.provider,
                          policy=poll_policy or PollPolicy(), stats=stats)

    def _finish_reason(self, response: httpx.Response, value: object) -> FinishReason:
        if value not in FINISH_REASONS:
            raise self._malformed(response, f"unknown finish reason {value!r}")
        return value

    def _from_bytes(self, response: httpx.Response) -> GeneratedImage:
        media_type = response.headers.get("content-type", "").split(";")[0]
        if not media_type.startswith("image/") or not response.content:
            raise self._malformed(response, f"expected image bytes, got {media_type or 'nothing'}")
        seed = response.headers.get("seed")
        return GeneratedImage(
            image=response.content, media_type=media_type,
            finish_reason=self._finish_reason(response, response.headers.get("finish-reason")),
            seed=int(seed) if seed and seed.isdigit() else None,
            request_id=request_id_of(response.headers))

    def _from_json(self, response: httpx.Response, media_type: str) -> GeneratedImage:
        answer = self._parse_model(response, CoreJSONAnswer)
        return GeneratedImage(image=answer.image, media_type=media_type,
                              finish_reason=answer.finish_reason, seed=answer.seed,
                              request_id=request_id_of(response.headers))
