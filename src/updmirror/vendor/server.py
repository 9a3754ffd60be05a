"""The simulated vendor's HTTP server, with fault injection.

It serves `www/` like the vendor: HTTP Basic authentication, GET and HEAD,
Content-Length, Last-Modified and If-Modified-Since, single byte ranges
(what a resuming mirror asks for), optionally gzip (only to clients that
accept it) and RAR-wrapped indexes. No directory listings; nothing outside
`www/`; half-written files (`*.part`) are not there.

As a vendor product's own mirror (`product_mirror=True`, format page section
4) it serves a flat folder instead: `/update.ver` and `/dll/update.ver` are
chosen by the client's User-Agent among the per-product indexes
`www/<tree>/[dll/]update.ver`, and every other path is a file of the folder.

`VendorServer` runs in a thread of its own with its own event loop, so a
synchronous test can start it, talk to it over a real socket, and stop it.
Every delay and stream a fault makes is bounded in time and ends at once
when the server stops.
"""

from __future__ import annotations

import asyncio
import gzip
import hmac
import json
import os
import threading
import zlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from aiohttp import web

from updmirror.errors import FormatError, UnsafePathError
from updmirror.eset.modules import is_module_section, normalise_path
from updmirror.eset.trees import TREES, route
from updmirror.eset.updatever import UpdateVer
from updmirror.httpfacts import (
    DEFAULT_CONTENT_TYPE,
    RangeNotSatisfiable,
    basic_challenge,
    content_type,
    http_date,
    parse_basic,
    parse_http_date,
    parse_range,
)

from . import VendorError, rarwriter
from .faults import CONTROL_PATH, INDEX_KINDS, NUP_KINDS, Fault, FaultSet

CHUNK = 64 * 1024
FILE_CHUNK = 256 * 1024  # fewer thread hops when serving large files
REALM = "ESET Update"
#: Upper bounds on anything a fault makes the server do.
MAX_HOLD_SECONDS = 600.0
SLOW_MAX_SECONDS = 120.0
ENDLESS_MAX_SECONDS = 120.0
ENDLESS_DEFAULT_MIB = 256
#: Files larger than this are gzipped as a stream (chunked, no Content-Length).
GZIP_IN_MEMORY = 4 * 1024 * 1024
#: `file=` values that leave the repository or name another host, in every
#: spelling a mirror must refuse (the `escape` fault; its arg picks one).
ESCAPES = ("../../etc/passwd", "http://evil.example/x.nup", "/a/%2e%2e/b", "/a/..%2fb.nup",
           "..\\..\\x.nup", "/a/%252e%252e/b.nup", "/%c0%ae%c0%ae/x.nup", "/a/x.nup%00.txt",
           "file:///etc/passwd", "//evil.example/x.nup", "HTTP://EVIL.example/x.nup")

CAPTIVE_PORTAL = b"""<!DOCTYPE html>
<html><head><title>Network login</title></head>
<body><h1>Welcome to Guest Wi-Fi</h1>
<form method="post" action="/login"><input name="user"><input name="password" type="password">
<button>Log in</button></form></body></html>
"""


class Request(NamedTuple):
    method: str
    path: str
    status: int


@dataclass
class _Body:
    """What a response carries: bytes, or a span of a file with byte patches."""

    size: int
    data: bytes | None = None
    file: Path | None = None
    patches: dict[int, int] | None = None   # offset -> new byte value

    async def chunks(self, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes start..end-1, in chunks."""
        if self.data is not None:
            for at in range(start, end, CHUNK):
                yield self._patch(at, self.data[at:min(end, at + CHUNK)])
            return
        try:
            f = open(self.file, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return  # removed after the headers went out: the client sees a short body
        with f:
            f.seek(start)
            at = start
            while at < end:
                chunk = await asyncio.to_thread(f.read, min(FILE_CHUNK, end - at))
                if not chunk:
                    return  # shrank under us (a publish removed it): the client sees a short body
                yield self._patch(at, chunk)
                at += len(chunk)

    def _patch(self, at: int, chunk: bytes) -> bytes:
        if not self.patches:
            return chunk
        hits = {o - at: v for o, v in self.patches.items() if at <= o < at + len(chunk)}
        if not hits:
            return chunk
        b = bytearray(chunk)
        for o, v in hits.items():
            b[o] = v
        return bytes(b)


class VendorServer:
    """`www` served on host:port (0: any free port) with Basic authentication.

    `user=None` turns authentication off (for an upstream that has none);
    `product_mirror` serves `www` the way a vendor product's own mirror does.
    """

    def __init__(self, www: Path, user: str | None, password: str | None, host: str = "127.0.0.1",
                 port: int = 0, gzip: bool = False, rar_index: bool = False, control: bool = False,
                 product_mirror: bool = False) -> None:
        self.www = Path(www).resolve()
        if not self.www.is_dir():
            raise VendorError(f"{www} is not a folder; generate a repository first "
                              "('updmirror vendor generate --root DIR') and serve DIR")
        self.host = host
        self.port = port
        self.gzip = gzip
        self.rar_index = rar_index
        self.control = control
        self.product_mirror = product_mirror
        self._credentials = f"{user}:{password}".encode() if user is not None else None
        self.faults = FaultSet()
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None

    # -- life cycle -------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> VendorServer:
        if self._thread:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start())
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name=f"vendor-server-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise VendorError("the simulated vendor server did not start within 30 s")
        if failure:
            self._thread = None
            exc = failure[0]
            raise VendorError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        return self

    async def _start(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        if not self._thread or not self._loop:
            return
        loop = self._loop

        async def shutdown() -> None:
            self._stopping.set()
            await self._runner.cleanup()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=15)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(timeout=15)
            self._thread = None

    def __enter__(self) -> VendorServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what tests look at -------------------------------------------------
    def set_faults(self, faults: Iterable[Fault]) -> None:
        self.faults.set(list(faults))

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def count(self, path: str | None = None, method: str | None = None, status: int | None = None) -> int:
        """How many requests were made, for a path (no leading slash needed), method, status."""
        want = None if path is None else "/" + path.lstrip("/")
        return sum(1 for r in self.requests
                   if (want is None or r.path == want) and (method is None or r.method == method)
                   and (status is None or r.status == status))

    def reset_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, request: web.Request, status: int) -> None:
        with self._lock:
            self._requests.append(Request(request.method, request.path, status))

    # -- handling -----------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.control and request.path == CONTROL_PATH:
            return await self._control(request)
        resp = await self._respond(request)
        return resp

    async def _respond(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return self._simple(request, 405, headers={"Allow": "GET, HEAD"})
        if not self._authorised(request):
            return self._simple(request, 401, headers={"WWW-Authenticate": basic_challenge(REALM, utf8=False)})
        rel = _safe_relative(request.raw_path)
        faults = self.faults.take(rel or request.path.lstrip("/"))
        kinds = {f.kind: f for f in faults}
        if "status" in kinds:
            return self._status_fault(request, kinds["status"])
        if "captive_portal" in kinds:
            return self._captive(request)
        if self.product_mirror:
            rel = self._product_path(rel, request.headers.get("User-Agent"))
        target = self._file(rel)
        if target is None:
            return self._simple(request, 404)
        if "endless" in kinds:
            return await self._endless(request, kinds["endless"])
        try:
            stat = target.stat()
            body = await self._body(target, stat.st_size, kinds)
        except FileNotFoundError:
            return self._simple(request, 404)  # a publish removed it a moment ago
        return await self._send(request, body, stat.st_mtime, target.name, kinds)

    def _authorised(self, request: web.Request) -> bool:
        if self._credentials is None:
            return True
        given = parse_basic(request.headers.get("Authorization"))
        if given is None:
            return False
        return hmac.compare_digest(":".join(given).encode(), self._credentials)

    def _product_path(self, rel: str | None, agent: str | None) -> str | None:
        """Where a product's mirror finds a request: the index of the agent's
        tree for `update.ver` / `dll/update.ver`, the folder's file otherwise."""
        if not rel or rel.split("/", 1)[0] in TREES:
            return None    # the per-product indexes are reached through the agent only
        if rel in ("update.ver", "dll/update.ver"):
            trees = [t for t in TREES if (self.www / t / rel).is_file()]
            chosen = route(agent, trees) if trees else None
            if chosen:
                return f"{chosen}/{rel}"
        return rel

    def _file(self, rel: str | None) -> Path | None:
        if not rel or rel.endswith(".part"):
            return None
        target = (self.www / rel).resolve()
        if self.www not in target.parents or not target.is_file():
            return None
        return target

    async def _body(self, target: Path, size: int, kinds: dict[str, Fault]) -> _Body:
        if target.name == "update.ver":
            data = await asyncio.to_thread(target.read_bytes)
            data = _index_faults(data, kinds, str(target))
            if self.rar_index:
                data = rarwriter.write_stored("update.ver", data, target.stat().st_mtime)
            return _Body(len(data), data=data)
        patches = {}
        if NUP_KINDS & kinds.keys():
            patches = await asyncio.to_thread(_nup_patches, target, "bad_crc" in kinds, "bad_signature" in kinds)
        return _Body(size, file=target, patches=patches)

    async def _send(self, request: web.Request, body: _Body, mtime: float, name: str,
                    kinds: dict[str, Fault]) -> web.StreamResponse:
        headers = {
            "Last-Modified": http_date(int(mtime)),
            "Accept-Ranges": "bytes",
            "Content-Type": content_type(name),
        }
        vary = ["User-Agent"] if self.product_mirror and name == "update.ver" else []
        if _not_modified_since(request, mtime):
            return self._simple(request, 304, headers=headers, body=False)
        start, end = 0, body.size
        status = 200
        range_header = request.headers.get("Range")
        if range_header:
            try:
                parsed = parse_range(range_header, body.size)
            except RangeNotSatisfiable:
                headers["Content-Range"] = f"bytes */{body.size}"
                return self._simple(request, 416, headers=headers)
            if parsed is not None:
                first, last = parsed            # inclusive, as Content-Range says it
                start, end = first, last + 1
                status = 206
                headers["Content-Range"] = f"bytes {first}-{last}/{body.size}"
        encode = (self.gzip and status == 200 and "gzip" in request.headers.get("Accept-Encoding", "").lower()
                  and not ({"truncate", "stall", "slow"} & kinds.keys()))
        resp = web.StreamResponse(status=status, headers=headers)
        if encode:
            resp.headers["Content-Encoding"] = "gzip"
            vary.append("Accept-Encoding")
            if body.size <= GZIP_IN_MEMORY:
                data = gzip.compress(b"".join([c async for c in body.chunks(0, body.size)]), mtime=0)
                body, start, end = _Body(len(data), data=data), 0, len(data)
                resp.content_length = len(data)
            # else: streamed, chunked, no Content-Length
        else:
            resp.content_length = end - start
        if vary:
            resp.headers["Vary"] = ", ".join(vary)
        self._record(request, status)
        await resp.prepare(request)
        if request.method == "HEAD":
            return resp
        if encode and resp.content_length is None:
            return await self._stream_gzip(request, resp, body)
        if "truncate" in kinds:
            send = int(kinds["truncate"].number((end - start) // 2))
            return await self._cut(request, resp, body, start, min(end, start + max(0, send)))
        if "stall" in kinds:
            return await self._stall(request, resp, body, start, end, kinds["stall"])
        if "slow" in kinds:
            return await self._slow(request, resp, body, start, end, kinds["slow"])
        async for chunk in body.chunks(start, end):
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    # -- faults -------------------------------------------------------------
    def _status_fault(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        parts = str(fault.arg if fault.arg is not None else "500").split(",")
        try:
            code = int(parts[0])
            retry = int(parts[1]) if len(parts) > 1 else 1
        except ValueError:
            code, retry = 500, 1
        headers = {"Retry-After": str(retry)} if code in (429, 503) else {}
        if code == 401:
            headers["WWW-Authenticate"] = basic_challenge(REALM, utf8=False)
        return self._simple(request, code, headers=headers)

    def _captive(self, request: web.Request) -> web.StreamResponse:
        self._record(request, 200)
        return web.Response(status=200, body=CAPTIVE_PORTAL, content_type="text/html")

    async def _endless(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        cap = int(fault.number(ENDLESS_DEFAULT_MIB) * 1024 * 1024)
        resp = web.StreamResponse(status=200, headers={"Content-Type": DEFAULT_CONTENT_TYPE})
        resp.enable_chunked_encoding()
        self._record(request, 200)
        await resp.prepare(request)
        if request.method == "HEAD":
            return resp
        chunk = os.urandom(CHUNK)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ENDLESS_MAX_SECONDS
        sent = 0
        while sent < cap and loop.time() < deadline and not self._stopping.is_set():
            await resp.write(chunk)
            sent += len(chunk)
        return self._abort(request, resp)

    async def _cut(self, request, resp, body: _Body, start: int, stop: int) -> web.StreamResponse:
        async for chunk in body.chunks(start, stop):
            await resp.write(chunk)
        return self._abort(request, resp)

    async def _stall(self, request, resp, body: _Body, start: int, end: int, fault: Fault) -> web.StreamResponse:
        hold = min(MAX_HOLD_SECONDS, fault.number(30.0))
        part = start + min(1024, (end - start) // 2)
        async for chunk in body.chunks(start, part):
            await resp.write(chunk)
        await self._sleep(hold)
        return self._abort(request, resp)

    async def _slow(self, request, resp, body: _Body, start: int, end: int, fault: Fault) -> web.StreamResponse:
        rate = max(1.0, fault.number(2048.0))
        tick = 0.1
        step = max(1, int(rate * tick))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SLOW_MAX_SECONDS
        async for chunk in body.chunks(start, end):
            for at in range(0, len(chunk), step):
                if loop.time() > deadline or self._stopping.is_set():
                    return self._abort(request, resp)
                await resp.write(chunk[at:at + step])
                await self._sleep(tick)
        await resp.write_eof()
        return resp

    async def _stream_gzip(self, request, resp, body: _Body) -> web.StreamResponse:
        z = zlib.compressobj(6, zlib.DEFLATED, 31)
        async for chunk in body.chunks(0, body.size):
            out = z.compress(chunk)
            if out:
                await resp.write(out)
        await resp.write(z.flush())
        await resp.write_eof()
        return resp

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass

    @staticmethod
    def _abort(request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
        # Close without finishing the body: the client sees a short read.
        resp.force_close()
        if request.transport is not None:
            request.transport.close()
        return resp

    def _simple(self, request: web.Request, status: int, headers: dict | None = None,
                body: bool = True) -> web.StreamResponse:
        self._record(request, status)
        text = None
        if body and status >= 400:
            text = f"{status} {web.Response(status=status).reason}\n"
        return web.Response(status=status, headers=headers, text=text)

    # -- control endpoint ---------------------------------------------------
    async def _control(self, request: web.Request) -> web.StreamResponse:
        peer = request.remote or ""
        if peer not in ("127.0.0.1", "::1"):
            return self._simple(request, 403)
        if request.method == "GET":
            return web.json_response({"faults": [f.to_json() for f in self.faults.list()],
                                      "requests": len(self.requests)})
        if request.method not in ("POST", "PUT"):
            return self._simple(request, 405, headers={"Allow": "GET, POST"})
        try:
            raw = await request.json()
            items = raw.get("faults", []) if isinstance(raw, dict) else raw
            faults = [Fault.from_json(item) for item in items]
        except (ValueError, VendorError, AttributeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.set_faults(faults)
        if isinstance(raw, dict) and raw.get("reset_requests"):
            self.reset_requests()
        return web.json_response({"faults": [f.to_json() for f in faults]})


# -- pure helpers --------------------------------------------------------------
def _safe_relative(raw_path: str) -> str | None:
    """The request path as a relative path inside www, or None if it could leave it.

    The checks are the mirror's own (`normalise_path`), so the simulated vendor
    refuses exactly the paths a synced index could not name.
    """
    path = raw_path.split("?", 1)[0]
    if not path.startswith("/"):
        return None  # absolute-form or garbage; normalise_path would make it look relative
    try:
        return normalise_path(path, "request")[1:]
    except UnsafePathError:
        return None


def _not_modified_since(request: web.Request, mtime: float) -> bool:
    value = request.headers.get("If-Modified-Since")
    if not value:
        return False
    since = parse_http_date(value)
    return since is not None and int(mtime) <= since


def _index_faults(data: bytes, kinds: dict[str, Fault], source: str) -> bytes:
    if not (INDEX_KINDS & kinds.keys()):
        return data
    try:
        doc = UpdateVer.parse(data, source)
    except FormatError:
        return data
    mods = [s for s in doc.sections if is_module_section(s)]
    if "wrong_size" in kinds:
        how_many = int(kinds["wrong_size"].number(3))
        for s in [s for s in mods if "size" in s][:how_many]:
            s.set("size", str(int(s["size"]) + 17))
    if "escape" in kinds:
        arg = kinds["escape"].arg
        spellings = ESCAPES if arg in (None, "") else (ESCAPES[int(float(arg)) % len(ESCAPES)],)
        # From the end, so a wrong_size fault and this one hit different sections.
        for s, target in zip(reversed(mods), spellings, strict=False):
            s.set("file", target)
    if "shrink" in kinds:
        keep = max(1, round(len(mods) * kinds["shrink"].number(10) / 100))
        dropped = {id(s) for s in mods[keep:]}
        doc.sections = [s for s in doc.sections if id(s) not in dropped]
    data = doc.to_bytes()
    if "pad" in kinds:
        size = int(kinds["pad"].number(17) * 1024 * 1024)
        line = b"; padding" + b"." * 100 + b"\r\n"
        data += line * max(0, (size - len(data)) // len(line) + 1)
    return data


def _nup_patches(path: Path, crc: bool, signature: bool) -> dict[int, int]:
    """Byte changes that break a .nup's inner CRC or its [update_info] text."""
    with open(path, "rb") as f:
        head = f.read(256 * 1024)
    patches: dict[int, int] = {}
    if crc:
        mark = head.find(b"[update_data]\r\n\x1a\x00")
        if mark >= 0:
            at = mark + len(b"[update_data]\r\n\x1a\x00") + 10
            if at < len(head):
                patches[at] = head[at] ^ 0xFF
    if signature:
        # A digit of version= becomes another digit: the text still parses,
        # only the signature over it no longer holds.
        mark = head.find(b"\r\nversion=")
        if mark >= 0:
            at = mark + len(b"\r\nversion=")
            patches[at] = head[at] ^ 0x01
    return patches


def control_request(url: str, faults: list[Fault], reset_requests: bool = False, timeout: float = 10) -> dict:
    """Set the faults of a running `vendor serve --control` (for subprocess tests)."""
    import urllib.request

    body = json.dumps({"faults": [f.to_json() for f in faults], "reset_requests": reset_requests}).encode()
    req = urllib.request.Request(url.rstrip("/") + CONTROL_PATH, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback test tool
        return json.loads(resp.read())
