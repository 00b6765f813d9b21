"""Fake Stability AI v2beta Stable Image generate (``core``, ``ultra``, ``sd3``); the
start-then-poll upscale is in :mod:`.stability_jobs`.

No offline spec exists for v2beta, so the shapes follow BEHAVIOUR.md. Sandbox choices where it
is silent: a seed of 0 (or none) is derived from the request, not random, so responses stay
deterministic; JSON mode keeps ``x-request-id`` but drops ``finish-reason``/``seed`` headers;
CONTENT_FILTERED images are not charged; a prompt with letters outside the Latin script gives 422
``invalid_language`` (Stability serves English only).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import unicodedata

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from opusclip_lib.sandbox.config import Fault, SandboxConfig
from opusclip_lib.sandbox.imaging import ASPECT_RATIOS, OUTPUT_FORMATS, render
from opusclip_lib.sandbox.limits import Allowance, SlidingWindow
from opusclip_lib.sandbox.pipeline import Handler, retry_after, route, work
from opusclip_lib.sandbox.stability_errors import StabilityError
from opusclip_lib.sandbox.stability_jobs import StabilityJobs

MODEL_CREDITS = {"core": 3.0, "ultra": 8.0, "sd3": 6.5}
STYLE_PRESETS = (
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance",
    "fantasy-art", "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk",
    "origami", "photographic", "pixel-art", "tile-texture",
)
MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_PROMPT = 10_000
MAX_SEED = 4_294_967_294
FAULT_ERRORS = {
    500: ("internal_error", "An unexpected server error has occurred, please try again later."),
    503: ("service_unavailable", "The service is temporarily unavailable, please try again."),
    504: ("timeout", "The request timed out, please try again."),
}


def _validate(form: dict[str, str]) -> list[str]:
    """Every field problem at once, worded ``field: problem`` like Stability's 400s."""
    problems = []
    prompt = form.get("prompt")
    if not prompt:
        problems.append("prompt: is required")
    elif len(prompt) > MAX_PROMPT:
        problems.append(f"prompt: must be at most {MAX_PROMPT} characters")
    if len(form.get("negative_prompt", "")) > MAX_PROMPT:
        problems.append(f"negative_prompt: must be at most {MAX_PROMPT} characters")
    choices = {"aspect_ratio": ASPECT_RATIOS, "output_format": tuple(OUTPUT_FORMATS),
               "style_preset": STYLE_PRESETS}
    for field, allowed in choices.items():
        if field in form and form[field] not in allowed:
            problems.append(f"{field}: must be one of {', '.join(allowed)}")
    seed = form.get("seed", "0")
    if not seed.isdigit() or int(seed) > MAX_SEED:
        problems.append(f"seed: must be an integer between 0 and {MAX_SEED}")
    return problems


def _is_latin(text: str) -> bool:
    return all(not ch.isalpha() or unicodedata.name(ch, "").startswith("LATIN") for ch in text)


def _words(text: str) -> set[str]:
    return {w.strip(".,;:!?\"'()").lower() for w in text.split()}


class StabilityAPI:
    """Routes relative to ``https://api.stability.ai``."""

    hosts = ("api.stability.ai",)
    base_path = ""
    local_prefix = "/stability"

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.window = SlidingWindow()
        self.credits = Allowance()
        self.jobs = StabilityJobs(self)
        self.routes = [*(route(self, f"/v2beta/stable-image/generate/{model}",
                               "stability.generate", self._generate_with(model), ["POST"])
                         for model in MODEL_CREDITS), *self.jobs.routes]

    def reset(self) -> None:
        self.window.reset()
        self.credits.reset()
        self.jobs.reset()

    def fault_response(self, fault: Fault, status: int) -> Response:
        if status == 429:
            return self._rate_limited(fault.retry_after_s).response()
        name, message = FAULT_ERRORS[status]
        return StabilityError(status, name, message).response()

    def _rate_limited(self, blocked_s: float) -> StabilityError:
        settings = self.config.stability
        return StabilityError(
            429, "rate_limit_exceeded",
            f"You have exceeded the rate limit of {settings.requests_per_window} requests within a "
            f"{settings.window_s:g} second period, and have been timed out for "
            f"{settings.block_s:g} seconds.",
            headers=retry_after(blocked_s))

    def _generate_with(self, model: str) -> Handler:
        async def generate(request: Request) -> Response:
            try:
                return await self._generate(request, model)
            except StabilityError as error:
                return error.response()
        return generate

    async def _generate(self, request: Request, model: str) -> Response:
        settings = self.config.stability
        key = self._authorise(request.headers.get("authorization", ""))
        if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES or len(
                await request.body()) > MAX_BODY_BYTES:
            raise StabilityError(413, "payload_too_large",
                                 "body: payloads cannot be larger than 10MiB in size")
        if settings.requests_per_window is not None:
            blocked = self.window.hit(key, settings.requests_per_window, settings.window_s,
                                      settings.block_s)
            if blocked:
                raise self._rate_limited(blocked)
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise StabilityError(400, "bad_request", "content-type: must be multipart/form-data")
        async with request.form() as raw:
            form = {k: v for k, v in raw.items() if isinstance(v, str)}
        problems = _validate(form)
        if problems:
            raise StabilityError(400, "bad_request", *problems)
        prompt = form["prompt"]
        words = _words(prompt)
        if words & {w.lower() for w in settings.moderated_words}:
            raise StabilityError(403, "content_moderation",
                                 "Your request was flagged by our content moderation system, as a "
                                 "result your request was denied and you were not charged.")
        if not _is_latin(prompt):
            raise StabilityError(422, "invalid_language",
                                 "English is the only supported language for this service.")
        cost = MODEL_CREDITS[model]
        if settings.credits is not None and self.credits.remaining(key, settings.credits) < cost:
            raise StabilityError(402, "payment_required",
                                 "You lack sufficient credits to make this request. Please "
                                 "purchase more credits and try again.")
        await work(self.config, "stability.generate")
        seed = int(form.get("seed", "0")) or self._derived_seed(form)
        filtered = bool(words & {w.lower() for w in settings.blocked_words})
        fmt = form.get("output_format", "png")
        image = await asyncio.to_thread(
            render, prompt, seed, form.get("aspect_ratio", "1:1"), form.get("style_preset", ""),
            fmt, settings.long_side_px, filtered)
        if not filtered:
            self.credits.spend(key, cost)
        finish = "CONTENT_FILTERED" if filtered else "SUCCESS"
        request_id = secrets.token_hex(16)
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"image": base64.b64encode(image).decode(),
                                 "finish_reason": finish, "seed": seed},
                                headers={"x-request-id": request_id})
        return Response(image, media_type=f"image/{fmt}", headers={
            "finish-reason": finish, "seed": str(seed), "x-request-id": request_id})

    def _authorise(self, header: str) -> str:
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not self.config.accepts_key(key):
            raise StabilityError(401, "unauthorized", "authorization: missing or invalid API key")
        return key

    @staticmethod
    def _derived_seed(form: dict[str, str]) -> int:
        """Seed 0 means "pick one": derived from the request so replays match."""
        material = "|".join(f"{k}={form[k]}" for k in sorted(form)).encode()
        return int.from_bytes(hashlib.sha256(material).digest()[:4], "big") % MAX_SEED + 1
