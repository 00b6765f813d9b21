"""Plausible JSON for a JSON Schema, as a structured-output model would write it, but seeded.

Generic: every type, enum/const, anyOf/oneOf/allOf, local ``$ref``, numeric bounds, string
lengths, formats and patterns (:mod:`.string_formats`) and array sizes are honoured. Domain
rules make the clipping app's answers read as sense (see :mod:`.highlights`): an object with a
start-like and an end-like number is a *clip*; when the prompt holds a transcript of
``[12.3-15.8] text`` lines, as many clips as the task asks for are cut from its sentences, and
their text, hook, title and score come from the words spoken there; arrays named ``titles`` or
``hashtags`` and a ``caption``/``text`` string are built from the transcript's best sentences
and words.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Any, TypeVar

from opusclip_lib.sandbox.highlights import (
    Request,
    Sentence,
    Span,
    caption_for,
    hashtags_for,
    pick_spans,
    sentences_of,
    titles_for,
)
from opusclip_lib.sandbox.string_formats import formatted, matching

TRANSCRIPT_LINE = re.compile(  # "[12.5 - 20] text", with a hyphen or an en dash
    r"\[\s*(\d+(?:\.\d+)?)\s*[-\u2013]\s*(\d+(?:\.\d+)?)\s*\]\s*([^\[\n]*)")
START = re.compile(r"^(start|begin|from)", re.IGNORECASE)
END = re.compile(r"^(end|stop|finish|to$|until)", re.IGNORECASE)
TEXT_NAMES = {"text", "quote", "transcript", "excerpt", "caption", "content", "snippet"}
TITLE_NAMES = {"title", "headline", "name", "label", "topic"}
HOOK_NAMES = {"hook", "opening", "opener"}
SCORE = re.compile(r"score|virality|rating", re.IGNORECASE)
WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")
STOPWORDS = frozenset(
    "the and for that this with you your are was were from have has had not but all can its "
    "into about their there what when which will would them then than they our out just "
    "tell please give explain how why".split())
FILLER = ("async python video clip moment audience hook story insight example detail "
          "question answer idea lesson result summary highlight").split()
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Segment:
    start: float
    end: float
    text: str


def transcript_segments(text: str) -> list[Segment]:
    """``[12.3-15.8] words`` lines from a prompt, in time order."""
    found = [Segment(float(a), float(b), words.strip())
             for a, b, words in TRANSCRIPT_LINE.findall(text) if float(b) >= float(a)]
    return sorted(found, key=lambda s: s.start)


def vocabulary(text: str) -> list[str]:
    """Content words of the prompt (first occurrence order), to make answers look on-topic."""
    words = [w.lower() for w in WORD.findall(text) if w.lower() not in STOPWORDS]
    return list(dict.fromkeys(words)) or list(FILLER)


class SchemaFiller:
    """Walks one schema with one RNG; build a new filler per response."""

    def __init__(self, root: dict[str, Any], rng: random.Random, prompt: str) -> None:
        self.root = root
        self.rng = rng
        self.segments = transcript_segments(prompt)
        task = TRANSCRIPT_LINE.sub(" ", prompt) if self.segments else prompt
        self.words = vocabulary(task)
        self.request = Request.parse(task)
        self.sentences = sentences_of([(s.start, s.end, s.text) for s in self.segments])

    def fill(self) -> Any:
        return self.value(self.root)

    def value(self, schema: dict[str, Any], name: str = "", clip: Span | None = None) -> Any:
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [self._resolve(o) for o in schema[key]]
                concrete = [o for o in options if o.get("type") != "null"] or options
                return self.value(self.rng.choice(concrete), name, clip)
        if "allOf" in schema:
            return self.value(self._merge(schema["allOf"]), name, clip)
        kind = self._type(schema)
        if kind == "object":
            return self._object(schema, clip)
        if kind == "array":
            return self._array(schema, name)
        if kind in ("number", "integer"):
            return self._number(schema, name, clip, integer=kind == "integer")
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self._string(schema, name, clip)

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            target: Any = self.root
            for part in schema["$ref"].removeprefix("#/").split("/"):
                if part:
                    target = target[part.replace("~1", "/").replace("~0", "~")]
            schema = target
        return schema

    def _merge(self, schemas: list[dict[str, Any]]) -> dict[str, Any]:
        merged: dict[str, Any] = {"properties": {}}
        for part in map(self._resolve, schemas):
            merged.update({k: v for k, v in part.items() if k != "properties"})
            merged["properties"].update(part.get("properties", {}))
        return merged

    @staticmethod
    def _type(schema: dict[str, Any]) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind:
            return kind
        return "object" if "properties" in schema else "array" if "items" in schema else "string"

    def _is_clip(self, schema: dict[str, Any]) -> bool:
        props = schema.get("properties", {})
        numeric = {k for k, v in props.items()
                   if self._type(self._resolve(v)) in ("number", "integer")}
        return any(START.match(k) for k in numeric) and any(END.match(k) for k in numeric)

    def _object(self, schema: dict[str, Any], clip: Span | None) -> dict[str, Any]:
        if clip is None and self._is_clip(schema):
            clip = self._clips(1)[0]
        return {key: self.value(sub, key, clip)
                for key, sub in schema.get("properties", {}).items()}

    def _array(self, schema: dict[str, Any], name: str) -> list[Any]:
        items = self._resolve(schema.get("items", {}))
        asked = self.request.count
        low = schema.get("minItems", 1)
        high = max(low, schema.get("maxItems", max(low, asked or 3)))
        count = min(max(asked, low), high) if asked else self.rng.randint(low, high)
        if self._is_clip(items):
            return [self._object(items, clip) for clip in self._clips(count)]
        if self.sentences and self._type(items) == "string":
            found = (titles_for(self.sentences, count) if "title" in name.lower()
                     else hashtags_for(self.sentences, count) if "tag" in name.lower() else None)
            if found is not None:
                return _repeat(found, max(count, low)) if len(found) < low else found
        if schema.get("uniqueItems") and "enum" in items:
            return self.rng.sample(items["enum"], min(count, len(items["enum"])))
        return [self.value(items, name) for _ in range(count)]

    def _clips(self, count: int) -> list[Span]:
        """``count`` clips from the transcript's sentences (:func:`.highlights.pick_spans`), or
        made-up ones when the prompt has no transcript."""
        if not self.sentences:
            starts = sorted(self.rng.sample(range(0, 600, 30), min(count, 20)))
            clips = [Span((Sentence(float(s), float(s + self.rng.randint(10, 28)),
                                    self._sentence(8)),)) for s in starts]
            return _repeat(clips, count)
        request = self.request
        return _repeat(pick_spans(self.sentences, count, request.min_s, request.max_s), count)

    def _number(self, schema: dict[str, Any], name: str, clip: Span | None,
                *, integer: bool) -> float | int:
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        if clip is not None and (START.match(name) or END.match(name)):
            value = clip.start if START.match(name) else clip.end
        elif clip is not None and name.lower().startswith("duration"):
            value = clip.end - clip.start
        else:
            low_f = 0.0 if low is None else float(low)
            high_f = (1.0 if "score" in name.lower() or "confidence" in name.lower()
                      else low_f + 100.0) if high is None else float(high)
            value = (low_f + (high_f - low_f) * clip.virality / 100
                     if clip is not None and SCORE.search(name)
                     else self.rng.uniform(low_f, high_f))
        if "exclusiveMinimum" in schema:
            value = max(value, schema["exclusiveMinimum"] + (1 if integer else 1e-3))
        if "exclusiveMaximum" in schema:
            value = min(value, schema["exclusiveMaximum"] - (1 if integer else 1e-3))
        if low is not None and "minimum" in schema:
            value = max(value, low)
        if high is not None and "maximum" in schema:
            value = min(value, high)
        return math.floor(value) if integer else round(value, 2)

    def _string(self, schema: dict[str, Any], name: str, clip: Span | None) -> str:
        exact = formatted(schema["format"], self.rng, self.words) if "format" in schema else None
        if exact is None and "pattern" in schema:
            exact = matching(schema["pattern"], self.rng)
        if exact is not None:  # a format or pattern is the contract; lengths cannot bend it
            return exact
        if clip is not None and name.lower() in TEXT_NAMES:
            text = clip.text
        elif clip is not None and name.lower() in HOOK_NAMES:
            text = clip.hook
        elif clip is not None and name.lower() in TITLE_NAMES:
            text = clip.title
        elif self.sentences and name.lower() in TEXT_NAMES:
            text = caption_for(self.sentences, self.request.max_characters)
        elif self.sentences and name.lower() in TITLE_NAMES | HOOK_NAMES:
            text = titles_for(self.sentences, 1)[0]
        elif name.lower() in TITLE_NAMES | HOOK_NAMES:
            text = self._sentence(4).strip(" .").title()
        else:
            text = self._sentence(self.rng.randint(6, 14))
        return self._fit(text, schema.get("minLength", 0), schema.get("maxLength"))

    def _sentence(self, words: int) -> str:
        chosen = [self.rng.choice(self.words) for _ in range(words)]
        return " ".join(chosen).capitalize() + "."

    def _fit(self, text: str, min_length: int, max_length: int | None) -> str:
        while len(text) < min_length:
            text += " " + self.rng.choice(self.words)
        return text if max_length is None else text[:max_length]


def _repeat(items: list[T], count: int) -> list[T]:
    """Exactly ``count`` items, reusing some when the schema wants more than the transcript has.
    """
    return (items * math.ceil(count / len(items)))[:count] if items else []
