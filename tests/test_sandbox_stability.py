"""The fake Stability v2beta generate endpoint: real images, its errors and its rate limit."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from opusclip_lib.sandbox import SandboxClients
from opusclip_lib.sandbox.imaging import ASPECT_RATIOS, MOTIFS, motifs_of, render

CORE = "/v2beta/stable-image/generate/core"


async def generate(sandbox: SandboxClients, path: str = CORE, *, accept: str = "image/*",
                   **fields: str):
    return await sandbox.stability.post(path, data=fields, files={"none": ""},
                                        headers={"accept": accept})


async def test_image_mode_returns_a_real_png_with_headers(sandbox):
    response = await generate(sandbox, prompt="a red fox in the snow", aspect_ratio="16:9")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert response.headers["finish-reason"] == "SUCCESS"
    assert response.headers["seed"].isdigit()
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    image = Image.open(io.BytesIO(response.content))
    assert (image.format, image.size) == ("PNG", (256, 144))


@pytest.mark.parametrize(("ratio", "size"), [("1:1", (256, 256)), ("9:16", (144, 256)),
                                             ("21:9", (256, 110))])
async def test_aspect_ratio_sets_the_image_size(sandbox, ratio, size):
    response = await generate(sandbox, prompt="x", aspect_ratio=ratio)
    assert Image.open(io.BytesIO(response.content)).size == size


@pytest.mark.parametrize(("fmt", "pil_format"), [("jpeg", "JPEG"), ("webp", "WEBP")])
async def test_jpeg_and_webp_are_real_too(sandbox, fmt, pil_format):
    response = await generate(sandbox, prompt="x", output_format=fmt)
    assert response.headers["content-type"] == f"image/{fmt}"
    assert Image.open(io.BytesIO(response.content)).format == pil_format


async def test_same_prompt_and_seed_give_the_same_bytes(sandbox):
    first = await generate(sandbox, prompt="lighthouse", seed="42")
    again = await generate(sandbox, prompt="lighthouse", seed="42")
    other = await generate(sandbox, prompt="lighthouse", seed="43")
    assert first.content == again.content != other.content
    assert first.headers["seed"] == "42"


async def test_json_mode_returns_base64_and_no_image_headers(sandbox):
    response = await generate(sandbox, accept="application/json", prompt="x", seed="7")
    body = response.json()
    assert body["finish_reason"] == "SUCCESS"
    assert body["seed"] == 7
    assert base64.b64decode(body["image"]).startswith(b"\x89PNG")
    assert "finish-reason" not in response.headers
    assert "seed" not in response.headers


async def test_blocked_words_give_a_blurred_content_filtered_image(sandbox):
    clean = await generate(sandbox, prompt="a gore city scene", seed="5")
    assert clean.status_code == 200
    assert clean.headers["finish-reason"] == "CONTENT_FILTERED"
    pixels = Image.open(io.BytesIO(clean.content)).convert("L")
    sharp = Image.open(io.BytesIO((await generate(sandbox, prompt="a calm city scene",
                                                  seed="5")).content)).convert("L")
    assert _edge_energy(pixels) < _edge_energy(sharp) / 4


def _edge_energy(image: Image.Image) -> float:
    """Mean absolute difference between neighbouring pixels: high for sharp shapes and text."""
    return float(np.abs(np.diff(np.asarray(image, dtype=float), axis=1)).mean())


async def test_validation_lists_every_problem(sandbox):
    response = await generate(sandbox, aspect_ratio="7:3", output_format="gif", seed="abc")
    assert response.status_code == 400
    body = response.json()
    assert body["name"] == "bad_request"
    assert re.fullmatch(r"[0-9a-f]{32}", body["id"])
    assert "prompt: is required" in body["errors"]
    assert {e.split(":")[0] for e in body["errors"]} == {"prompt", "aspect_ratio",
                                                         "output_format", "seed"}


async def test_auth_moderation_language_and_size_errors(sandbox):
    unauthorised = await sandbox.stability.post(CORE, data={"prompt": "x"}, files={"none": ""},
                                                headers={"authorization": "Bearer invalid"})
    assert (unauthorised.status_code, unauthorised.json()["name"]) == (401, "unauthorized")
    moderated = await generate(sandbox, prompt="something forbidden")
    assert (moderated.status_code, moderated.json()["name"]) == (403, "content_moderation")
    foreign = await generate(sandbox, prompt="猫がピアノを弾く")
    assert (foreign.status_code, foreign.json()["name"]) == (422, "invalid_language")
    huge = await sandbox.stability.post(CORE, data={"prompt": "x"},
                                        files={"init": ("a.bin", b"\0" * (10 * 1024 * 1024 + 1))})
    assert (huge.status_code, huge.json()["name"]) == (413, "payload_too_large")


async def test_credits_run_out_with_402_and_ultra_costs_more(config, sandbox):
    config.stability.credits = 11
    assert (await generate(sandbox, "/v2beta/stable-image/generate/ultra",
                           prompt="x")).status_code == 200
    assert (await generate(sandbox, prompt="x")).status_code == 200
    broke = await generate(sandbox, prompt="x")
    assert (broke.status_code, broke.json()["name"]) == (402, "payment_required")


async def test_rate_limit_then_timeout_for_the_key(config, sandbox):
    config.stability.requests_per_window = 3
    config.stability.block_s = 0.3
    statuses = [(await generate(sandbox, prompt="x")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    blocked = await generate(sandbox, prompt="x")
    assert blocked.status_code == 429
    assert blocked.json()["name"] == "rate_limit_exceeded"
    assert "timed out for 0.3 seconds" in blocked.json()["errors"][0]
    assert blocked.headers["retry-after"] == "1"


async def test_thumbnails_are_pictures_from_the_prompt_not_its_text(sandbox):
    city = await generate(sandbox, prompt="an office in a city at night", seed="3")
    lake = await generate(sandbox, prompt="a lake with a forest", seed="3")
    city_pixels = np.asarray(Image.open(io.BytesIO(city.content)).convert("RGB"), dtype=float)
    lake_pixels = np.asarray(Image.open(io.BytesIO(lake.content)).convert("RGB"), dtype=float)
    assert motifs_of("an office in a city at night") == {"buildings", "night"}
    assert motifs_of("a lake with a forest") == {"waves", "trees"}
    assert city_pixels[:10].mean() < lake_pixels[:10].mean()  # a night sky is darker
    assert np.abs(city_pixels - lake_pixels).mean() > 20


@pytest.mark.parametrize("long_side", [16, 17, 64])
@pytest.mark.parametrize("aspect_ratio", ASPECT_RATIOS)
def test_every_motif_draws_at_every_size(long_side, aspect_ratio):
    every_motif = " ".join(sorted(set().union(*MOTIFS.values())))
    for seed in range(20):
        image = render(every_motif, seed, aspect_ratio, "", "png", long_side, False)
        assert max(Image.open(io.BytesIO(image)).size) == long_side
