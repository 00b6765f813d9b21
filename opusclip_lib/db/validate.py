"""Column rules, checked in Python before any SQL runs: clear messages, and the same rules on
every backend (SQLite does not enforce VARCHAR lengths, and each server refuses different odd
input in its own words, or not at all).

The rules, whatever the backend:

- **text**: a ``str`` of valid Unicode (no lone surrogate: it has no UTF-8 form) without the NUL
  character (PostgreSQL cannot store it, so no backend does), within the column's length; ids
  and URLs match their pattern as a whole (``fullmatch``: no newline slips through).
- **numbers**: finite (no NaN, no infinity); an ``int`` in a floating-point column must be exact
  as a double (``|n| <= 2**53``); an integer column holds what its SQL type holds.
- **JSON**: what Python's ``json`` writes (a tuple becomes an array, a number key its string),
  with text as above in keys and values, finite floats below ``1e16`` in magnitude
  (PostgreSQL's ``jsonb`` hands larger ones back as integers), at most :data:`JSON_MAX_DEPTH`
  levels deep; a set, bytes or any other object is refused. A ``str`` is JSON text: it is
  parsed and checked the same way.
- **ids and limits**: ``int`` (never ``bool``) within ``BIGINT``; limits at least 1.

A batch is checked column by column with C-level passes (``map``, ``max``, ``set``,
``str.join``), so validating 10,000 rows costs about as much as building the tuples; only when a
pass fails does the slow per-value loop run, to name the offending row.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from itertools import repeat
from operator import add
from typing import Any, Literal

from opusclip_lib.db.errors import InvalidYouTubeIdError, ValidationError, ValueTooLongError

# Patterns never match a newline: Column checks a whole batch as one newline-joined string, and
# counts the newlines first, so a value holding one cannot pass as two values.
YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")
YOUTUBE_ID_SHAPE = "11 characters from A-Z a-z 0-9 _ -"
HTTP_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::\d{1,5})?(?:[/?#]\S*)?", re.ASCII)
URL_SHAPE = "an absolute http(s) URL without spaces"

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
EXACT_IN_DOUBLE = 2**53
JSON_FLOAT_LIMIT = 1e16
JSON_MAX_DEPTH = 31
"""Nested objects and arrays a JSON value may hold: MariaDB's ``JSON_VALID`` refuses 32."""

Kind = Literal["text", "number", "integer", "json"]
_TYPES: dict[str, frozenset[type]] = {
    "text": frozenset({str}),
    "number": frozenset({int, float}),
    "integer": frozenset({int}),
}
# Compact and without the circular-reference walk: a cycle ends in RecursionError, and the
# per-value walk then refuses it as too deep.
_encode_json = json.JSONEncoder(check_circular=False, separators=(",", ":"),
                                allow_nan=False).encode


def text_problem(value: str) -> str | None:
    """What no backend can store in a text column, or ``None``."""
    if "\x00" in value:
        return "must not contain the NUL character (\\x00)"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"must be valid Unicode text ({exc.reason} at index {exc.start})"
    return None


def number_problem(value: int | float, *, exact: bool) -> str | None:
    """NaN, infinity, or (``exact``) an int a double cannot hold exactly; else ``None``."""
    if type(value) is float:
        return None if math.isfinite(value) else f"must be a finite number, got {value!r}"
    if exact and abs(value) > EXACT_IN_DOUBLE:
        return f"must be at most 2**53 in magnitude to be stored exactly, got {value!r}"
    return None


def json_problem(value: Any) -> str | None:
    """Why ``value`` is not JSON every backend stores alike (see the module rules), or ``None``.

    Iterative, so a 10,000-level structure is refused at level 32 instead of overflowing the stack.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        found: str | None = None
        if item is None or isinstance(item, (bool, int)):
            continue
        if isinstance(item, str):
            found = text_problem(item)
        elif isinstance(item, float):
            found = (f"holds {item!r}; JSON numbers are finite" if not math.isfinite(item)
                     else None if abs(item) < JSON_FLOAT_LIMIT
                     else f"holds {item!r}: a float must be below 1e16 in magnitude "
                          "(PostgreSQL's jsonb hands larger ones back as integers)")
        elif isinstance(item, (dict, list, tuple)):
            if depth == JSON_MAX_DEPTH:
                return f"nests deeper than {JSON_MAX_DEPTH} levels"
            if isinstance(item, dict):
                stack += ((key, depth) for key in item)  # keys: text rules, or JSON's own refusal
                item = item.values()
            stack += ((child, depth + 1) for child in item)
        else:
            return (f"holds a {type(item).__name__}; JSON holds objects, arrays, strings, "
                    "numbers, booleans and null")
        if found:
            return found
    return None


def json_text(value: Any) -> str | None:
    """``value`` as the JSON text to store (a ``str`` is JSON text already), or raise the
    ``ValidationError`` that says why it cannot be stored the same way everywhere."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise ValidationError(f"is not valid JSON text: {str(exc)[:200]}") from None
    found = json_problem(value)
    if found:
        raise ValidationError(found)
    try:
        return _encode_json(value)
    except (TypeError, ValueError) as exc:  # a key JSON cannot hold, an int of 4,300+ digits
        raise ValidationError(f"cannot be written as JSON: {str(exc)[:200]}") from None


def json_texts(values: list[Any]) -> list[str | None] | None:
    """Every value as JSON text in C-level passes, or ``None`` if one may break a rule (then
    :func:`json_text` decides, value by value). Conservative: a JSON escape of NUL or of a
    surrogate (lone, or half of an emoji), an exponent, or more containers than the depth limit
    anywhere in a value sends the batch the slow way, which is right by construction."""
    if str in set(map(type, values)):  # JSON text: parsed and checked one by one
        return None
    try:
        texts = [None if value is None else _encode_json(value) for value in values]
    except (TypeError, ValueError, RecursionError):
        return None
    present = [text for text in texts if text is not None]
    if not present:
        return texts
    if _may_break_a_rule("\n".join(present)):
        return None
    containers = map(add, map(str.count, present, repeat("[")),
                     map(str.count, present, repeat("{")))
    return texts if max(containers) <= JSON_MAX_DEPTH else None


def _may_break_a_rule(encoded: str) -> bool:
    """Whether encoded JSON (ASCII: the encoder escapes everything else) holds an escape of NUL
    or of a surrogate, or an exponent: the cases :func:`json_text` decides value by value."""
    return "\\u0000" in encoded or "\\ud" in encoded or "e+" in encoded


def json_text_one(value: Any) -> str | None:
    """:func:`json_texts` for one value (``None`` and JSON text go the slow way too)."""
    if value is None or type(value) is str:
        return None
    try:
        text = _encode_json(value)
    except (TypeError, ValueError, RecursionError):
        return None
    if _may_break_a_rule(text) or text.count("[") + text.count("{") > JSON_MAX_DEPTH:
        return None
    return text


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class Column:
    """One writable column: its kind, limits, default, and the error a bad value raises.

    An ``"integer"`` column holds a ``BIGINT`` unless ``low``/``high`` say otherwise.
    """

    def __init__(self, name: str, kind: Kind = "text", *, required: bool = False,
                 default: Any = None, max_len: int | None = None,
                 pattern: re.Pattern[str] | None = None, shape: str = "",
                 low: float | None = None, high: float | None = None,
                 error: type[ValidationError] = ValidationError) -> None:
        self.name = name
        self.kind = kind
        self.required = required
        self.default = default
        self.max_len = max_len
        self.pattern = pattern
        # One regex pass over "v1\nv2\n...": ~4x faster than a call per value. The pattern is
        # grouped, so a pattern with alternatives (``a|b``) repeats as a whole.
        self._all_match = None if pattern is None else re.compile(
            f"(?:(?:{pattern.pattern})\n)*", pattern.flags).fullmatch
        self.shape = shape
        if kind == "integer":
            low = -INT64_MAX - 1 if low is None else low
            high = INT64_MAX if high is None else high
        self.low = low
        self.high = high
        self.error = error
        self.label = name  # "table.column" once the table is known

    def problem(self, value: Any) -> tuple[type[ValidationError], str] | None:
        """What is wrong with one value, or ``None``."""
        if value is None:
            return (self.error, f"is required{self._shape}") if self.required else None
        if self.kind == "json":
            try:
                json_text(value)
            except ValidationError as exc:
                return self.error, str(exc)
            return None
        if type(value) not in _TYPES[self.kind]:
            return self.error, f"must be {self._a_kind}{self._shape}, got {value!r}"
        if self.kind == "text":
            found = text_problem(value)
            if found:
                return self.error, found
        else:
            found = number_problem(value, exact=self.kind == "number")
            if found:
                return self.error, found
        if self.max_len is not None and len(value) > self.max_len:
            return ValueTooLongError, f"is {len(value)} characters; the limit is {self.max_len}"
        if self.pattern is not None and not self.pattern.fullmatch(value):
            return self.error, f"must be {self.shape}, got {value!r}"
        if (self.low is not None and value < self.low) or (
                self.high is not None and value > self.high):
            return self.error, f"must be {self._range}, got {value!r}"
        return None

    def prepare(self, values: list[Any]) -> list[Any]:
        """The values to store (JSON encoded), or the first bad one raised with its row."""
        if self.kind == "json":
            texts = json_texts(values)
            if texts is not None:
                return texts
            try:
                return [json_text(value) for value in values]
            except ValidationError:
                pass  # the loop below names the row
        elif self._all_valid(values):
            return values
        for index, value in enumerate(values):
            found = self.problem(value)
            if found:
                error, message = found
                where = f" (row {index})" if len(values) > 1 else ""
                raise error(f"{self.label} {message}{where}")
        return values

    def prepare_one(self, value: Any) -> Any:
        """One value to store: :meth:`prepare` for a single row, without the batch's passes.

        The common values (``None`` where allowed, ASCII text, finite floats, small ints,
        plain JSON) pass a few inline checks; anything else gets :meth:`problem`'s full rules.
        """
        kind = self.kind
        if value is None:
            if not self.required:
                return None
        elif kind == "json":
            text = json_text_one(value)
            if text is not None:
                return text
        elif kind == "text":
            if (type(value) is str and value.isascii() and "\x00" not in value
                    and (self.max_len is None or len(value) <= self.max_len)
                    and (self.pattern is None or self.pattern.fullmatch(value))):
                return value
        elif ((type(value) is float and math.isfinite(value))
              or (type(value) is int and -EXACT_IN_DOUBLE <= value <= EXACT_IN_DOUBLE)) \
                and (kind == "number" or type(value) is int) \
                and (self.low is None or value >= self.low) \
                and (self.high is None or value <= self.high):
            return value
        found = self.problem(value)
        if found:
            error, message = found
            raise error(f"{self.label} {message}")
        return json_text(value) if self.kind == "json" else value

    def _all_valid(self, values: list[Any]) -> bool:
        present = [v for v in values if v is not None] if None in values else values
        if not present:
            return not (self.required and values)
        if self.required and len(present) != len(values):
            return False
        if not set(map(type, present)) <= _TYPES[self.kind]:
            return False
        if self.kind == "text":
            return self._all_text_valid(present)
        try:
            if self.kind == "number" and not all(map(math.isfinite, present)):
                return False
        except OverflowError:  # an int too large for a double
            return False
        if self.kind == "number" and int in set(map(type, present)):
            ints = [v for v in present if type(v) is int]
            if max(ints) > EXACT_IN_DOUBLE or min(ints) < -EXACT_IN_DOUBLE:
                return False
        if self.low is not None and min(present) < self.low:
            return False
        return self.high is None or max(present) <= self.high

    def _all_text_valid(self, present: list[str]) -> bool:
        joined = "\n".join(present)
        if "\x00" in joined:
            return False
        if not joined.isascii():
            try:
                joined.encode("utf-8")
            except UnicodeEncodeError:
                return False
        if self.max_len is not None and max(map(len, present)) > self.max_len:
            return False
        return self._all_match is None or (
            joined.count("\n") == len(present) - 1 and bool(self._all_match(joined + "\n")))

    @property
    def _a_kind(self) -> str:
        return {"text": "a string", "number": "a number", "integer": "an integer"}[self.kind]

    @property
    def _range(self) -> str:
        if self.high is None:
            return f">= {self.low}"
        return f"<= {self.high}" if self.low is None else f"between {self.low} and {self.high}"

    @property
    def _shape(self) -> str:
        return f" ({self.shape})" if self.shape else ""


def youtube_id(value: Any) -> str:
    """A single id checked on its own (look-ups), with the same message as on insert."""
    if type(value) is not str or not YOUTUBE_ID.fullmatch(value):
        raise InvalidYouTubeIdError(
            f"videos.youtube_id must be {YOUTUBE_ID_SHAPE}, got {value!r}")
    return value


def youtube_ids(values: Iterable[str]) -> list[str]:
    """Each id checked, duplicates dropped (first order kept): what a batch of videos starts
    from. ``None`` or a lone string (which would iterate as characters) is refused too."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise InvalidYouTubeIdError(f"expected an iterable of YouTube ids, got {values!r}")
    return list(dict.fromkeys(map(youtube_id, values)))


def row_id(value: Any, *, name: str = "id") -> int:
    """A primary or foreign key to look up: an ``int`` (not ``bool``) that fits a ``BIGINT``."""
    if type(value) is not int or not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise ValidationError(f"{name} must be an integer that fits a BIGINT, got {value!r}")
    return value


def count(value: Any, *, name: str, low: int = 1) -> int:
    """A limit or offset: an ``int`` (not ``bool``) from ``low`` up to ``BIGINT``'s maximum."""
    if type(value) is not int or not low <= value <= INT64_MAX:
        raise ValidationError(f"{name} must be an integer from {low} to {INT64_MAX}, "
                              f"got {value!r}")
    return value


def seconds(value: Any, *, name: str) -> float:
    """A delay: a finite, non-negative number of seconds."""
    if type(value) not in (int, float) or number_problem(value, exact=True) or value < 0:
        raise ValidationError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)
