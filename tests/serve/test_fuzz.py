"""A fuzzer (hypothesis) on the request parser and the router.

The parser gets arbitrary bytes and heads built from hostile pieces; the
router gets hostile paths and headers through a real server over a socket.
Whatever comes in: the parser only ever raises HttpError, what it returns is
clean, and the server answers every request with 200 (then with the bytes of
a file of the snapshot, at the path the request names), 400, 404 or 414,
never a file from elsewhere, never a crash.

Examples: UPDMIRROR_FUZZ_EXAMPLES per test (CI 1500; 20000 with
UPDMIRROR_LONG=1); CI runs are derandomized (the same examples every run),
long runs are not.
"""

from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serverkit import EP11_AGENT, EP11_INDEX, V16_INDEX, InProcessServer, publish, write_config
from sizes import LONG, size
from updmirror.errors import UnsafePathError
from updmirror.serve.httpcore import HttpError, parse_head
from updmirror.serve.protocol import clean_path

EXAMPLES = size("UPDMIRROR_FUZZ_EXAMPLES", ci=1500, long=20000)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
COUNTS: dict[str, int] = {}

SMALL = "/m/em001_64_l0.nup"
LARGE = "/m/big/em002_64_l0.nup"
FILES = {SMALL: b"small module", LARGE: bytes(range(256)) * 512}
INDEXES = {EP11_INDEX: b"[PERSEUS0]\r\nfile=" + SMALL.encode() + b"\r\n", V16_INDEX: b"[V16]\r\n"}
SECRET = b"never served"

# Pieces hostile requests are made of.
SEGMENTS = st.sampled_from(["m", "big", "em001_64_l0.nup", "em002_64_l0.nup", "eset_upd", "ep11", "dll",
                            "update.ver", "..", ".", "", "%2e%2e", "%2E%2e", "%252e%252e", "..%2f", "%2f",
                            "%5c", "..\\", "%00", "\x00", "%c0%ae%c0%ae", "\xe9", "secret.txt", "~", "a b",
                            "update%2Ever", "%", "%zz", "?", "#", ";", "*", "../../..", "snapshots"])
PATHS = st.lists(SEGMENTS, min_size=0, max_size=8).map(lambda parts: "/" + "/".join(parts))
TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=40)
NAMES = st.sampled_from(["Host", "host", "User-Agent", "Range", "If-None-Match", "If-Modified-Since",
                         "If-Range", "Connection", "Content-Length", "Transfer-Encoding", "Authorization",
                         "Eset-Spread-Control", "Referer", "X-Any", "Host ", " Host", "Ho\x00st", ""])
VALUES = st.one_of(TEXT, st.sampled_from([
    "bytes=0-9", "bytes=-1", "bytes=99999999999999999999-", "bytes=5-1", "bytes=0-0,2-3", "close",
    "keep-alive", "0", "5", "chunked", "Mon, 01 Jan 99999999999 00:00:00 GMT", "*", '"x"', "W/\"x\"",
    "domain=pre-release", "domain=\xff", EP11_AGENT, "Basic Og==", "Basic !!!", "\r", "\n", "\x00"]))


def head_of(method: str, target: str, version: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"{method} {target} {version}", *(f"{k}: {v}" for k, v in headers)]
    return "\r\n".join(lines).encode("utf-8", "surrogateescape")


HEADS = st.builds(head_of, st.sampled_from(["GET", "HEAD", "POST", "get", "", "GET GET", "OPTIONS"]),
                  st.one_of(PATHS, st.sampled_from(["*", "http://mirror/a", "https://x", "//a", "x"])),
                  st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 ", "http/1.1", ""]),
                  st.lists(st.tuples(NAMES, VALUES), max_size=8))


def count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


def check_parsed(head: bytes) -> None:
    try:
        req = parse_head(head)
    except HttpError as exc:
        assert exc.status in (400, 414, 431, 505)
        return
    assert req.method.isascii() and b" " not in req.method and req.path.startswith(b"/")
    assert req.version in (10, 11)
    for value in (req.user_agent, req.range, req.if_none_match, req.if_modified_since, req.if_range,
                  req.authorization, req.spread_control, req.referer):
        assert value is None or not any(c in value for c in b"\r\n\0")


@FUZZ
@given(st.binary(max_size=4096))
def test_the_parser_only_refuses_arbitrary_bytes_with_an_http_error(head):
    count("parser, arbitrary bytes")
    check_parsed(head)


@FUZZ
@given(HEADS)
def test_the_parser_only_refuses_hostile_heads_with_an_http_error(head):
    count("parser, hostile heads")
    check_parsed(head)


@FUZZ
@given(st.one_of(PATHS, st.binary(max_size=300).map(lambda b: b"/" + b)))
def test_a_path_is_either_refused_or_a_clean_path_inside_the_tree(raw):
    count("path cleaning")
    raw = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
    try:
        clean = clean_path(raw)
    except UnsafePathError:
        return
    if clean is None:
        return            # a folder
    text = clean.decode()
    assert text.startswith("/") and "\\" not in text and "\0" not in text and "%" not in text
    assert all(part not in ("", ".", "..") for part in text[1:].split("/"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "secret.txt").write_bytes(SECRET)
    (tmp / "store").mkdir()
    (tmp / "store" / "secret.txt").write_bytes(SECRET)
    publish(tmp / "store", FILES, INDEXES)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with InProcessServer(write_config(tmp, tmp / "store", port)) as srv:
        yield srv


def ask(port: int, head: bytes) -> tuple[int, bytes, bool]:
    """Status, body, and whether the server closed, for one request on a fresh connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + b"\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            assert chunk, f"closed without an answer to {head!r}"
            data += chunk
        top, _, body = data.partition(b"\r\n\r\n")
        status = int(top.split(b" ", 2)[1])
        length = next((int(line.split(b":", 1)[1]) for line in top.split(b"\r\n")[1:]
                       if line.lower().startswith(b"content-length:")), 0)
        if head.startswith(b"HEAD ") or status == 304:
            length = 0
        while len(body) < length:
            chunk = s.recv(65536)
            assert chunk, "closed before the whole body"
            body += chunk
        return status, body[:length], True


ANSWERS = {200, 206, 304, 400, 404, 405, 414, 416, 431, 505}


def check_answer(head: bytes, status: int, body: bytes) -> None:
    assert status in ANSWERS, (head, status)
    assert SECRET not in body
    if status in (200, 206) and not head.startswith(b"HEAD "):
        served = set(FILES.values()) | set(INDEXES.values())
        assert any(body and body in whole for whole in served), (head, body[:80])


@FUZZ
@given(PATHS, st.sampled_from(["GET", "HEAD"]))
def test_the_router_answers_every_hostile_path_with_a_file_of_the_tree_or_an_error(server, path, method):
    count("router, hostile paths over a socket")
    head = f"{method} {path} HTTP/1.1\r\nHost: mirror".encode("utf-8", "surrogateescape")
    status, body, _ = ask(server.port, head)
    check_answer(head, status, body)
    if status == 200 and method == "GET":
        assert body == FILES.get(clean_path(path.encode("utf-8", "surrogateescape")).decode(),
                                 INDEXES.get(path.lstrip("/"), body))


@FUZZ
@given(HEADS)
def test_the_server_answers_every_hostile_head_and_goes_on(server, head):
    count("server, hostile heads over a socket")
    status, body, _ = ask(server.port, head)
    check_answer(head, status, body)


@FUZZ
@given(st.one_of(TEXT, st.sampled_from([EP11_AGENT, "EEA Update (BPC 99.0", "ESS Update (BPC 16.",
                                         "(BPC )", "BPC 16.0.0.0 BPC 11.0"])),
       st.one_of(st.none(), VALUES), st.sampled_from(["/update.ver", "/dll/update.ver"]))
def test_user_agent_routing_gives_an_index_or_nothing(server, agent, spread, path):
    count("routing by User-Agent")
    entry = server.worker.tables.for_agent(path.encode(), agent.encode("utf-8", "surrogateescape"),
                                           None if spread is None else spread.encode("utf-8", "surrogateescape"))
    assert entry is None or (entry.is_index and entry.body in INDEXES.values())


def test_zz_the_fuzzer_ran_its_examples():
    """Runs last in this module: the counts, for RELIABILITY.md (pytest -s shows them)."""
    print("\nfuzz examples: " + ", ".join(f"{k}: {v}" for k, v in COUNTS.items()))
    assert all(v >= min(EXAMPLES, 100) for v in COUNTS.values()), COUNTS
