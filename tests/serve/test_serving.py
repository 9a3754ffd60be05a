"""The server over real sockets: routing, vendor paths, HTTP semantics, safety."""

import socket
import time

import pytest

from serverkit import (
    EP11_AGENT,
    EP11_INDEX,
    V16_AGENT,
    V16_INDEX,
    Client,
    ServerProcess,
    get,
    publish,
    request_bytes,
    write_config,
)

SMALL = "/endpointwindowslatest-rel-sta/mod_001_perseus_1/em001_64_l0.nup"
LARGE = "/endpointwindowslatest-rel-sta/mod_002_loader_1/em002_64_l0.nup"
SMALL_BYTES = b"small module " * 10
LARGE_BYTES = bytes(range(256)) * 1200          # 300 KiB: sent with sendfile
EP11_BYTES = b"[PERSEUS0]\r\nfile=" + SMALL.encode() + b"\r\n" + b"; ep11\r\n" * 5000
V16_BYTES = b"[V16]\r\nversionid=1\r\n"
SECRET = b"not for clients"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    (tmp / "secret.txt").write_bytes(SECRET)
    root = tmp / "store"
    publish(root, {SMALL: SMALL_BYTES, LARGE: LARGE_BYTES}, {EP11_INDEX: EP11_BYTES, V16_INDEX: V16_BYTES})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with ServerProcess(write_config(tmp, root, port), port) as srv:
        yield srv


@pytest.mark.parametrize("path, agent, expected", [
    ("/update.ver", EP11_AGENT, EP11_BYTES),
    ("/dll/update.ver", EP11_AGENT, EP11_BYTES),
    ("/dll/update.ver", V16_AGENT, V16_BYTES),
    ("/update.ver", V16_AGENT.replace("BPC 16.", "BPC 18."), V16_BYTES),   # v18 reads v16's tree
    ("/dll/update.ver", "curl/8.0", EP11_BYTES),                            # unknown: the default tree
])
def test_update_ver_is_chosen_by_user_agent(server, path, agent, expected):
    r = get(server.port, path, headers={"User-Agent": agent})
    assert r.status == 200
    assert r.body == expected
    assert "user-agent" in r.headers["vary"].lower()


@pytest.mark.parametrize("path, agent, expected", [
    ("//dll/update.ver", EP11_AGENT, EP11_BYTES),          # a client set up with "http://mirror:2221/"
    ("//update.ver", V16_AGENT, V16_BYTES),
    ("//" + EP11_INDEX, None, EP11_BYTES),
    ("/eset_upd//ep11///dll/update.ver", None, EP11_BYTES),
    ("/" + SMALL, None, SMALL_BYTES),                       # a downloader's "//<product>-rel-sta/..."
    ("/" + LARGE.replace("/mod_", "//mod_"), None, LARGE_BYTES),
])
def test_repeated_slashes_are_merged_before_routing(server, path, agent, expected):
    r = get(server.port, path, headers={"User-Agent": agent} if agent else None)
    assert (r.status, r.body) == (200, expected)


def test_vendor_paths_are_served_as_they_are(server):
    r = get(server.port, "/" + EP11_INDEX)
    assert (r.status, r.body, r.headers["content-type"]) == (200, EP11_BYTES, "text/plain")
    r = get(server.port, SMALL)
    assert (r.status, r.body, r.headers["content-type"]) == (200, SMALL_BYTES, "application/octet-stream")
    r = get(server.port, LARGE)
    assert r.status == 200 and r.body == LARGE_BYTES


def test_keep_alive_serves_several_requests_on_one_connection(server):
    with Client(server.port) as c:
        for path, body in [(SMALL, SMALL_BYTES), (LARGE, LARGE_BYTES), ("/" + V16_INDEX, V16_BYTES),
                           (LARGE, LARGE_BYTES), ("/missing.nup", None)]:
            r = c.request(path)
            assert r.status == (200 if body else 404)
            if body:
                assert r.body == body


def test_pipelined_requests_are_answered_in_order(server):
    with Client(server.port) as c:
        c.send(request_bytes(SMALL) + request_bytes(LARGE) + request_bytes("/nothing")
               + request_bytes("/" + EP11_INDEX, "HEAD") + request_bytes(SMALL))
        assert c.read_response().body == SMALL_BYTES
        assert c.read_response().body == LARGE_BYTES
        assert c.read_response().status == 404
        head = c.read_response(head_only=True)
        assert head.status == 200 and int(head.headers["content-length"]) == len(EP11_BYTES)
        assert c.read_response().body == SMALL_BYTES


def test_head_sends_the_headers_of_get_without_the_body(server):
    with Client(server.port) as c:
        for path, body in [(LARGE, LARGE_BYTES), (SMALL, SMALL_BYTES)]:
            r = c.request(path, "HEAD")
            assert r.status == 200 and int(r.headers["content-length"]) == len(body)
        # Had a body been sent, this response would not parse.
        assert c.request(SMALL).body == SMALL_BYTES


@pytest.mark.parametrize("path, data", [(SMALL, SMALL_BYTES), (LARGE, LARGE_BYTES)])
def test_a_single_range_gets_206(server, path, data):
    r = get(server.port, path, headers={"Range": "bytes=5-104"})
    assert r.status == 206
    assert r.body == data[5:105]
    assert r.headers["content-range"] == f"bytes 5-104/{len(data)}"
    r = get(server.port, path, headers={"Range": "bytes=-7"})
    assert r.status == 206 and r.body == data[-7:]


def test_a_range_beyond_the_file_gets_416(server):
    r = get(server.port, LARGE, headers={"Range": f"bytes={len(LARGE_BYTES)}-"})
    assert r.status == 416
    assert r.headers["content-range"] == f"bytes */{len(LARGE_BYTES)}"


def test_if_range_with_another_etag_gets_the_whole_file(server):
    r = get(server.port, SMALL, headers={"Range": "bytes=0-1", "If-Range": '"other"'})
    assert r.status == 200 and r.body == SMALL_BYTES


def test_conditional_requests_get_304(server):
    first = get(server.port, "/" + EP11_INDEX)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert get(server.port, "/" + EP11_INDEX, headers={"If-None-Match": etag}).status == 304
    assert get(server.port, LARGE, headers={"If-None-Match": get(server.port, LARGE).headers["etag"]}
               ).status == 304
    assert get(server.port, "/" + EP11_INDEX, headers={"If-Modified-Since": modified}).status == 304
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    r = get(server.port, "/" + EP11_INDEX, headers={"If-Modified-Since": old})
    assert r.status == 200 and r.body == EP11_BYTES
    r = get(server.port, "/" + EP11_INDEX, headers={"If-None-Match": '"stale"', "If-Modified-Since": modified})
    assert r.status == 200   # If-None-Match wins over If-Modified-Since


@pytest.mark.parametrize("path", ["/", "//", "/eset_upd", "/eset_upd/", "/eset_upd//", "/eset_upd/ep11/dll/",
                                  "/endpointwindowslatest-rel-sta/"])
def test_folders_are_never_listed(server, path):
    r = get(server.port, path)
    assert r.status == 404    # a folder names no file; 400 is for malformed or unsafe requests
    assert b"update.ver" not in r.body and b".nup" not in r.body


@pytest.mark.parametrize("path", [
    "/../secret.txt", "/../../secret.txt", "/%2e%2e/%2e%2e/secret.txt", "/%252e%252e/secret.txt",
    "/eset_upd/..%2f..%2f..%2fsecret.txt", "/..%5c..%5csecret.txt", "/eset_upd\\..\\..\\secret.txt",
    "/secret.txt%00.nup", "/./../secret.txt", "/eset_upd/%2E%2E/%2E%2E/%2E%2E/secret.txt",
    "/current/../../secret.txt", "//etc/passwd",
])
def test_path_traversal_never_reaches_a_file_outside_the_tree(server, path):
    with Client(server.port) as c:
        c.send(f"GET {path} HTTP/1.1\r\nHost: m\r\n\r\n".encode("latin-1"))
        r = c.read_response()
    assert r.status in (400, 404)
    assert SECRET not in r.body and b"root:" not in r.body


def test_a_nul_byte_in_the_request_is_refused(server):
    with Client(server.port) as c:
        c.send(b"GET /a\x00/../../secret.txt HTTP/1.1\r\nHost: m\r\n\r\n")
        r = c.read_response()
    assert r.status in (400, 404) and SECRET not in r.body


def test_methods_other_than_get_and_head_get_405(server):
    with Client(server.port) as c:
        r = c.request(SMALL, "POST", headers={"Content-Length": "0"})
    assert r.status == 405 and "GET" in r.headers["allow"]


def test_status_pages_answer(server):
    # The status module and its dependency are part of every installation.
    for path in ("/status", "/status.json", "/metrics"):
        assert get(server.port, path).status == 200


def test_a_file_after_answers_still_queued_for_a_slow_reader_arrives_whole(server):
    with Client(server.port) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        # 7 MB of answers: more than the socket buffers hold, so the server queues
        c.send(request_bytes("/" + EP11_INDEX) * 150 + request_bytes(LARGE) + request_bytes(SMALL))
        time.sleep(0.3)
        for _ in range(150):
            assert c.read_response().body == EP11_BYTES
        assert c.read_response().body == LARGE_BYTES
        assert c.read_response().body == SMALL_BYTES


def test_a_huge_if_modified_since_is_ignored_and_the_request_behind_it_answered(server):
    with Client(server.port) as c:
        c.send(request_bytes(SMALL, headers={"If-Modified-Since": "Mon, 01 Jan 99999999999 00:00:00 GMT"})
               + request_bytes(SMALL, headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 +99999999999"})
               + request_bytes("/" + V16_INDEX))
        assert c.read_response().body == SMALL_BYTES
        assert c.read_response().body == SMALL_BYTES
        assert c.read_response().body == V16_BYTES
