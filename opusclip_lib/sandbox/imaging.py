"""Small real images for the fake Stability API: a seeded gradient, shapes and the prompt text.

Images are kept small (256 px on the long side by default) so cassettes stay small; the same
prompt, seed, style and size always give the same bytes.
"""

from __future__ import annotations

import io
import random
import textwrap
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

ASPECT_RATIOS = ("21:9", "16:9", "3:2", "5:4", "1:1", "4:5", "2:3", "9:16", "9:21")
OUTPUT_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def image_size(aspect_ratio: str, long_side: int) -> tuple[int, int]:
    """(width, height) with the given ratio and ``long_side`` pixels on the longer edge."""
    width, height = (int(n) for n in aspect_ratio.split(":"))
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=64)
def render(prompt: str, seed: int, aspect_ratio: str, style: str, output_format: str,
           long_side: int, filtered: bool) -> bytes:
    """Encoded image bytes; ``filtered`` blurs it beyond recognition, as moderated output is."""
    rng = random.Random(f"{seed}|{prompt}|{style}")
    width, height = image_size(aspect_ratio, long_side)
    top, bottom = (np.array([rng.randrange(256) for _ in range(3)], float) for _ in range(2))
    ramp = (np.add.outer(np.arange(height) / height, np.arange(width) / width) / 2)[..., None]
    pixels = (top * (1 - ramp) + bottom * ramp).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(3, 7)):
        x, y = rng.randrange(width), rng.randrange(height)
        radius = rng.randint(long_side // 20, long_side // 5)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    size = max(9, long_side // 18)
    lines = textwrap.wrap(prompt, width=max(8, int(width / (size * 0.55))))[: max(1, height // (
        size + 4) - 1)]
    draw.multiline_text((size // 2, size // 2), "\n".join(lines), font=_font(size),
                        fill=(255, 255, 255), stroke_width=1, stroke_fill=(0, 0, 0), spacing=4)
    if filtered:
        image = image.filter(ImageFilter.GaussianBlur(radius=long_side / 8))
    buffer = io.BytesIO()
    image.save(buffer, format=OUTPUT_FORMATS[output_format])
    return buffer.getvalue()
