"""Request URLs assembled from parts we already know are valid, without httpx re-parsing them.

httpx validates every URL string in pure Python, character by character: about 60 us here, a
tenth of a whole request's CPU, spent on the hot path of every call. The base URL is parsed (and
validated) once per client; each request then only swaps in the path and the query, which we
build already percent-encoded (``urlencode``; path pieces from callers go through
:func:`segment`). This touches ``httpx.URL._uri_reference``, a private attribute of httpx 0.28
(pinned ``<0.29``); ``tests/test_api_client.py`` checks the result equals httpx's own parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

import httpx


def segment(text: str) -> str:
    """One path segment from caller input (a voice id), percent-encoded, slashes included."""
    return quote(text, safe="")


#: ``quote_plus`` remembered: parameter names and most values ("part=snippet,statistics") recur
#: on every call, and quoting a string with a comma in it walks it byte by byte (~5 us).
_quote_plus = lru_cache(maxsize=4096)(quote_plus)


def encode_query(params: Mapping[str, Any]) -> str:
    """``urlencode(params)``, the same string, faster for the names and values that recur."""
    return urlencode(params, quote_via=_quote_plus)


class URLBuilder:
    """``URLBuilder("https://api.openai.com/v1")("/chat/completions", {})`` -> ``httpx.URL``."""

    def __init__(self, base_url: str) -> None:
        self.base = httpx.URL(base_url.rstrip("/"))
        self._parts = self.base._uri_reference

    def __call__(self, path: str, query: Mapping[str, Any]) -> httpx.URL:
        return self.encoded(path, encode_query(query) if query else "")

    def encoded(self, path: str, query: str) -> httpx.URL:
        """The URL for ``path`` and a query string already percent-encoded (``""``: none)."""
        parts = self._parts
        url = httpx.URL.__new__(httpx.URL)
        url._uri_reference = parts._replace(path=parts.path + path, query=query or None)
        return url
