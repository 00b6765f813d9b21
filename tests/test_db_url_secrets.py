"""No database password in any repr, message or traceback (issue 9, item 18).

A notebook that shows ``db.url``, a log line with the pool's URL and a traceback of a bad URL
are all read by other people; the password must never be in them.
"""

from __future__ import annotations

import socket
import traceback

import pytest

from opusclip_lib.db import ConfigurationError, Database, DatabaseError, connect, parse_url

PASSWORD = "s3cret-Pa55word"
URLS = [
    f"postgresql://app:{PASSWORD}@127.0.0.1:5432/test",
    f"mysql://root:{PASSWORD}@127.0.0.1:3306/test?max_size=3",
]
BAD_URLS = [
    f"postgresql://app:{PASSWORD}@127.0.0.1:5432",  # no database name
    f"postgresql://app:{PASSWORD}@127.0.0.1:5432/",
    f"mysql://root:{PASSWORD}@db.example:3306",
    f"postgresql://app:{PASSWORD}@127.0.0.1:port/test",  # a bad port
    "postgresql://app:Pa55/zz@127.0.0.1/test",  # an unencoded "/": urllib reads a port "Pa55"
]


def everything_shown(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


@pytest.mark.parametrize("url", URLS)
def test_the_parsed_url_never_shows_its_password(url: str) -> None:
    parsed = parse_url(url)
    assert parsed.password == PASSWORD  # kept for the driver
    assert PASSWORD not in repr(parsed)
    assert PASSWORD not in str(parsed)


@pytest.mark.parametrize("url", URLS)
def test_a_database_shows_its_url_without_the_password(url: str) -> None:
    db = Database(url)  # not opened: nothing is sent
    assert PASSWORD not in repr(db.url)
    assert PASSWORD not in f"{db.url}"


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_configuration_error_never_quotes_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_url(url)
    secret = PASSWORD if PASSWORD in url else "Pa55"
    assert secret not in everything_shown(caught.value)


def test_the_error_for_a_url_without_database_still_names_the_host() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_url(f"postgresql://app:{PASSWORD}@db.example:5432")
    assert "db.example" in str(caught.value)


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
async def test_an_unreachable_server_error_never_shows_the_password(scheme: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the pool connects
    url = f"{scheme}://app:{PASSWORD}@127.0.0.1:{port}/test?acquire_timeout=2"
    with pytest.raises(DatabaseError) as caught:
        async with connect(url, min_size=1):
            pass
    assert PASSWORD not in everything_shown(caught.value)
