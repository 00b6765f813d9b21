"""The fake YouTube Data API behaves like Google's: auth, quota, ETags, paging, escaping."""

from __future__ import annotations

import json

import pytest

from opusclip_lib.config import data_dir
from opusclip_lib.sandbox import SandboxConfig, build_app, clients
from opusclip_lib.sandbox.catalogue import Catalogue, duration_seconds
from opusclip_lib.sandbox.youtube import KEY_INVALID, page_offset, page_token

PARTS = "snippet,contentDetails,statistics"


def test_catalogue_has_the_sample_video_and_html_special_titles():
    catalogue = Catalogue.load(data_dir() / "catalogue.json")
    sample = catalogue.by_id["opusSample1"]
    assert (sample.title, sample.seconds) == ("Async Python in Two Minutes", 122)
    assert len(catalogue.videos) >= 40
    assert sum(any(c in v.title for c in "<>&\"'") for v in catalogue.videos) >= 3
    assert duration_seconds("PT1H2M3S") == 3723
    assert duration_seconds("P1DT1S") == 86401
    with pytest.raises(ValueError):
        duration_seconds("PT4M\n")  # "$" would have matched before the newline


async def test_videos_list_shapes_values_like_youtube(sandbox):
    response = await sandbox.youtube.get("/videos", params={"part": PARTS,
                                                            "id": "opusSample1,unknownId00"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    body = response.json()
    assert body["kind"] == "youtube#videoListResponse"
    assert body["pageInfo"] == {"totalResults": 1, "resultsPerPage": 1}
    [video] = body["items"]
    assert video["kind"] == "youtube#video"
    assert video["id"] == "opusSample1"
    assert video["contentDetails"]["duration"] == "PT2M2S"
    assert video["contentDetails"]["caption"] in ("true", "false")
    assert isinstance(video["contentDetails"]["licensedContent"], bool)
    assert all(isinstance(v, str) and v.isdigit() for v in video["statistics"].values())
    assert video["snippet"]["title"] == "Async Python in Two Minutes"
    assert set(video) == {"kind", "etag", "id", "snippet", "contentDetails", "statistics"}


async def test_unknown_ids_give_an_empty_list_not_an_error(sandbox):
    body = (await sandbox.youtube.get("/videos", params={"part": "id", "id": "nope0000000"})).json()
    assert body["items"] == []
    assert body["pageInfo"]["totalResults"] == 0


async def test_more_than_fifty_ids_is_a_400_and_fifty_is_fine(sandbox):
    ids = [f"id{n:09d}" for n in range(51)]
    too_many = await sandbox.youtube.get("/videos", params={"part": "id", "id": ",".join(ids)})
    assert too_many.status_code == 400
    assert too_many.json()["error"]["errors"][0]["location"] == "id"
    fifty = await sandbox.youtube.get("/videos", params={"part": "id", "id": ",".join(ids[:50])})
    assert fifty.status_code == 200


async def test_unknown_part_is_rejected_like_google(sandbox):
    body = (await sandbox.youtube.get("/videos", params={"part": "snippet,bogus",
                                                         "id": "x"})).json()
    error = body["error"]["errors"][0]
    assert (body["error"]["code"], error["reason"], error["domain"], body["error"]["message"]) == (
        400, "unknownPart", "youtube.part", "'bogus'")


async def test_invalid_key_is_400_api_key_invalid_and_missing_key_is_403(sandbox):
    invalid = await sandbox.youtube.get("/videos", params={"part": PARTS, "id": "x",
                                                           "key": "invalid-123"})
    assert invalid.status_code == 400
    error = invalid.json()["error"]
    assert error["message"] == KEY_INVALID
    assert error["errors"][0]["reason"] == "badRequest"
    assert error["details"][0]["reason"] == "API_KEY_INVALID"
    async with clients(build_app(SandboxConfig()), key="") as keyless:
        missing = await keyless.youtube.get("/videos", params={"part": PARTS, "id": "x"})
    assert missing.status_code == 403
    assert missing.json()["error"]["status"] == "PERMISSION_DENIED"


async def test_etags_on_response_and_items_and_if_none_match_gives_304(sandbox):
    params = {"part": PARTS, "id": "opusSample1"}
    first = await sandbox.youtube.get("/videos", params=params)
    body = first.json()
    assert first.headers["etag"] == f'"{body["etag"]}"'
    assert len(body["etag"]) == 27
    assert body["items"][0]["etag"] != body["etag"]
    again = await sandbox.youtube.get("/videos", params=params,
                                      headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    other = await sandbox.youtube.get("/videos", params={"part": "snippet", "id": "opusSample1"})
    assert other.json()["etag"] != body["etag"]


async def test_quota_is_counted_per_key_and_resets(config, sandbox):
    config.youtube.daily_quota = 201
    params = {"part": "snippet", "q": "python"}
    assert (await sandbox.youtube.get("/search", params=params)).status_code == 200
    assert (await sandbox.youtube.get("/search", params=params)).status_code == 200
    one_unit = {"part": "id", "id": "x"}
    assert (await sandbox.youtube.get("/videos", params=one_unit)).status_code == 200
    exhausted = await sandbox.youtube.get("/videos", params=one_unit)
    assert exhausted.status_code == 403
    error = exhausted.json()["error"]["errors"][0]
    assert (error["reason"], error["domain"]) == ("quotaExceeded", "youtube.quota")
    other_key = await sandbox.youtube.get("/videos", params=one_unit | {"key": "another-key"})
    assert other_key.status_code == 200
    config.youtube.daily_quota = None
    assert (await sandbox.youtube.get("/search", params=params)).status_code == 200


async def test_search_pages_through_every_video_once(sandbox):
    seen, token, pages = [], None, 0
    while True:
        params = {"part": "snippet", "q": "asyncio", "type": "video", "maxResults": 15}
        body = (await sandbox.youtube.get("/search", params=params | (
            {"pageToken": token} if token else {}))).json()
        pages += 1
        assert ("prevPageToken" in body) == (pages > 1)
        assert body["regionCode"] == "US"
        assert body["pageInfo"]["resultsPerPage"] == 15
        seen += [item["id"]["videoId"] for item in body["items"]]
        token = body.get("nextPageToken")
        if not token:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == body["pageInfo"]["totalResults"] == 40
    assert "asyncio" in json.dumps((await sandbox.youtube.get("/videos", params={
        "part": "snippet", "id": seen[0]})).json()).lower()


async def test_search_titles_are_html_escaped(sandbox):
    body = (await sandbox.youtube.get("/search", params={
        "part": "snippet", "q": "Tom Jerry event loops", "maxResults": 1})).json()
    assert body["items"][0]["snippet"]["title"] == "Tom &amp; Jerry&#39;s Guide to Event Loops"


def test_page_tokens_use_youtubes_format():
    assert page_token(5) == "CAUQAA"
    assert page_offset(page_token(300)) == 300
    assert page_offset(page_token(20, backwards=True)) == 20
    with pytest.raises(ValueError):
        page_offset("bm90IGEgdG9rZW4")
