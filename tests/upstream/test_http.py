"""HttpUpstream against a real aiohttp server on 127.0.0.1 that each test scripts.

Each test runs one asyncio scenario; the server's handlers are small
coroutines that answer request number n on a path (0-based), so a fault on
the first request and a good answer on the next are easy to write.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import re
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from updmirror.upstream import (
    AuthError,
    HttpUpstream,
    NotFoundError,
    StalledError,
    TooLargeError,
    UpstreamConfig,
    UpstreamError,
    open_upstream,
)

USER = "EAV-0123456789"
PASSWORD = "s3cret-Pa55word"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
#: A file of this many bytes is big enough for several read chunks.
FILE = hashlib.sha256(b"seed").digest() * (300 * 1024 // 32)
STALL = 1.0  # stall_timeout in tests: every stall test costs about this long

Handler = Callable[[web.Request, int], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class Scripted:
    """A real HTTP server whose answers the test writes, recording every request it gets."""

    routes: dict[str, Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    async def __aenter__(self) -> Scripted:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._dispatch)
        # Stalled handlers are cut off at shutdown instead of being waited for.
        self._runner = web.AppRunner(app, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        n = len(self.requests_to(request.path))
        self.seen.append(Seen(request.path, dict(request.headers)))
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404)
        return await handler(request, n)


def config(base: str, **overrides) -> UpstreamConfig:
    settings = dict(url=base, username=USER, password=PASSWORD, connect_timeout=2.0,
                    stall_timeout=STALL, min_speed=1000, parallel=4, retries=3)
    settings.update(overrides)
    return UpstreamConfig(**settings)


def upstream(srv: Scripted, **overrides) -> HttpUpstream:
    # Backoff shrunk so that retries cost milliseconds, not seconds.
    return HttpUpstream(config(srv.url("/"), **overrides), backoff_base=0.02)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=20))


async def expect(error: type[Exception], call: Awaitable[object]) -> str:
    """Await `call`, require `error`, and require that its text holds no credential."""
    with pytest.raises(error) as info:
        await call
    text = f"{info.value} {info.value!r}"
    assert PASSWORD not in text and BASIC not in text
    return str(info.value)


# -- answers the scripted server gives -------------------------------------------------

def file_answer(body: bytes = FILE, honour_range: bool = True) -> Handler:
    async def answer(request: web.Request, n: int) -> web.StreamResponse:
        m = re.fullmatch(r"bytes=(\d+)-", request.headers.get("Range", ""))
        if m and honour_range:
            start = int(m.group(1))
            if start >= len(body):
                return web.Response(status=416, headers={"Content-Range": f"bytes */{len(body)}"})
            return web.Response(status=206, body=body[start:], headers={
                "Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"})
        return web.Response(body=body)
    return answer


async def announce(request: web.Request, body: bytes = FILE) -> web.StreamResponse:
    """Send the headers of an answer announcing `body`'s length; the caller sends what it likes of it."""
    resp = web.StreamResponse()
    resp.content_length = len(body)
    await resp.prepare(request)
    return resp


def cut_answer(body: bytes, upto: int) -> Handler:
    """Announce the whole body, send `upto` bytes of it, then drop the connection."""
    async def answer(request: web.Request, n: int) -> web.StreamResponse:
        resp = await announce(request, body)
        await resp.write(body[:upto])
        await asyncio.sleep(0.05)
        request.transport.abort()
        return resp
    return answer


def first(count: int, fault: Handler, then: Handler) -> Handler:
    async def answer(request: web.Request, n: int) -> web.StreamResponse:
        return await (fault if n < count else then)(request, n)
    return answer


def status(code: int, **headers: str) -> Handler:
    async def answer(request: web.Request, n: int) -> web.StreamResponse:
        return web.Response(status=code, headers=headers)
    return answer


# -- authentication and status codes ---------------------------------------------------

def test_basic_auth_is_sent_and_401_is_an_auth_error_without_retry(tmp_path):
    async def scenario():
        async with Scripted() as srv:
            srv.routes["/ok"] = file_answer(b"fine")
            srv.routes["/refused"] = status(401, **{"WWW-Authenticate": 'Basic realm="x"'})
            async with upstream(srv) as up:
                await up.download(srv.url("/ok"), tmp_path / "ok.part", 4, 100)
                message = await expect(AuthError, up.fetch_index(srv.url("/refused"), None, 1000))
            assert srv.requests_to("/ok")[0].headers["Authorization"] == f"Basic {BASIC}"
            assert len(srv.requests_to("/refused")) == 1
            assert up.stats.retries == 0
            assert message == (f"upstream refused the credentials for {srv.url('/refused')} "
                               "(HTTP 401); check [upstream] username and password")
    run(scenario)


def test_404_is_not_found_without_retry(tmp_path):
    async def scenario():
        async with Scripted() as srv, upstream(srv) as up:
            message = await expect(NotFoundError, up.download(srv.url("/gone.nup"), tmp_path / "g.part",
                                                              None, 1000))
            assert srv.url("/gone.nup") in message and "404" in message
            assert len(srv.requests_to("/gone.nup")) == 1
    run(scenario)


def test_server_errors_are_retried_until_success(tmp_path):
    async def scenario():
        async with Scripted() as srv:
            srv.routes["/f.nup"] = first(2, status(500), file_answer())
            async with upstream(srv) as up:
                done = await up.download(srv.url("/f.nup"), tmp_path / "f.part", len(FILE), 10**7)
            assert done.read_bytes() == FILE
            assert up.stats.retries == 2 and up.stats.requests == 3
    run(scenario)


def test_server_errors_beyond_the_retry_budget_fail_with_the_cause(tmp_path):
    async def scenario():
        async with Scripted() as srv:
            srv.routes["/f.nup"] = status(503)
            async with upstream(srv, retries=2) as up:
                message = await expect(UpstreamError, up.download(srv.url("/f.nup"), tmp_path / "f.part",
                                                                  None, 1000))
            assert "HTTP 503" in message and "3 attempts" in message and srv.url("/f.nup") in message
            assert len(srv.requests_to("/f.nup")) == 3
    run(scenario)


def test_429_retry_after_is_waited_for(tmp_path):
    async def scenario():
        async with Scripted() as srv:
            srv.routes["/update.ver"] = first(1, status(429, **{"Retry-After": "1"}), file_answer(b"[x]"))
            async with upstream(srv) as up:
                started = time.monotonic()
                result = await up.fetch_index(srv.url("/update.ver"), None, 1000)
                waited = time.monotonic() - started
            assert result.body == b"[x]" and up.stats.retries == 1
            assert 0.9 <= waited < 3
    run(scenario)


def test_429_asking_for_a_longer_wait_than_the_cap_fails_and_says_so():
    async def scenario():
        async with Scripted() as srv:
            srv.routes["/update.ver"] = status(429, **{"Retry-After": "3600"})
            async with upstream(srv) as up:
                message = await expect(UpstreamError, up.fetch_index(srv.url("/update.ver"), None, 1000))
            assert "3600 s" in message and "Retry-After" in message
            assert len(srv.requests_to("/update.ver")) == 1
    run(scenario)


def test_connection_refused_is_retried_then_named(tmp_path, free_port):
    async def scenario():
        cfg = config(f"http://127.0.0.1:{free_port}/", retries=1)
        async with HttpUpstream(cfg, backoff_base=0.02) as up:
            message = await expect(UpstreamError, up.fetch_index(f"http://127.0.0.1:{free_port}/u.ver",
                                                                 None, 1000))
        assert f"127.0.0.1:{free_port}" in message and "cannot connect" in message
        assert up.stats.retries == 1
    run(scenario)


# -- indexes ---------------------------------------------------------------------------

def test_conditional_fetch_of_an_unchanged_index_gets_304_and_no_body():
    async def scenario():
        async def index(request: web.Request, n: int) -> web.StreamResponse:
            if request.headers.get("If-None-Match") == '"v1"':
                return web.Response(status=304, headers={"ETag": '"v1"'})
            return web.Response(body=b"[ENGINE2]\r\n", headers={
                "ETag": '"v1"', "Last-Modified": "Sun, 29 Nov 2026 10:00:00 GMT"})
        async with Scripted() as srv:
            srv.routes["/update.ver"] = index
            async with upstream(srv) as up:
                first_fetch = await up.fetch_index(srv.url("/update.ver"), None, 1000)
                again = await up.fetch_index(srv.url("/update.ver"), first_fetch.validators, 1000)
            assert first_fetch.changed and first_fetch.body == b"[ENGINE2]\r\n"
            assert first_fetch.validators == {"etag": '"v1"',
                                              "last_modified": "Sun, 29 Nov 2026 10:00:00 GMT"}
            assert not again.changed and again.body == b""
            assert again.validators["etag"] == '"v1"'
            second = srv.requests_to("/update.ver")[1].headers
            assert second["If-Modified-Since"] == "Sun, 29 Nov 2026 10:00:00 GMT"
    run(scenario)


def test_server_ignoring_conditional_requests_with_the_same_etag_counts_as_unchanged():
    async def scenario():
        async with Scripted() as srv:
            srv.routes["/update.ver"] = status(200, ETag='"v7"')
            async with upstream(srv) as up:
                result = await up.fetch_index(srv.url("/update.ver"), {"etag": '"v7"'}, 1000)
            assert not result.changed and result.body == b""
    run(scenario)


def test_304_to_an_unconditional_request_is_an_error():
    async def scenario():
        async with Scripted() as srv:
            srv.routes["/update.ver"] = status(304)
            async with upstream(srv) as up:
                message = await expect(UpstreamError, up.fetch_index(srv.url("/update.ver"), None, 1000))
            assert "304" in message
    run(scenario)


def test_gzip_encoded_index_is_decoded_and_bounded_after_decoding():
    plain = b"[ENGINE2]\r\nversion=1\r\n" * 200

    async def gzipped(request: web.Request, n: int) -> web.StreamResponse:
        return web.Response(body=gzip.compress(plain), headers={"Content-Encoding": "gzip"})

    async def scenario():
        async with Scripted() as srv:
            srv.routes["/update.ver"] = gzipped
            async with upstream(srv) as up:
                result = await up.fetch_index(srv.url("/update.ver"), None, len(plain))
                assert result.body == plain
                # Small on the wire, over the bound once decoded.
                await expect(TooLargeError, up.fetch_index(srv.url("/update.ver"), None, len(plain) - 1))
    run(scenario)


def test_endless_index_is_too_large_with_bounded_memory():
    limit = 1024 * 1024
    chunk = b"x" * 65536

    async def endless(request: web.Request, n: int) -> web.StreamResponse:
        resp = web.StreamResponse()  # chunked: no Content-Length to refuse up front
        await resp.prepare(request)
        for _ in range(2048):  # 128 MiB at most, far past the bound
            await resp.write(chunk)
        return resp

    async def scenario():
        async with Scripted() as srv:
            srv.routes["/update.ver"] = endless
            async with upstream(srv) as up:
                tracemalloc.start()
                try:
                    message = await expect(TooLargeError, up.fetch_index(srv.url("/update.ver"), None, limit))
                    peak = tracemalloc.get_traced_memory()[1]
                finally:
                    tracemalloc.stop()
            assert str(limit) in message
            assert peak < 4 * limit
            assert up.stats.bytes < 2 * limit
    run(scenario)


# -- downloads -------------------------------------------------------------------------

def test_partial_file_is_resumed_with_a_range_request(tmp_path):
    async def scenario():
        part = tmp_path / "deep" / "f.nup.part"
        part.parent.mkdir()
        part.write_bytes(FILE[:100_000])
        progress: list[int] = []
        async with Scripted() as srv:
            srv.routes["/f.nup"] = file_answer()
            async with upstream(srv) as up:
                done = await up.download(srv.url("/f.nup"), part, len(FILE), 10**7, progress.append)
            assert done == part and part.read_bytes() == FILE
            assert srv.requests_to("/f.nup")[0].headers["Range"] == "bytes=100000-"
            assert sum(progress) == len(FILE) - 100_000
    run(scenario)


def test_fresh_download_creates_parent_folders_and_reports_progress(tmp_path):
    async def scenario():
        part = tmp_path / "a" / "b" / "f.part"
        progress: list[int] = []
        async with Scripted() as srv:
            srv.routes["/f.nup"] = file_answer()
            async with upstream(srv) as up:
                await up.download(srv.url("/f.nup"), part, None, 10**7, progress.append)
            assert part.read_bytes() == FILE and sum(progress) == len(FILE)
            assert "Range" not in srv.requests_to("/f.nup")[0].headers
    run(scenario)


def test_server_ignoring_the_range_restarts_the_file(tmp_path):
    async def scenario():
        part = tmp_path / "f.part"
        part.write_bytes(b"stale bytes of another version")
        async with Scripted() as srv:
            srv.routes["/f.nup"] = file_answer(honour_range=False)
            async with upstream(srv) as up:
                await up.download(srv.url("/f.nup"), part, len(FILE), 10**7)
            assert part.read_bytes() == FILE
    run(scenario)


def test_416_with_a_partial_of_the_expected_size_is_complete(tmp_path):
    async def scenario():
        part = tmp_path / "f.part"
        part.write_bytes(FILE)
        async with Scripted() as srv:
            srv.routes["/f.nup"] = file_answer()
            async with upstream(srv) as up:
                assert await up.download(srv.url("/f.nup"), part, len(FILE), 10**7) == part
            assert part.read_bytes() == FILE and up.stats.bytes == 0
    run(scenario)


def test_mismatched_content_range_starts_over(tmp_path):
    async def wrong_range(request: web.Request, n: int) -> web.StreamResponse:
        return web.Response(status=206, body=FILE[5:], headers={
            "Content-Range": f"bytes 5-{len(FILE) - 1}/{len(FILE)}"})

    async def scenario():
        part = tmp_path / "f.part"
        part.write_bytes(FILE[:1000])
        async with Scripted() as srv:
            srv.routes["/f.nup"] = first(1, wrong_range, file_answer())
            async with upstream(srv) as up:
                await up.download(srv.url("/f.nup"), part, len(FILE), 10**7)
            assert part.read_bytes() == FILE
            assert "Range" not in srv.requests_to("/f.nup")[1].headers
    run(scenario)


def test_truncated_body_is_retried_and_completed_by_resume(tmp_path):
    async def scenario():
        part = tmp_path / "f.part"
        async with Scripted() as srv:
            srv.routes["/f.nup"] = first(1, cut_answer(FILE, 120_000), file_answer())
            async with upstream(srv) as up:
                await up.download(srv.url("/f.nup"), part, len(FILE), 10**7)
            assert part.read_bytes() == FILE
            assert up.stats.retries == 1
            resumed_from = srv.requests_to("/f.nup")[1].headers["Range"]
            assert resumed_from == "bytes=120000-"
    run(scenario)


def test_stall_after_the_headers_gives_up_within_the_stall_timeout(tmp_path):
    async def stall(request: web.Request, n: int) -> web.StreamResponse:
        resp = await announce(request)
        await asyncio.sleep(10)
        return resp

    async def scenario():
        async with Scripted() as srv:
            srv.routes["/f.nup"] = stall
            async with upstream(srv, retries=0) as up:
                started = time.monotonic()
                message = await expect(StalledError, up.download(srv.url("/f.nup"), tmp_path / "f.part",
                                                                 len(FILE), 10**7))
                took = time.monotonic() - started
            assert srv.url("/f.nup") in message and "no data" in message
            assert STALL * 0.9 <= took < STALL * 2.5
    run(scenario)


def test_no_answer_at_all_is_a_stall(tmp_path):
    async def silent(request: web.Request, n: int) -> web.StreamResponse:
        await asyncio.sleep(10)
        return web.Response()

    async def scenario():
        async with Scripted() as srv:
            srv.routes["/update.ver"] = silent
            async with upstream(srv, retries=0) as up:
                started = time.monotonic()
                await expect(StalledError, up.fetch_index(srv.url("/update.ver"), None, 1000))
                assert time.monotonic() - started < STALL * 2.5
    run(scenario)


def test_slow_drip_is_given_up(tmp_path):
    async def drip(request: web.Request, n: int) -> web.StreamResponse:
        resp = await announce(request)
        for i in range(100):  # 10 bytes/s, far under min_speed; every byte well inside stall_timeout
            await resp.write(FILE[i:i + 1])
            await asyncio.sleep(0.1)
        return resp

    async def scenario():
        async with Scripted() as srv:
            srv.routes["/f.nup"] = drip
            async with upstream(srv, retries=0, min_speed=1000) as up:
                started = time.monotonic()
                message = await expect(StalledError, up.download(srv.url("/f.nup"), tmp_path / "f.part",
                                                                 len(FILE), 10**7))
                took = time.monotonic() - started
            assert "bytes/s" in message and "min_speed" in message
            assert took < STALL * 2.5
    run(scenario)


def test_content_length_larger_than_the_expected_size_is_refused(tmp_path):
    async def scenario():
        async with Scripted() as srv:
            srv.routes["/f.nup"] = file_answer()
            async with upstream(srv) as up:
                message = await expect(UpstreamError, up.download(srv.url("/f.nup"), tmp_path / "f.part",
                                                                  len(FILE) - 10, 10**7))
            assert str(len(FILE)) in message and str(len(FILE) - 10) in message
            assert len(srv.requests_to("/f.nup")) == 1
    run(scenario)


def test_body_longer_than_the_expected_size_without_content_length_is_too_large(tmp_path):
    async def chunked(request: web.Request, n: int) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(FILE)
        return resp

    async def scenario():
        part = tmp_path / "f.part"
        async with Scripted() as srv:
            srv.routes["/f.nup"] = chunked
            async with upstream(srv) as up:
                await expect(TooLargeError, up.download(srv.url("/f.nup"), part, len(FILE) - 1, 10**7))
            assert not part.exists()
    run(scenario)


def test_expected_size_over_max_bytes_is_refused_without_a_request(tmp_path):
    async def scenario():
        async with Scripted() as srv, upstream(srv) as up:
            await expect(TooLargeError, up.download(srv.url("/f.nup"), tmp_path / "f.part", 2000, 1000))
            assert srv.seen == []
    run(scenario)


# -- redirects and credentials ---------------------------------------------------------

def test_redirect_to_another_host_drops_the_credentials(tmp_path):
    async def scenario():
        async with Scripted() as elsewhere, Scripted() as srv:
            elsewhere.routes["/f.nup"] = file_answer(b"moved")

            async def moved(request: web.Request, n: int) -> web.StreamResponse:
                raise web.HTTPFound(elsewhere.url("/f.nup"))
            srv.routes["/f.nup"] = moved
            async with upstream(srv) as up:
                await up.download(srv.url("/f.nup"), tmp_path / "f.part", 5, 100)
            assert srv.requests_to("/f.nup")[0].headers["Authorization"] == f"Basic {BASIC}"
            assert "Authorization" not in elsewhere.requests_to("/f.nup")[0].headers
    run(scenario)


def test_redirect_loop_is_an_error_naming_the_url():
    async def scenario():
        async with Scripted() as srv:
            async def loop(request: web.Request, n: int) -> web.StreamResponse:
                raise web.HTTPFound(srv.url("/update.ver"))
            srv.routes["/update.ver"] = loop
            async with upstream(srv) as up:
                message = await expect(UpstreamError, up.fetch_index(srv.url("/update.ver"), None, 1000))
            assert "redirects" in message and srv.url("/update.ver") in message
            assert len(srv.seen) <= 6
    run(scenario)


def test_url_with_credentials_in_it_is_refused_without_showing_them():
    async def scenario():
        async with Scripted() as srv, upstream(srv) as up:
            leaky = f"http://{USER}:{PASSWORD}@127.0.0.1:{srv.port}/update.ver"
            message = await expect(UpstreamError, up.fetch_index(leaky, None, 1000))
            assert "credentials" in message and srv.seen == []
    run(scenario)


def test_open_upstream_picks_http_for_an_http_url():
    async def scenario():
        up = open_upstream(config("http://127.0.0.1:9/"))
        try:
            assert isinstance(up, HttpUpstream)
        finally:
            await up.close()
    run(scenario)


def test_refusal_after_a_redirect_names_where_it_came_from():
    async def scenario():
        async with Scripted() as elsewhere, Scripted() as srv:
            elsewhere.routes["/update.ver"] = status(401)

            async def moved(request: web.Request, n: int) -> web.StreamResponse:
                raise web.HTTPFound(elsewhere.url("/update.ver"))
            srv.routes["/update.ver"] = moved
            async with upstream(srv) as up:
                message = await expect(AuthError, up.fetch_index(srv.url("/update.ver"), None, 1000))
            assert f"redirected to {elsewhere.url('/update.ver')}" in message
    run(scenario)


def test_requests_go_through_the_configured_proxy_with_its_credentials():
    async def scenario():
        async with Scripted() as proxy:
            proxy.routes["/eset_upd/update.ver"] = file_answer(b"[x]")
            cfg = config("http://update.example.invalid/",
                         proxy=f"http://puser:proxy-Secret@127.0.0.1:{proxy.port}")
            async with HttpUpstream(cfg) as up:
                result = await up.fetch_index("http://update.example.invalid/eset_upd/update.ver", None, 100)
            assert result.body == b"[x]"
            seen = proxy.requests_to("/eset_upd/update.ver")[0].headers
            assert seen["Host"] == "update.example.invalid"
            assert seen["Authorization"] == f"Basic {BASIC}"
            assert seen["Proxy-Authorization"] == "Basic " + base64.b64encode(b"puser:proxy-Secret").decode()
    run(scenario)


def test_unreachable_proxy_is_named_without_its_password(free_port):
    async def scenario():
        cfg = config("http://update.example.invalid/", retries=0,
                     proxy=f"http://puser:proxy-Secret@127.0.0.1:{free_port}")
        async with HttpUpstream(cfg) as up:
            message = await expect(UpstreamError, up.fetch_index(
                "http://update.example.invalid/eset_upd/update.ver", None, 100))
        assert f"proxy 127.0.0.1:{free_port}" in message and "[upstream] proxy" in message
        assert "proxy-Secret" not in message
    run(scenario)
