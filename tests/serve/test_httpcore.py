"""The request parser, ranges and conditionals, as pure functions."""

import pytest

from updmirror.errors import UnsafePathError
from updmirror.httpfacts import parse_http_date
from updmirror.serve.httpcore import HttpError, etag_matches, parse_head, parse_range
from updmirror.serve.protocol import clean_path


def test_parse_head_keeps_the_headers_the_server_acts_on():
    req = parse_head(b"GET /dll/update.ver?x=1 HTTP/1.1\r\nHost: m\r\nUser-Agent: EEA Update\r\n"
                     b"range: bytes=0-9\r\nIf-None-Match: \"a\"\r\nConnection: close")
    assert (req.method, req.path, req.version) == (b"GET", b"/dll/update.ver", 11)
    assert req.user_agent == b"EEA Update" and req.range == b"bytes=0-9"
    assert req.if_none_match == b'"a"' and req.keep_alive is False


def test_http10_is_closed_unless_keep_alive_is_asked():
    assert parse_head(b"GET / HTTP/1.0").keep_alive is False
    assert parse_head(b"GET / HTTP/1.0\r\nConnection: keep-alive").keep_alive is True


def test_absolute_form_targets_keep_only_the_path():
    assert parse_head(b"GET http://mirror:2221/a/b.nup HTTP/1.1\r\nHost: mirror").path == b"/a/b.nup"


@pytest.mark.parametrize("head, status", [
    (b"GET /", 400),
    (b"GET / HTTP/2.0", 505),
    (b"GET x HTTP/1.1", 400),
    (b"GET / HTTP/1.1\r\n folded: line", 400),
    (b"GET / HTTP/1.1\r\nName : value", 400),
    (b"GET / HTTP/1.1\r\nno colon", 400),
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1", 414),
    (b" / HTTP/1.0", 400),                         # no method (found by the fuzzer)
    (b"G(T / HTTP/1.0", 400),                      # not a token
])
def test_malformed_heads_are_refused(head, status):
    with pytest.raises(HttpError) as info:
        parse_head(head)
    assert info.value.status == status


def test_a_body_is_noticed():
    assert parse_head(b"GET / HTTP/1.1\r\nHost: m\r\nContent-Length: 5").has_body
    assert not parse_head(b"GET / HTTP/1.1\r\nHost: m\r\nContent-Length: 0").has_body
    assert parse_head(b"GET / HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked").has_body


@pytest.mark.parametrize("value, expected", [
    (b"bytes=0-9", (0, 9)),
    (b"bytes=90-", (90, 99)),
    (b"bytes=-10", (90, 99)),
    (b"bytes=-1000", (0, 99)),
    (b"bytes=50-5000", (50, 99)),
    (b"bytes=0-1,5-6", None),       # several ranges: the whole file
    (b"items=0-1", None),
    (b"bytes=9-1", None),
    (b"bytes=x-1", None),
])
def test_single_ranges(value, expected):
    assert parse_range(value, 100) == expected


@pytest.mark.parametrize("value", [b"bytes=100-", b"bytes=200-300", b"bytes=-0"])
def test_ranges_outside_the_file_are_unsatisfiable(value):
    with pytest.raises(HttpError) as info:
        parse_range(value, 100)
    assert info.value.status == 416


def test_etag_matching_takes_lists_weak_tags_and_star():
    assert etag_matches(b'"x", W/"a-1"', b'"a-1"')
    assert etag_matches(b"*", b'"a-1"')
    assert not etag_matches(b'"a-2"', b'"a-1"')


@pytest.mark.parametrize("raw", [
    b"/../etc/passwd", b"/%2e%2e/etc/passwd", b"/%252e%252e/etc/passwd", b"/a/..%2fb",
    b"/a%2fb", b"/a\\..\\b", b"/a%5cb", b"/a\0b", b"/a%00b", b"/./a", b"/a/%2E%2E/b",
    b"/\xc3\xa9", b"/../", b"/a/../", b"/%2e%2e/", b"//../etc/passwd", b"/a//..//b", b"/a/%2f%2f/b",
])
def test_no_spelling_of_dot_dot_or_a_separator_gets_through(raw):
    with pytest.raises(UnsafePathError):
        clean_path(raw)


def test_a_percent_encoded_plain_path_is_decoded_once():
    assert clean_path(b"/eset_upd/ep11/dll/update%2Ever") == b"/eset_upd/ep11/dll/update.ver"


@pytest.mark.parametrize("raw, merged", [
    (b"//dll/update.ver", b"/dll/update.ver"), (b"//update.ver", b"/update.ver"),
    (b"//v3-rel-sta/mod_001/em001_32_l0.nup", b"/v3-rel-sta/mod_001/em001_32_l0.nup"),
    (b"/eset_upd//ep11///dll/update.ver", b"/eset_upd/ep11/dll/update.ver"),
])
def test_repeated_slashes_are_merged_like_nginx_merge_slashes(raw, merged):
    assert clean_path(raw) == merged


@pytest.mark.parametrize("raw", [b"/", b"//", b"/eset_upd/", b"/eset_upd//", b"/eset_upd/ep11/dll/"])
def test_a_safe_folder_is_no_file_rather_than_a_bad_request(raw):
    assert clean_path(raw) is None


@pytest.mark.parametrize("value", [
    b"Mon, 01 Jan 99999999999 00:00:00 GMT",      # a year no datetime holds
    b"Mon, 01 Jan 2001 00:00:00 +99999999999",    # an offset beyond any day
    b"Mon, 01 Jan 2001 99:99:99 GMT", b"yesterday", b"", b"\xff\xfe",
])
def test_an_unparsable_date_is_ignored(value):
    assert parse_http_date(value) is None
