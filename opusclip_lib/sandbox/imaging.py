"""Small real pictures for the fake Stability API: a landscape drawn from the prompt, no text.

The prompt picks the picture, deterministically: the hash of its words (with the seed and style)
picks the hues, so different prompts look different; a few words pick motifs (``city``,
``code`` or ``studio`` draw buildings with lit windows; ``sea``, ``river`` or ``water`` draw
waves; ``tree``, ``forest`` or ``garden`` draw trees; ``night`` or ``dark`` a night sky), and
every picture has a sky, a sun or moon and layered hills. Images are small (256 px on the long
side by default) so cassettes stay small; the same prompt, seed, style and size always give the
same bytes.
"""

from __future__ import annotations

import colorsys
import io
import random
import re
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ASPECT_RATIOS = ("21:9", "16:9", "3:2", "5:4", "1:1", "4:5", "2:3", "9:16", "9:21")
OUTPUT_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
MOTIFS = {
    "buildings": frozenset("city cities building buildings skyline office code coding computer "
                           "studio server servers street downtown".split()),
    "waves": frozenset("sea ocean water river lake waves beach harbour harbor stream".split()),
    "trees": frozenset("tree trees forest garden park plant plants woods jungle".split()),
    "night": frozenset("night dark midnight moon stars neon".split()),
}
WORD = re.compile(r"[a-z]+")
RGB = tuple[int, int, int]


def image_size(aspect_ratio: str, long_side: int) -> tuple[int, int]:
    """(width, height) with the given ratio and ``long_side`` pixels on the longer edge."""
    width, height = (int(n) for n in aspect_ratio.split(":"))
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def motifs_of(prompt: str) -> set[str]:
    words = set(WORD.findall(prompt.lower()))
    return {motif for motif, triggers in MOTIFS.items() if words & triggers}


def _colour(hue: float, saturation: float, value: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(r * 255), round(g * 255), round(b * 255)


@lru_cache(maxsize=64)
def render(prompt: str, seed: int, aspect_ratio: str, style: str, output_format: str,
           long_side: int, filtered: bool) -> bytes:
    """Encoded image bytes; ``filtered`` blurs it beyond recognition, as moderated output is."""
    rng = random.Random(f"{seed}|{prompt}|{style}")
    width, height = image_size(aspect_ratio, long_side)
    motifs = motifs_of(prompt)
    night = "night" in motifs
    hue = rng.random()
    horizon = round(height * rng.uniform(0.45, 0.62))
    image = Image.fromarray(_sky(width, height, hue, night), "RGB")
    draw = ImageDraw.Draw(image)
    _sun(draw, rng, width, horizon, hue, night)
    for layer in range(3):  # far hills pale, near hills dark
        _hills(draw, rng, width, height, horizon + layer * height // 12,
               _colour(hue + 0.25 + 0.05 * layer, 0.45, (0.55 if not night else 0.3)
                       - 0.13 * layer))
    if "buildings" in motifs:
        _buildings(draw, rng, width, height, horizon, hue, night)
    if "waves" in motifs:
        _waves(draw, rng, width, height, hue)
    if "trees" in motifs:
        _trees(draw, rng, width, height, hue)
    if filtered:
        image = image.filter(ImageFilter.GaussianBlur(radius=long_side / 8))
    buffer = io.BytesIO()
    image.save(buffer, format=OUTPUT_FORMATS[output_format])
    return buffer.getvalue()


def _sky(width: int, height: int, hue: float, night: bool) -> np.ndarray:
    top = np.array(_colour(hue, 0.6, 0.25 if night else 0.85), float)
    bottom = np.array(_colour(hue + 0.08, 0.3, 0.45 if night else 1.0), float)
    ramp = np.linspace(0.0, 1.0, height)[:, None, None] * np.ones((1, width, 1))
    return (top * (1 - ramp) + bottom * ramp).astype(np.uint8)


def _sun(draw: ImageDraw.ImageDraw, rng: random.Random, width: int, horizon: int, hue: float,
         night: bool) -> None:
    radius = max(3, round(min(width, horizon) * rng.uniform(0.1, 0.18)))
    x, y = rng.uniform(0.2, 0.8) * width, rng.uniform(0.3, 0.7) * horizon
    glow = _colour(hue + 0.5, 0.15, 1.0) if night else _colour(0.1 + 0.05 * rng.random(), 0.7, 1)
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=glow)
    if night:
        for _ in range(rng.randint(15, 30)):
            sx, sy = rng.uniform(0, width), rng.uniform(0, horizon * 0.9)
            draw.point((sx, sy), fill=(255, 255, 240))


def _hills(draw: ImageDraw.ImageDraw, rng: random.Random, width: int, height: int, base: int,
           colour: RGB) -> None:
    """A smooth ridge: a few sine waves of random phase around ``base``."""
    xs = np.linspace(0, width, 48)
    ridge = np.full_like(xs, float(base))
    for wavelength in (1.0, 0.5, 0.25):
        ridge += height * 0.05 * wavelength * np.sin(
            2 * np.pi * xs / (width * wavelength) + rng.uniform(0, 2 * np.pi))
    points = [(float(x), float(y)) for x, y in zip(xs, ridge, strict=True)]
    draw.polygon([(0, height), *points, (width, height)], fill=colour)


def _buildings(draw: ImageDraw.ImageDraw, rng: random.Random, width: int, height: int,
               horizon: int, hue: float, night: bool) -> None:
    """A skyline of towers with lit windows (whole pixels: a 16 px thumbnail still draws)."""
    x = 0
    ground = horizon + height // 6
    lit = _colour(0.13, 0.6, 1.0) if night else _colour(hue + 0.55, 0.15, 0.8)
    while x < width:
        w = max(2, round(rng.uniform(0.07, 0.14) * width))
        top = round(ground - rng.uniform(0.15, 0.45) * height)
        draw.rectangle((x, top, x + w - 1, height), fill=_colour(hue + 0.6, 0.25, 0.22))
        size = max(1, w // 6)
        for wy in range(top + size, ground - size, size * 2):
            for wx in range(x + size, x + w - size, size * 2):
                if rng.random() < 0.6:
                    draw.rectangle((wx, wy, wx + size - 1, wy + size - 1), fill=lit)
        x += w + round(rng.uniform(0, 0.02) * width)


def _waves(draw: ImageDraw.ImageDraw, rng: random.Random, width: int, height: int,
           hue: float) -> None:
    top = round(height * 0.72)
    draw.rectangle((0, top, width, height), fill=_colour(0.55 + 0.05 * (hue - 0.5), 0.6, 0.55))
    for row in range(top + 4, height, max(4, height // 25)):
        phase, amplitude = rng.uniform(0, 6.3), rng.uniform(1, 3)
        xs = np.linspace(0, width, 40)
        points = [(float(x), float(row + amplitude * np.sin(x / width * 12 + phase)))
                  for x in xs]
        draw.line(points, fill=_colour(0.55, 0.25, 0.85), width=1)


def _trees(draw: ImageDraw.ImageDraw, rng: random.Random, width: int, height: int,
           hue: float) -> None:
    for _ in range(rng.randint(4, 9)):
        x, ground = rng.uniform(0, width), rng.uniform(0.78, 0.97) * height
        tall = rng.uniform(0.12, 0.25) * height
        draw.rectangle((x - tall * 0.04, ground - tall * 0.25, x + tall * 0.04, ground),
                       fill=(90, 60, 35))
        draw.polygon([(x - tall * 0.3, ground - tall * 0.2), (x, ground - tall),
                      (x + tall * 0.3, ground - tall * 0.2)],
                     fill=_colour(0.3 + 0.08 * rng.random(), 0.6, 0.35 + 0.1 * hue))
