"""No API key may land in a cassette or a notebook output.

The patterns are the shapes of real keys (OpenAI ``sk-...``, Google ``AIza...``, ElevenLabs and
Stability keys in their headers) plus any ``Authorization``/``key=`` value that is not the
placeholder our cassette filters write.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opusclip_lib.config import PROJECT_ROOT

KEY_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_-]{20,}"),
    re.compile(r"AIza[0-9A-Za-z_-]{30,}"),
    re.compile(r"xi-api-key['\":\s-]+(?!REDACTED)[^\s<'\"\]]{8,}", re.IGNORECASE),
    re.compile(r"Bearer\s+(?!REDACTED)[A-Za-z0-9._-]{12,}"),
    re.compile(r"[?&]key=(?!REDACTED)[A-Za-z0-9_-]{12,}"),
]
SCANNED = [p for folder in ("cassettes", "notebooks") for p in (PROJECT_ROOT / folder).rglob("*")
           if p.is_file() and p.suffix in {".yaml", ".yml", ".json", ".ipynb"}]


def find_secrets(text: str) -> list[str]:
    return [m.group(0)[:24] + "..." for pattern in KEY_PATTERNS for m in pattern.finditer(text)]


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_file_holds_no_api_key(path: Path) -> None:
    assert find_secrets(path.read_text(encoding="utf-8", errors="replace")) == []


@pytest.mark.parametrize("leak", [
    "sk-proj-" + "a1B2" * 8,
    "AIzaSy" + "x9" * 16,
    "xi-api-key: 0123456789abcdef",
    "Authorization: Bearer live0123456789abcdef",
    "https://www.googleapis.com/youtube/v3/videos?id=abc&key=AIzaLiveKey0123456",
])
def test_scanner_catches_key_shapes(leak: str) -> None:
    assert find_secrets(leak)


def test_scanner_accepts_redacted_placeholders() -> None:
    assert find_secrets("Authorization: Bearer REDACTED\n?key=REDACTED\nxi-api-key: REDACTED") == []
