"""The sandbox's knobs: one pydantic model a notebook can change while the server runs.

Every service reads its settings on each request, so ``config.openai.requests_per_minute = 3`` or
``config.inject("youtube.*", "server_error", times=2)`` takes effect on the very next call, even
when the server runs in a background thread. A limit set to ``None`` is off.
"""

from __future__ import annotations

import fnmatch
import math
import random
import threading
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from opusclip_lib.config import data_dir

ENDPOINTS = (
    "youtube.videos.list",
    "youtube.search.list",
    "openai.chat.completions",
    "openai.audio.transcriptions",
    "stability.generate",
    "elevenlabs.text_to_speech",
    "elevenlabs.text_to_speech.with_timestamps",
    "elevenlabs.voices.list",
    "openai.models.list",
    "openai.responses",
    "stability.upscale",
    "stability.results",
    "elevenlabs.text_to_speech.stream",
    "elevenlabs.text_to_speech.websocket",
    "elevenlabs.voices.get",
    "elevenlabs.voices.search",
)
"""Names that latency and fault targets match (exactly, by service prefix, or by glob)."""

FaultKind = Literal["rate_limit", "server_error", "unavailable", "timeout", "malformed", "cut",
                    "stall"]
STREAM_FAULTS = frozenset({"cut", "stall"})
"""Faults a streaming endpoint applies mid-body, after ``Fault.after_chunks`` chunks."""
Plan = Literal["free", "starter", "creator", "pro", "scale", "business"]

PLAN_CONCURRENCY: dict[str, int] = {
    "free": 2, "starter": 3, "creator": 5, "pro": 10, "scale": 15, "business": 15,
}
REJECTED_KEY_PREFIX = "invalid"


class _Settings(BaseModel):
    model_config = ConfigDict(validate_assignment=True, extra="forbid")


class Latency(_Settings):
    """How long the server "works" on a request: fixed, uniform or lognormal, from its own seed."""

    distribution: Literal["fixed", "uniform", "lognormal"] = "fixed"
    ms: float = Field(0.0, ge=0, description="fixed value, or the median for lognormal")
    low_ms: float = Field(0.0, ge=0)
    high_ms: float = Field(0.0, ge=0)
    sigma: float = Field(0.5, ge=0, description="lognormal shape (std-dev of log latency)")
    seed: int = 0
    _rng: random.Random = PrivateAttr()

    def model_post_init(self, _context: object) -> None:
        self._rng = random.Random(self.seed)

    @classmethod
    def fixed(cls, ms: float) -> Latency:
        return cls(distribution="fixed", ms=ms)

    @classmethod
    def uniform(cls, low_ms: float, high_ms: float, *, seed: int = 0) -> Latency:
        return cls(distribution="uniform", low_ms=low_ms, high_ms=high_ms, seed=seed)

    @classmethod
    def lognormal(cls, median_ms: float, sigma: float = 0.5, *, seed: int = 0) -> Latency:
        return cls(distribution="lognormal", ms=median_ms, sigma=sigma, seed=seed)

    def sample_s(self) -> float:
        if self.distribution == "fixed":
            return self.ms / 1000
        if self.distribution == "uniform":
            return self._rng.uniform(self.low_ms, self.high_ms) / 1000
        return self._rng.lognormvariate(math.log(max(self.ms, 1e-3)), self.sigma) / 1000


class Fault(_Settings):
    """An injected failure for endpoints matching ``target`` (a name, a service, or a glob).

    ``times`` limits the rule to the next N matching requests (``None``: forever); each matching
    request fails with ``probability``. ``timeout`` sleeps ``hang_s`` (longer than the
    client's timeout) before answering 504; ``malformed`` answers 200 with half the body.
    Mid-stream (streaming endpoints only, served over HTTP): ``cut`` drops the connection after
    ``after_chunks`` chunks; ``stall`` waits ``hang_s`` before the chunk after them.
    """

    target: str = "*"
    kind: FaultKind
    probability: float = Field(1.0, ge=0, le=1)
    times: int | None = Field(None, ge=0)
    retry_after_s: float = Field(1.0, ge=0, description="sent in Retry-After on rate_limit")
    hang_s: float = Field(30.0, ge=0)
    after_chunks: int = Field(0, ge=0, description="chunks sent before a cut or a stall")
    seed: int = 0
    _rng: random.Random = PrivateAttr()

    def model_post_init(self, _context: object) -> None:
        self._rng = random.Random(self.seed)

    def matches(self, endpoint: str) -> bool:
        return endpoint == self.target or endpoint.startswith(self.target + ".") or (
            fnmatch.fnmatchcase(endpoint, self.target))

    def fires(self) -> bool:
        """Whether this request fails; spends one of ``times`` when it does."""
        if self.times == 0 or (self.probability < 1 and self._rng.random() >= self.probability):
            return False
        if self.times is not None:
            self.times -= 1
        return True


class YouTubeSettings(_Settings):
    daily_quota: int | None = Field(10_000, ge=0, description="units per key per Pacific day")
    videos_list_cost: int = Field(1, ge=0)
    search_list_cost: int = Field(100, ge=0)


class OpenAISettings(_Settings):
    requests_per_minute: int | None = Field(500, ge=1)
    tokens_per_minute: int | None = Field(200_000, ge=1)
    token_latency: Latency = Field(default_factory=Latency)
    """Wait before each streamed token after the first (the first waits the endpoint latency)."""


class StabilitySettings(_Settings):
    requests_per_window: int | None = Field(150, ge=1)
    window_s: float = Field(10.0, gt=0)
    block_s: float = Field(60.0, ge=0, description="how long a key is blocked after a 429")
    credits: float | None = Field(None, ge=0, description="starting credits per key")
    blocked_words: tuple[str, ...] = ("gore",)
    """Prompt words that give 200 with ``finish-reason: CONTENT_FILTERED`` and a blurred image."""
    moderated_words: tuple[str, ...] = ("forbidden",)
    """Prompt words that give 403 ``content_moderation`` (the request is refused, not charged)."""
    long_side_px: int = Field(256, ge=16, le=2048)
    job_s: float = Field(2.0, ge=0, description="how long a started job (upscale) runs")


class ElevenLabsSettings(_Settings):
    plan: Plan | None = "creator"
    """Sets the concurrency limit (Free 2 ... Business 15); ``None`` removes it."""
    queue_s: float = Field(0.5, ge=0, description="how long a request over the limit waits")
    character_quota: int | None = Field(None, ge=0, description="characters per key")
    seconds_per_character: float = Field(0.055, gt=0)
    chunk_bytes: int = Field(4096, ge=1, description="audio bytes per chunk of /stream")
    chunk_latency: Latency = Field(default_factory=Latency)
    """Wait before each streamed audio chunk or WebSocket message after the first."""

    @property
    def concurrency_limit(self) -> int | None:
        return None if self.plan is None else PLAN_CONCURRENCY[self.plan]


class SandboxConfig(_Settings):
    """All knobs. Keys: any non-empty key is accepted unless it starts with ``"invalid"``."""

    youtube: YouTubeSettings = Field(default_factory=YouTubeSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    stability: StabilitySettings = Field(default_factory=StabilitySettings)
    elevenlabs: ElevenLabsSettings = Field(default_factory=ElevenLabsSettings)
    latency: dict[str, Latency] = Field(default_factory=dict)
    """Keyed by endpoint name, service name (``"openai"``) or ``"*"``; the most specific wins."""
    faults: list[Fault] = Field(default_factory=list)
    catalogue_path: Path = Field(default_factory=lambda: data_dir() / "catalogue.json")
    _fault_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @model_validator(mode="after")
    def _known_latency_targets(self) -> SandboxConfig:
        services = {name.split(".")[0] for name in ENDPOINTS}
        unknown = set(self.latency) - set(ENDPOINTS) - services - {"*"}
        if unknown:
            raise ValueError(f"unknown latency targets {sorted(unknown)}; use {ENDPOINTS}")
        return self

    @classmethod
    def unlimited(cls, **overrides: object) -> SandboxConfig:
        """Every quota, rate limit and concurrency limit off: for benchmarks."""
        config = cls(**overrides)
        config.youtube.daily_quota = None
        config.openai.requests_per_minute = None
        config.openai.tokens_per_minute = None
        config.stability.requests_per_window = None
        config.elevenlabs.plan = None
        return config

    @staticmethod
    def accepts_key(key: str | None) -> bool:
        return bool(key) and not key.startswith(REJECTED_KEY_PREFIX)

    def set_latency(self, target: str, latency: Latency | float | None) -> None:
        """``set_latency("openai", 120)`` (ms), a :class:`Latency`, or ``None`` to remove it."""
        latencies = dict(self.latency)
        if latency is None:
            latencies.pop(target, None)
        else:
            latencies[target] = latency if isinstance(latency, Latency) else Latency.fixed(latency)
        self.latency = latencies

    def latency_s(self, endpoint: str) -> float:
        latencies = self.latency
        if not latencies:
            return 0.0
        latency = (latencies.get(endpoint) or latencies.get(endpoint.split(".", 1)[0])
                   or latencies.get("*"))
        return latency.sample_s() if latency else 0.0

    def inject(self, target: str, kind: FaultKind, *, times: int | None = None,
               probability: float = 1.0, retry_after_s: float = 1.0, hang_s: float = 30.0,
               after_chunks: int = 0, seed: int = 0) -> Fault:
        """Add a fault rule (see :class:`Fault`) and return it so it can be inspected later."""
        fault = Fault(target=target, kind=kind, times=times, probability=probability,
                      retry_after_s=retry_after_s, hang_s=hang_s,
                      after_chunks=after_chunks, seed=seed)
        self.faults = [*self.faults, fault]
        return fault

    def clear_faults(self) -> None:
        self.faults = []

    def take_fault(self, endpoint: str) -> Fault | None:
        """The first rule that fires for this request, if any (locked: notebooks flip rules)."""
        faults = self.faults
        if not faults:
            return None
        with self._fault_lock:
            return next((f for f in faults if f.matches(endpoint) and f.fires()), None)
