"""Fake Stability AI start-then-poll jobs: ``POST /v2beta/stable-image/upscale/creative``, then
``GET /v2beta/results/{id}`` (BEHAVIOUR.md, "operations that start a job and are polled").

The start validates the multipart form (``image`` a decodable picture, ``prompt`` required,
``output_format``, ``seed``, ``creativity`` 0-0.35), charges the key and answers
``200 {"id": "<64 hex>"}`` at once. The job runs for ``config.stability.job_s``; until then
a poll answers ``202 {"id", "status": "in-progress"}``, afterwards ``200`` with the upscaled
image (``accept: image/*``: bytes with ``finish-reason`` and ``seed`` headers;
``application/json``: ``{"image", "finish_reason", "seed"}``). An unknown id is a 404. The older
``.../upscale/creative/result/{id}`` answers the same. :attr:`StabilityJobs.starts`,
:attr:`~StabilityJobs.polls` and :attr:`~StabilityJobs.deliveries` count what clients did, so a
test can check a job was started once and its result fetched once.
"""

from __future__ import annotations

import asyncio
import base64
import io
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image, UnidentifiedImageError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from opusclip_lib.sandbox.imaging import OUTPUT_FORMATS
from opusclip_lib.sandbox.pipeline import route
from opusclip_lib.sandbox.stability_errors import StabilityError

if TYPE_CHECKING:
    from opusclip_lib.sandbox.stability import StabilityAPI

UPSCALE_CREDITS = 25.0
MAX_CREATIVITY = 0.35
MAX_SEED = 4_294_967_294
MAX_OUTPUT_SIDE = 2048


@dataclass(slots=True)
class Job:
    key: str
    ready_at: float
    image: bytes
    prompt: str
    output_format: str
    seed: int


def _upscaled(image: bytes, output_format: str) -> bytes:
    with Image.open(io.BytesIO(image)) as source:
        picture = source.convert("RGB")
    factor = max(1, min(4, MAX_OUTPUT_SIDE // max(picture.size)))
    larger = picture.resize((picture.width * factor, picture.height * factor),
                            Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    larger.save(buffer, format=OUTPUT_FORMATS[output_format])
    return buffer.getvalue()


class StabilityJobs:
    """The job table of one sandbox, and its routes."""

    def __init__(self, api: StabilityAPI) -> None:
        self.api = api
        self.jobs: dict[str, Job] = {}
        self.starts = 0
        self.polls: Counter[str] = Counter()
        self.deliveries: Counter[str] = Counter()
        self.routes: list[Route] = [
            route(api, "/v2beta/stable-image/upscale/creative", "stability.upscale",
                  self.start, ["POST"]),
            route(api, "/v2beta/results/{generation_id}", "stability.results", self.result,
                  ["GET"]),
            route(api, "/v2beta/stable-image/upscale/creative/result/{generation_id}",
                  "stability.results", self.result, ["GET"]),
        ]

    def reset(self) -> None:
        self.jobs.clear()
        self.starts = 0
        self.polls.clear()
        self.deliveries.clear()

    async def start(self, request: Request) -> Response:
        api = self.api
        try:
            key = api._authorise(request.headers.get("authorization", ""))
            if not request.headers.get("content-type", "").startswith("multipart/form-data"):
                raise StabilityError(400, "bad_request",
                                     "content-type: must be multipart/form-data")
            async with request.form() as form:
                upload = form.get("image")
                image = await upload.read() if upload is not None and not isinstance(
                    upload, str) else b""
                fields = {k: v for k, v in form.items() if isinstance(v, str)}
            problems = self._problems(fields, image)
            if problems:
                raise StabilityError(400, "bad_request", *problems)
            settings = api.config.stability
            if settings.credits is not None and api.credits.remaining(
                    key, settings.credits) < UPSCALE_CREDITS:
                raise StabilityError(402, "payment_required",
                                     "You lack sufficient credits to make this request. Please "
                                     "purchase more credits and try again.")
        except StabilityError as error:
            return error.response()
        api.credits.spend(key, UPSCALE_CREDITS)
        generation_id = secrets.token_hex(32)
        self.jobs[generation_id] = Job(
            key, time.monotonic() + api.config.stability.job_s, image, fields["prompt"],
            fields.get("output_format", "png"),
            int(fields.get("seed", "0")) or secrets.randbelow(MAX_SEED) + 1)
        self.starts += 1
        return JSONResponse({"id": generation_id})

    @staticmethod
    def _problems(fields: dict[str, str], image: bytes) -> list[str]:
        problems = []
        if not image:
            problems.append("image: is required")
        else:
            try:
                with Image.open(io.BytesIO(image)) as picture:
                    picture.verify()
            except (UnidentifiedImageError, OSError):
                problems.append("image: is not a supported image (jpeg, png or webp)")
        if not fields.get("prompt"):
            problems.append("prompt: is required")
        if fields.get("output_format", "png") not in OUTPUT_FORMATS:
            problems.append(f"output_format: must be one of {', '.join(OUTPUT_FORMATS)}")
        seed = fields.get("seed", "0")
        if not seed.isdigit() or int(seed) > MAX_SEED:
            problems.append(f"seed: must be an integer between 0 and {MAX_SEED}")
        try:
            creativity = float(fields.get("creativity", "0.3"))
        except ValueError:
            creativity = -1.0
        if not 0 <= creativity <= MAX_CREATIVITY:
            problems.append(f"creativity: must be a number between 0 and {MAX_CREATIVITY}")
        return problems

    async def result(self, request: Request) -> Response:
        generation_id = request.path_params["generation_id"]
        try:
            key = self.api._authorise(request.headers.get("authorization", ""))
            job = self.jobs.get(generation_id)
            if job is None or job.key != key:
                raise StabilityError(404, "not_found",
                                     f"id: generation {generation_id} was not found (results "
                                     "are kept for 24 hours)")
        except StabilityError as error:
            return error.response()
        self.polls[generation_id] += 1
        if time.monotonic() < job.ready_at:
            return JSONResponse({"id": generation_id, "status": "in-progress"}, 202)
        image = await asyncio.to_thread(_upscaled, job.image, job.output_format)
        self.deliveries[generation_id] += 1
        request_id = secrets.token_hex(16)
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"image": base64.b64encode(image).decode(),
                                 "finish_reason": "SUCCESS", "seed": job.seed},
                                headers={"x-request-id": request_id})
        return Response(image, media_type=f"image/{job.output_format}", headers={
            "finish-reason": "SUCCESS", "seed": str(job.seed), "x-request-id": request_id})
