"""Google's ``fields`` selection syntax, as the sandbox parses and applies it."""

from __future__ import annotations

import pytest

from opusclip_lib.sandbox.youtube_fields import FieldsError, parse_fields, select

ANSWER = {"etag": "e", "nextPageToken": "n", "items": [
    {"id": "a", "snippet": {"title": "A", "tags": ["x"]}, "statistics": {"viewCount": "1"}},
    {"id": "b", "snippet": {"title": "B", "tags": []}, "statistics": {"viewCount": "2"}}]}


@pytest.mark.parametrize(("fields", "expected"), [
    ("etag", {"etag": "e"}),
    ("items/id", {"items": [{"id": "a"}, {"id": "b"}]}),
    ("items(id,snippet/title)", {"items": [{"id": "a", "snippet": {"title": "A"}},
                                           {"id": "b", "snippet": {"title": "B"}}]}),
    ("items/snippet(title),nextPageToken", {"nextPageToken": "n", "items": [
        {"snippet": {"title": "A"}}, {"snippet": {"title": "B"}}]}),
    ("items(*)", {"items": ANSWER["items"]}),
    ("items/statistics,items/id", {"items": [{"statistics": {"viewCount": "1"}, "id": "a"},
                                             {"statistics": {"viewCount": "2"}, "id": "b"}]}),
    ("missing,etag", {"etag": "e"}),
])
def test_a_selection_keeps_exactly_what_it_names(fields, expected):
    assert select(ANSWER, parse_fields(fields)) == expected


@pytest.mark.parametrize("fields", ["items(id", "items)", ",etag", "items//id", "a b"])
def test_a_broken_selection_is_an_error(fields):
    with pytest.raises(FieldsError, match="Invalid field selection"):
        parse_fields(fields)
