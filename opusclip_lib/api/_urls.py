"""Request URLs assembled from parts we already know are valid, without re-parsing them.

httpx validates every URL string in pure Python, character by character: a sizeable share of a
whole request's CPU, spent on the hot path of every call. The base URL is parsed (and validated)
by ``httpx.URL`` once per client; each request then only appends the path and the query, which
we build already percent-encoded (``urlencode``; path pieces from callers go through
:func:`segment`), and wraps the string in ``yarl.URL(..., encoded=True)``, which trusts it (what
aiohttp sends; httpx transports get the string and parse it themselves).
``tests/test_api_client.py`` checks the result equals httpx's own parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import yarl


def segment(text: str) -> str:
    """One path segment from caller input (a voice id), percent-encoded, slashes included."""
    return quote(text, safe="")


#: ``quote_plus`` remembered: parameter names and most values ("part=snippet,statistics") recur
#: on every call, and quoting a string with a comma in it walks it byte by byte (~5 us).
_quote_plus = lru_cache(maxsize=4096)(quote_plus)


def encode_query(params: Mapping[str, Any]) -> str:
    """``urlencode(params)``, the same string, faster for the names and values that recur, and
    without ``urlencode``'s generic checks of every pair."""
    return "&".join(f"{_quote(name)}={_quote(value)}" for name, value in params.items())


def _quote(value: Any) -> str:
    """One name or value as ``urlencode`` quotes it: text and bytes as they are, else ``str``."""
    return _quote_plus(value if isinstance(value, (str, bytes)) else str(value))


class URLBuilder:
    """``URLBuilder("https://api.openai.com/v1")("/chat/completions", {})`` -> ``yarl.URL``."""

    def __init__(self, base_url: str) -> None:
        self.base = httpx.URL(base_url.rstrip("/"))
        if self.base.query or self.base.fragment:
            raise ValueError(f"a base URL takes no query or fragment: {base_url!r}")
        self._prefix = str(self.base)

    def __call__(self, path: str, query: Mapping[str, Any]) -> yarl.URL:
        return self.encoded(path, encode_query(query) if query else "")

    def encoded(self, path: str, query: str) -> yarl.URL:
        """The URL for ``path`` and a query string already percent-encoded (``""``: none)."""
        text = f"{self._prefix}{path}?{query}" if query else f"{self._prefix}{path}"
        return yarl.URL(text, encoded=True)
