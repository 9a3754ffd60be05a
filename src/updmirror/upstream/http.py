"""Fetching from the vendor's servers or an upper mirror over HTTP(S).

One aiohttp session per fetcher. Each request is one attempt; a failed attempt
that another attempt could cure (a dropped connection, a timeout, a 5xx, a
429, a body cut short) is retried with backoff, and a download's retry
continues from what the `.part` file already holds.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Awaitable, TypeVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp import hdrs

from updmirror import redact
from updmirror.errors import ConfigError
from updmirror.httpfacts import basic_authorization
from updmirror.upstream.backoff import BACKOFF_BASE, MAX_RETRY_AFTER, retry_after
from updmirror.upstream.base import IndexResult, PartialFile, Upstream, check_bounds
from updmirror.upstream.errors import AuthError, NotFoundError, StalledError, TooLargeError, UpstreamError
from updmirror.upstream.errors import first_line as _first_line
from updmirror.upstream.pace import Pace
from updmirror.upstream.retry import Transient as _Transient
from updmirror.upstream.retry import retrying
from updmirror.upstream.settings import DEFAULT_USER_AGENT, UpstreamConfig

log = logging.getLogger(__name__)

#: Bytes asked of the connection per read: memory per download stays about this size.
#: 1 MiB rather than 64 KiB: each read costs a trip through the event loop, the
#: stall watchdog and a file write, and the sync is CPU-bound on small machines
#: (bench/sync_initial.py measured 0.8 of the time with this and fsync off the loop).
CHUNK_SIZE = 1024 * 1024
#: A vendor or mirror needs one redirect, maybe two; more is a loop or a trap.
MAX_REDIRECTS = 5

T = TypeVar("T")
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)


class HttpUpstream(Upstream):
    def __init__(self, cfg: UpstreamConfig, *, backoff_base: float = BACKOFF_BASE,
                 max_retry_after: float = MAX_RETRY_AFTER, connector: aiohttp.BaseConnector | None = None):
        """`connector`: a connection pool shared with other fetchers (many clients in one
        process); it stays open when this fetcher closes. By default the fetcher has its own."""
        super().__init__()
        self.cfg = cfg
        self.backoff_base = backoff_base
        self.max_retry_after = max_retry_after
        base = urlsplit(cfg.url)
        # Credentials go only to the configured upstream and the hosts the index may name.
        self._trusted_hosts = {(base.hostname or "").lower(), *(h.lower() for h in cfg.allowed_hosts)}
        # aiohttp's own messages should hold no password; self._scrub makes sure of it.
        self._scrub = redact.Scrubber([cfg.password, redact.password_of(cfg.proxy)])
        self._authorization = None
        if cfg.username:
            if ":" in cfg.username:
                raise ConfigError("[upstream] username must not contain ':' (HTTP Basic "
                                  "authentication cannot carry it)")
            self._authorization = basic_authorization(cfg.username, cfg.password or "")
        # No `connect` timeout: that would also count the wait for a free slot of
        # the pool, which is normal when the sync queues more files than `parallel`.
        timeout = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=cfg.connect_timeout,
                                        sock_read=cfg.stall_timeout)
        self._session = aiohttp.ClientSession(
            connector=connector or aiohttp.TCPConnector(limit=cfg.parallel),
            connector_owner=connector is None,
            timeout=timeout,
            headers={hdrs.USER_AGENT: cfg.user_agent or DEFAULT_USER_AGENT},
            trust_env=False,
            read_bufsize=CHUNK_SIZE,
        )

    async def close(self) -> None:
        await self._session.close()

    # -- the two operations ------------------------------------------------

    async def fetch_index(self, url: str, validators: dict[str, str] | None,
                          max_bytes: int, *, user_agent: str | None = None) -> IndexResult:
        shown = self._check_url(url)
        validators = dict(validators or {})
        headers = {hdrs.USER_AGENT: user_agent} if user_agent else {}
        if validators.get("etag"):
            headers[hdrs.IF_NONE_MATCH] = validators["etag"]
        if validators.get("last_modified"):
            headers[hdrs.IF_MODIFIED_SINCE] = validators["last_modified"]

        async def attempt() -> IndexResult:
            async with self._get(url, shown, headers) as resp:
                if resp.status == 304:
                    if hdrs.IF_NONE_MATCH not in headers and hdrs.IF_MODIFIED_SINCE not in headers:
                        raise UpstreamError(f"{shown}: the upstream answered 304 Not Modified to a "
                                            "request that held no validators")
                    return IndexResult(False, b"", {**validators, **_validators(resp)}, shown)
                self._check_status(resp, shown)
                if resp.status != 200:
                    raise UpstreamError(f"{shown}: unexpected HTTP {resp.status} for an index")
                fresh = _validators(resp)
                if _same_version(validators, fresh):
                    # An upstream that ignores conditional requests still says it is unchanged.
                    return IndexResult(False, b"", fresh, shown)
                return IndexResult(True, await self._read_bounded(resp, shown, max_bytes, "index"), fresh,
                                   shown)

        return await self._retrying(shown, attempt)

    async def download(self, url: str, partial: Path, expected_size: int | None, max_bytes: int,
                       on_bytes: Callable[[int], None] | None = None) -> Path:
        shown = self._check_url(url)
        limit = check_bounds(shown, expected_size, max_bytes)

        async def attempt() -> Path:
            with PartialFile(partial, shown, limit, expected_size, on_bytes, self.stats) as part:
                offset = part.length
                headers = {hdrs.ACCEPT_ENCODING: "identity"}
                if offset:
                    headers[hdrs.RANGE] = f"bytes={offset}-"
                async with self._get(url, shown, headers) as resp:
                    if resp.status == 416 and offset:
                        return _range_not_satisfiable(part, shown)
                    self._check_status(resp, shown)
                    if resp.status == 200:
                        if offset:
                            part.restart()  # the upstream ignored the range: start over
                    elif resp.status == 206 and offset:
                        _check_content_range(resp, part, offset, shown)
                    else:
                        raise UpstreamError(f"{shown}: unexpected HTTP {resp.status} for a download")
                    length = _content_length(resp, shown)
                    if length is not None:
                        _check_length(part, part.length + length, shown)
                    received = await self._read_body(resp, shown, part.write)
                    _check_not_cut(received, length, shown)
                    if not part.complete:
                        # No Content-Length and the connection ended early: resume.
                        raise _Transient(UpstreamError(
                            f"{shown}: the body ended after {part.length} bytes, the index "
                            f"says {expected_size}"))
                    return part.check_complete()

        return await self._retrying(shown, attempt)

    # -- one attempt -------------------------------------------------------

    async def long_poll(self, url: str, wait: float, max_bytes: int) -> bytes:
        """One GET that the server may hold open for up to `wait` seconds
        (an upper mirror's announcements); its body, at most `max_bytes`.

        One attempt, no retries: the caller decides when to ask again. Raises
        the same errors as fetch_index (AuthError, NotFoundError, ...).
        """
        shown = self._check_url(url)
        timeout = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=self.cfg.connect_timeout,
                                        sock_read=wait + self.cfg.stall_timeout)
        try:
            async with self._get(url, shown, {}, timeout=timeout) as resp:
                self._check_status(resp, shown)
                return await self._read_bounded(resp, shown, max_bytes, "announcement")
        except _Transient as failure:
            raise failure.error from None

    def _check_url(self, url: str) -> str:
        shown = redact.url(url)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UpstreamError(f"{shown}: not an http:// or https:// URL")
        if parts.username or parts.password:
            raise UpstreamError(f"{shown}: the URL holds credentials; "
                                "give them as [upstream] username and password instead")
        return shown

    @asynccontextmanager
    async def _get(self, url: str, shown: str, headers: dict[str, str], *,
                   timeout: aiohttp.ClientTimeout | None = None) -> AsyncIterator[aiohttp.ClientResponse]:
        """One GET, with every client-side failure turned into an error that names the URL."""
        host = (urlsplit(url).hostname or "").lower()
        if self._authorization and host in self._trusted_hosts:
            # A per-request header, not session-wide auth: aiohttp removes it on a
            # redirect to another origin, while session auth would be added back.
            headers = {**headers, hdrs.AUTHORIZATION: self._authorization}
        self.stats.requests += 1
        try:
            extra = {"timeout": timeout} if timeout is not None else {}
            async with self._session.get(url, headers=headers, proxy=self.cfg.proxy,
                                         max_redirects=MAX_REDIRECTS, **extra) as resp:
                yield resp
        except aiohttp.TooManyRedirects:
            raise UpstreamError(f"{shown}: more than {MAX_REDIRECTS} redirects; "
                                "check [upstream] url") from None
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlRedirectClientError) as exc:
            raise UpstreamError(f"{shown}: redirected to an unusable URL "
                                f"({self._scrub(str(exc))})") from None
        except aiohttp.ClientSSLError as exc:
            raise UpstreamError(f"{shown}: TLS failed ({self._scrub(str(exc))}); "
                                "check the server's certificate") from None
        except aiohttp.ConnectionTimeoutError:
            raise _Transient(UpstreamError(
                f"{shown}: could not connect within {self.cfg.connect_timeout:g} s "
                "([upstream] connect_timeout)")) from None
        except (aiohttp.ServerTimeoutError, TimeoutError):
            raise _Transient(StalledError(
                f"{shown}: no data for {self.cfg.stall_timeout:g} s (stalled connection)")) from None
        except aiohttp.ClientPayloadError as exc:
            raise _Transient(UpstreamError(
                f"{shown}: the body was cut short ({self._scrub(_first_line(exc))})")) from None
        except aiohttp.ClientProxyConnectionError as exc:
            raise _Transient(UpstreamError(
                f"{shown}: cannot connect to the proxy {exc.host}:{exc.port} "
                f"({self._scrub(exc.strerror or str(exc.os_error))}); check [upstream] proxy")) from None
        except aiohttp.ClientConnectorError as exc:
            raise _Transient(UpstreamError(
                f"{shown}: cannot connect to {exc.host}:{exc.port} "
                f"({self._scrub(exc.strerror or str(exc.os_error))})")) from None
        except aiohttp.ClientError as exc:
            raise _Transient(UpstreamError(
                f"{shown}: connection failed ({self._scrub(_first_line(exc))})")) from None

    async def _read_bounded(self, resp: aiohttp.ClientResponse, shown: str, max_bytes: int, noun: str) -> bytes:
        """The whole body in memory (an index, an announcement), refused beyond `max_bytes`."""
        body = bytearray()
        length = _content_length(resp, shown)
        if length is not None and length > max_bytes:
            raise TooLargeError(f"{shown}: the {noun} is {length} bytes (Content-Length), "
                                f"more than the limit of {max_bytes} bytes")

        def keep(chunk: bytes) -> None:
            self.stats.bytes += len(chunk)
            if len(body) + len(chunk) > max_bytes:
                raise TooLargeError(f"{shown}: upstream sent more than the limit of "
                                    f"{max_bytes} bytes for an {noun}; refusing it")
            body.extend(chunk)

        received = await self._read_body(resp, shown, keep)
        _check_not_cut(received, length, shown)
        return bytes(body)

    async def _read_body(self, resp: aiohttp.ClientResponse, shown: str,
                         sink: Callable[[bytes], None]) -> int:
        """Feed the body to `sink` chunk by chunk under the watchdog; the bytes received."""
        loop = asyncio.get_running_loop()
        pace = Pace(self.cfg.stall_timeout, self.cfg.min_speed, loop.time())
        received = 0
        while True:
            watch = asyncio.timeout(pace.wait_limit(loop.time()))
            try:
                async with watch:
                    chunk = await resp.content.read(CHUNK_SIZE)
            except TimeoutError:
                if not watch.expired():
                    raise  # aiohttp's own read timeout: handled with the other client errors
                chunk = None
            if chunk == b"":
                return received
            if chunk:
                received += len(chunk)
                sink(chunk)
            problem = pace.feed(len(chunk or b""), loop.time())
            if problem:
                raise _Transient(StalledError(f"{shown}: {problem}; gave up the connection"))

    def _check_status(self, resp: aiohttp.ClientResponse, shown: str) -> None:
        """Raise for any status that is not a body (200, 206)."""
        status = resp.status
        if status in (200, 206):
            return
        if resp.history:
            # Credentials are not sent on to another host, so say where the answer came from.
            shown = f"{shown} (redirected to {redact.url(str(resp.url))})"
        if status in (401, 403):
            raise AuthError(f"upstream refused the credentials for {shown} (HTTP {status}); "
                            "check [upstream] username and password")
        if status in (404, 410):
            raise NotFoundError(f"{shown}: not found on the upstream (HTTP {status})")
        if status == 429 or status == 503:
            wait = retry_after(resp.headers.get(hdrs.RETRY_AFTER))
            if wait is not None and wait > self.max_retry_after:
                raise UpstreamError(f"{shown}: the upstream asks to wait {wait:.0f} s before "
                                    f"retrying (HTTP {status}, Retry-After), more than the "
                                    f"{self.max_retry_after:g} s this run waits; try later")
            raise _Transient(UpstreamError(f"{shown}: the upstream is busy (HTTP {status})"), wait)
        if status >= 500 or status == 408:
            raise _Transient(UpstreamError(f"{shown}: upstream server error (HTTP {status})"))
        raise UpstreamError(f"{shown}: the upstream answered HTTP {status} {resp.reason or ''}".rstrip())

    # -- retries -----------------------------------------------------------

    async def _retrying(self, shown: str, attempt: Callable[[], Awaitable[T]]) -> T:
        return await retrying(attempt, retries=self.cfg.retries, backoff_base=self.backoff_base,
                              stats=self.stats, log=log)


def _validators(resp: aiohttp.ClientResponse) -> dict[str, str]:
    found = {}
    if etag := resp.headers.get(hdrs.ETAG):
        found["etag"] = etag
    if modified := resp.headers.get(hdrs.LAST_MODIFIED):
        found["last_modified"] = modified
    return found


def _same_version(old: dict[str, str], new: dict[str, str]) -> bool:
    """Whether a 200 answer still names the version we hold (ETag first, else Last-Modified)."""
    if old.get("etag") and new.get("etag"):
        return old["etag"] == new["etag"] and not new["etag"].startswith("W/")
    if old.get("last_modified") and new.get("last_modified"):
        return old["last_modified"] == new["last_modified"]
    return False


def _content_length(resp: aiohttp.ClientResponse, shown: str) -> int | None:
    """The body's length on the wire when it is the file's length (not encoded); None otherwise."""
    if resp.headers.get(hdrs.CONTENT_ENCODING, "identity").lower() != "identity":
        return None
    value = resp.headers.get(hdrs.CONTENT_LENGTH)
    if value is None:
        return None
    if not value.strip().isdigit():
        raise UpstreamError(f"{shown}: the upstream sent a malformed Content-Length {value[:40]!r}")
    return int(value)


def _check_length(part: PartialFile, total: int, shown: str) -> None:
    """Refuse before reading when the announced length cannot be the file we want."""
    if part.expected_size is not None and total != part.expected_size:
        raise UpstreamError(f"{shown}: the upstream announces {total} bytes (Content-Length), "
                            f"the index says {part.expected_size}; the upstream may be "
                            "mid-update, try again later")
    if total > part.limit:
        raise TooLargeError(f"{shown}: the upstream announces {total} bytes (Content-Length), "
                            f"more than the limit of {part.limit} bytes")


def _check_not_cut(received: int, length: int | None, shown: str) -> None:
    if length is not None and received < length:
        raise _Transient(UpstreamError(f"{shown}: the body ended after {received} of "
                                       f"{length} bytes"))


def _check_content_range(resp: aiohttp.ClientResponse, part: PartialFile, offset: int,
                         shown: str) -> None:
    value = resp.headers.get(hdrs.CONTENT_RANGE, "")
    m = _CONTENT_RANGE.fullmatch(value.strip())
    total = None if not m or m.group(3) == "*" else int(m.group(3))
    if (not m or int(m.group(1)) != offset
            or (part.expected_size is not None and total is not None and total != part.expected_size)):
        # Not the rest of the file we hold the start of: begin again from byte 0.
        part.restart()
        raise _Transient(UpstreamError(f"{shown}: the upstream answered a resume from byte "
                                       f"{offset} with Content-Range {value[:60]!r}"))
    if resp.headers.get(hdrs.CONTENT_ENCODING, "identity").lower() != "identity":
        part.restart()
        raise _Transient(UpstreamError(f"{shown}: the upstream answered a resume with an "
                                       "encoded body; starting over"))


def _range_not_satisfiable(part: PartialFile, shown: str) -> Path:
    """416 to `Range: bytes=N-`: done when N is the whole file, otherwise start over."""
    if part.expected_size is not None and part.length == part.expected_size:
        return part.check_complete()
    held = part.length
    part.restart()
    raise _Transient(UpstreamError(f"{shown}: the upstream has no bytes past {held} (HTTP 416); "
                                   "starting the file over"))
