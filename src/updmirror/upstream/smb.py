"""Fetching from an SMB share (`\\\\server\\share\\path`): a mirror published to a shared folder.

The same contract as over HTTP and from a folder: bounded reads, resumable
downloads into a `.part` file, validators (size and modification time) that
make an unchanged index cost one open, retries with backoff for what another
attempt may cure, nothing outside the configured folder ever read.

smbprotocol's calls block, so each runs in a worker thread under a time
limit; when one runs out, the connection is closed, which wakes the thread
and makes the next attempt reconnect. One connection, session and tree
connect per fetcher, opened on first use. smbprotocol keeps one receiving
thread per connection: a fetcher per share, not per file.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from smbprotocol import exceptions as smb_errors
from smbprotocol.connection import Connection
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    FileAttributes,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    Open,
    ShareAccess,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from updmirror import redact
from updmirror.errors import ConfigError
from updmirror.httpfacts import http_date
from updmirror.unc import ShareLocation, parse_account, parse_share
from updmirror.upstream.backoff import BACKOFF_BASE
from updmirror.upstream.base import IndexResult, PartialFile, Upstream, check_bounds
from updmirror.upstream.errors import (
    AuthError,
    NotFoundError,
    StalledError,
    TooLargeError,
    UpstreamError,
    first_line,
)
from updmirror.upstream.pace import Pace
from updmirror.upstream.retry import Transient, retrying
from updmirror.upstream.settings import UpstreamConfig

log = logging.getLogger(__name__)

#: Bytes asked per SMB2 READ: one multi-credit read each (../shared/tools/samba-check.py
#: measured this the fastest way to read a file with smbprotocol).
CHUNK_SIZE = 1024 * 1024
#: Time allowed for the polite goodbye (logoff, tree disconnect) when closing.
CLOSE_TIMEOUT = 5.0

T = TypeVar("T")
_NOT_FOUND = (smb_errors.ObjectNameNotFound, smb_errors.ObjectPathNotFound, smb_errors.NoSuchFile,
              smb_errors.ObjectNameInvalid)


class _Link:
    """One live connection to the server: transport, authenticated session, tree connect."""

    def __init__(self, connection: Connection, session: Session, tree: TreeConnect):
        self.connection = connection
        self.session = session
        self.tree = tree


class SmbUpstream(Upstream):
    def __init__(self, cfg: UpstreamConfig, *, backoff_base: float = BACKOFF_BASE):
        super().__init__()
        self.cfg = cfg
        self.backoff_base = backoff_base
        self.location: ShareLocation = parse_share(cfg.url)
        if not cfg.username:
            raise ConfigError(f"{self.location}: a share needs an account (DOMAIN\\User or "
                              "WORKGROUP\\User) and its password")
        self.account = parse_account(cfg.username)
        self._password = cfg.password or ""
        self._scrub = redact.Scrubber([cfg.password])   # smbprotocol's messages, before ours carry them
        self._link: _Link | None = None
        self._connecting = asyncio.Lock()

    # -- the two operations ------------------------------------------------

    async def fetch_index(self, url: str, validators: dict[str, str] | None,
                          max_bytes: int, *, user_agent: str | None = None) -> IndexResult:
        name, shown = self._locate(url)

        async def attempt() -> IndexResult:
            self.stats.requests += 1
            link, handle = await self._open(name, shown)
            try:
                size, fresh = handle.end_of_file, _validators(handle)
                if validators and validators.get("etag") == fresh["etag"]:
                    return IndexResult(False, b"", fresh, shown)
                if size > max_bytes:
                    raise TooLargeError(f"{shown}: the index is {size} bytes, more than the limit "
                                        f"of {max_bytes} bytes")
                body = bytearray()
                async for chunk in self._chunks(link, handle, 0, size, shown):
                    self.stats.bytes += len(chunk)
                    body += chunk
                return IndexResult(True, bytes(body), fresh, shown)
            finally:
                await self._close_handle(handle)

        return await retrying(attempt, retries=self.cfg.retries, backoff_base=self.backoff_base,
                              stats=self.stats, log=log)

    async def download(self, url: str, partial: Path, expected_size: int | None, max_bytes: int,
                       on_bytes: Callable[[int], None] | None = None) -> Path:
        name, shown = self._locate(url)
        limit = check_bounds(shown, expected_size, max_bytes)

        async def attempt() -> Path:
            self.stats.requests += 1
            link, handle = await self._open(name, shown)
            try:
                size = handle.end_of_file
                if expected_size is not None and size != expected_size:
                    raise UpstreamError(f"{shown}: the file is {size} bytes, the index says "
                                        f"{expected_size}; the share may be mid-update, try again later")
                if size > limit:
                    raise TooLargeError(f"{shown}: the file is {size} bytes, more than the limit "
                                        f"of {limit} bytes")
                with PartialFile(partial, shown, limit, expected_size, on_bytes, self.stats) as part:
                    if part.length > size:
                        part.restart()
                    async for chunk in self._chunks(link, handle, part.length, size, shown):
                        part.write(chunk)
                    return part.check_complete()
            finally:
                await self._close_handle(handle)

        return await retrying(attempt, retries=self.cfg.retries, backoff_base=self.backoff_base,
                              stats=self.stats, log=log)

    async def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(link.connection.disconnect, True, CLOSE_TIMEOUT),
                                       CLOSE_TIMEOUT * 2)
            except (TimeoutError, smb_errors.SMBException, OSError):
                _drop(link)

    # -- paths ---------------------------------------------------------------

    def _locate(self, url: str) -> tuple[str, str]:
        """The file's name inside the share (backslashes) and its UNC path for messages.

        `url` is an smb:// URL of this share under the configured folder, or a
        path relative to that folder. A `..`, or any other share, is refused.
        """
        base = self.location
        if url.lower().startswith("smb://"):
            parts = urlsplit(url)
            names = [unquote(p) for p in parts.path.split("/") if p]
            same_server = ((parts.hostname or "").lower() == base.host.lower()
                           and (parts.port or 445) == base.port)
            if not same_server or not names or names[0].lower() != base.share.lower():
                raise UpstreamError(f"{url}: not on the share {base}")
            names = names[1:]
            folders = [f.lower() for f in base.folders]
            if [n.lower() for n in names[:len(folders)]] != folders:
                raise UpstreamError(f"{url}: outside the folder {base}")
            names = names[len(folders):]
        else:
            names = [p for p in url.replace("\\", "/").split("/") if p]
        shown = "\\".join((base.unc, *names))
        for n in names:
            if n in (".", "..") or any(c in n for c in '\x00:*?"<>|'):
                raise UpstreamError(f"{shown}: '{n}' is not followed in a path on a share")
        if not names:
            raise UpstreamError(f"{url}: names no file on {base}")
        return "\\".join((*base.folders, *names)), shown

    # -- the connection ------------------------------------------------------

    async def _connection(self, shown: str) -> _Link:
        async with self._connecting:
            if self._link is None or not self._link.connection.transport.connected:
                limit = self.cfg.connect_timeout + self.cfg.stall_timeout
                self._link = await self._blocking(self._connect, limit, shown, "connecting")
            return self._link

    def _connect(self) -> _Link:
        where = self.location
        connection = Connection(uuid.uuid4(), where.host, where.port, require_signing=True)
        connection.connect(timeout=self.cfg.connect_timeout)
        try:
            # Encryption is the server's choice: a NAS that cannot do SMB3 encryption still works.
            session = Session(connection, str(self.account), self._password, require_encryption=False)
            session.connect()
            tree = TreeConnect(session, f"\\\\{where.host}\\{where.share}")
            tree.connect()
        except BaseException:
            connection.disconnect(False)
            raise
        return _Link(connection, session, tree)

    async def _open(self, name: str, shown: str) -> tuple[_Link, Open]:
        link = await self._connection(shown)

        def create() -> Open:
            handle = Open(link.tree, name)
            handle.create(ImpersonationLevel.Impersonation,
                          FilePipePrinterAccessMask.FILE_READ_DATA | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES,
                          FileAttributes.FILE_ATTRIBUTE_NORMAL,
                          # Let the publisher replace files while we read (it renames new ones in).
                          ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE,
                          CreateDisposition.FILE_OPEN, CreateOptions.FILE_NON_DIRECTORY_FILE)
            return handle

        return link, await self._blocking(create, self.cfg.stall_timeout, shown, "opening", link)

    async def _chunks(self, link: _Link, handle: Open, start: int, end: int,
                      shown: str) -> AsyncIterator[bytes]:
        """The file's bytes start..end-1, each read time-limited, under the same watchdog as HTTP."""
        loop = asyncio.get_running_loop()
        pace = Pace(self.cfg.stall_timeout, self.cfg.min_speed, loop.time())
        step = min(CHUNK_SIZE, link.connection.max_read_size or CHUNK_SIZE)
        offset = start
        while offset < end:
            length = min(step, end - offset)
            chunk = await self._blocking(lambda o=offset, n=length: _read(link, handle, o, n),
                                         self.cfg.stall_timeout, shown, "reading", link)
            if not chunk:
                raise Transient(UpstreamError(f"{shown}: the file ended after {offset} bytes of {end}; "
                                              "it may be being replaced"))
            offset += len(chunk)
            yield chunk
            problem = pace.feed(len(chunk), loop.time())
            if problem:
                _drop(link)
                raise Transient(StalledError(f"{shown}: {problem}; gave up the connection"))

    async def _close_handle(self, handle: Open) -> None:
        if not handle.connection.transport.connected:
            return
        try:
            await asyncio.wait_for(asyncio.to_thread(handle.close, False), CLOSE_TIMEOUT)
        except (TimeoutError, smb_errors.SMBException, OSError):
            pass   # the server forgets the handle with the connection

    async def _blocking(self, call: Callable[[], T], limit: float, shown: str, doing: str,
                        link: _Link | None = None) -> T:
        """`call()` in a worker thread within `limit` seconds, its errors in our words."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(call), limit)
        except TimeoutError:
            self._forget(link)
            raise Transient(StalledError(f"{shown}: no answer from {self.location.host} for "
                                         f"{limit:g} s while {doing}")) from None
        except smb_errors.LogonFailure:
            self._forget(link)
            raise AuthError(f"the share refused the credentials of {self.account} for {shown} "
                            "(logon failure); check the account name and password") from None
        except smb_errors.SMBAuthenticationError as exc:
            self._forget(link)
            raise AuthError(f"{shown}: could not authenticate as {self.account} "
                            f"({self._scrub(first_line(exc))})") from None
        except smb_errors.AccessDenied:
            raise AuthError(f"{shown}: access denied for {self.account}; check that the share "
                            "allows this account to read") from None
        except smb_errors.BadNetworkName:
            self._forget(link)
            raise NotFoundError(f"{shown}: the server {self.location.host} has no share named "
                                f"{self.location.share!r}") from None
        except _NOT_FOUND:
            raise NotFoundError(f"{shown}: no such file on the share") from None
        except (smb_errors.SMBException, OSError, ValueError) as exc:
            # ValueError: smbprotocol's own when a connection closed under it.
            self._forget(link)
            raise Transient(UpstreamError(f"{shown}: {doing} failed "
                                          f"({self._scrub(first_line(exc))})")) from None

    def _forget(self, link: _Link | None) -> None:
        """Drop a connection that failed, so that the next attempt makes a new one."""
        link = link or self._link
        if link is not None:
            _drop(link)
            if self._link is link:
                self._link = None


def _read(link: _Link, handle: Open, offset: int, length: int) -> bytes:
    """One SMB2 READ; the caller bounds its time (smbprotocol's own wait has no limit)."""
    message, unpack = handle.read(offset, length, send=False)
    request = link.connection.send(message, sid=link.session.session_id, tid=link.tree.tree_connect_id)
    return unpack(request)


def _drop(link: _Link) -> None:
    """Close the socket: wakes any thread waiting on it, ends smbprotocol's receiving thread."""
    try:
        link.connection.disconnect(False)
    except (smb_errors.SMBException, OSError):
        pass


def _validators(handle: Open) -> dict[str, str]:
    when: Any = handle.last_write_time
    stamp = when.timestamp() if hasattr(when, "timestamp") else float(when or 0)
    return {"etag": f'"{handle.end_of_file:x}-{int(stamp * 1_000_000):x}"',
            "last_modified": http_date(stamp)}
