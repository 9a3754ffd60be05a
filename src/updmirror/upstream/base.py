"""The one fetcher interface the sync talks to, and what every fetcher shares.

A fetcher does two things: read an index (small, conditional, into memory)
and download a file (large, resumable, streamed to a `.part` file). Both are
bounded: an upstream that sends more than it should is refused, never allowed
to fill the memory or the disk.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from updmirror.upstream.errors import TooLargeError, UpstreamError


@dataclass(frozen=True)
class IndexResult:
    #: False: the upstream answered 304 (or its validators match); `body` is then b"".
    changed: bool
    #: The decoded body (Content-Encoding undone), at most max_bytes long.
    body: bytes
    #: {"etag": ..., "last_modified": ...}, whichever the upstream gave, to send next time.
    validators: dict[str, str]
    #: The URL without credentials, for messages.
    url: str


@dataclass
class UpstreamStats:
    """Counters for the sync's summary: requests sent, body bytes received, retries made."""

    requests: int = 0
    bytes: int = 0
    retries: int = 0


class Upstream(ABC):
    """Where the mirror's files come from: the vendor, an upper mirror or a folder."""

    def __init__(self) -> None:
        self.stats = UpstreamStats()

    @abstractmethod
    async def fetch_index(self, url: str, validators: dict[str, str] | None,
                          max_bytes: int, *, user_agent: str | None = None) -> IndexResult:
        """Fetch an index, conditionally when `validators` are given.

        `user_agent`: the one to send for this index (a product's own mirror
        chooses the index by it); fetchers without such a header ignore it.

        Raises AuthError, NotFoundError, TooLargeError (a body over max_bytes),
        StalledError, or UpstreamError for anything else, after retries.
        """

    @abstractmethod
    async def download(self, url: str, partial: Path, expected_size: int | None, max_bytes: int,
                       on_bytes: Callable[[int], None] | None = None) -> Path:
        """Stream `url` into `partial`, resuming from its current length; return `partial`.

        The body is refused (TooLargeError) when longer than max_bytes or than
        expected_size; when expected_size is given, the result is exactly that
        long. `on_bytes(n)` is called as bytes arrive (n: bytes in this chunk,
        never negative): bytes already in `partial` before the call are not
        reported, and bytes thrown away when the upstream makes a resume start
        over are not taken back. Raises like fetch_index.
        """

    @abstractmethod
    async def close(self) -> None:
        """Release connections; the fetcher is not used afterwards."""

    async def __aenter__(self) -> Upstream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def check_bounds(shown_url: str, expected_size: int | None, max_bytes: int) -> int:
    """The most bytes a download may have: the index's size, and never over max_bytes."""
    if max_bytes < 0:
        raise ValueError("max_bytes must not be negative")
    if expected_size is None:
        return max_bytes
    if expected_size < 0:
        raise ValueError("expected_size must not be negative")
    if expected_size > max_bytes:
        raise TooLargeError(f"{shown_url}: the index gives a size of {expected_size} bytes, "
                            f"more than the limit of {max_bytes} bytes; not downloading it")
    return expected_size


class PartialFile:
    """The `.part` file a download appends to, with the size bound enforced as bytes arrive.

    Use as a context manager around one attempt. Bytes go straight to disk
    chunk by chunk, so memory stays at one chunk whatever the file's size.
    Writes are synchronous: a local append of one chunk is cheap, and a thread
    hop per chunk would cost more than it saves.
    """

    def __init__(self, path: Path, shown_url: str, limit: int, expected_size: int | None,
                 on_bytes: Callable[[int], None] | None, stats: UpstreamStats):
        self.path = path
        self.shown_url = shown_url
        self.limit = limit
        self.expected_size = expected_size
        self.on_bytes = on_bytes
        self.stats = stats
        self._file: BinaryIO | None = None
        self.length = 0

    def __enter__(self) -> PartialFile:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")
        self.length = self._file.tell()
        if self.length > self.limit:
            # Longer than the file can be: left by another version of it, useless.
            self.restart()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def restart(self) -> None:
        """Throw away what is there, so the next write starts the file from byte 0."""
        assert self._file is not None
        self._file.truncate(0)
        self.length = 0

    def discard(self) -> None:
        """Remove the file: its bytes cannot be trusted as a prefix of the right file."""
        self.__exit__()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.length = 0

    def too_large(self) -> TooLargeError:
        what = (f"the index's size of {self.expected_size} bytes" if self.limit == self.expected_size
                else f"the limit of {self.limit} bytes")
        return TooLargeError(f"{self.shown_url}: upstream sent more than {what}; refusing the file")

    def write(self, chunk: bytes) -> None:
        """Append a chunk, or refuse it (and drop the file) when it would pass the bound."""
        if not chunk:
            return
        self.stats.bytes += len(chunk)
        if self.length + len(chunk) > self.limit:
            self.discard()
            raise self.too_large()
        assert self._file is not None
        self._file.write(chunk)
        self.length += len(chunk)
        if self.on_bytes is not None:
            self.on_bytes(len(chunk))

    @property
    def complete(self) -> bool:
        return self.expected_size is None or self.length == self.expected_size

    def check_complete(self) -> Path:
        """The path when the file has its expected size; otherwise an UpstreamError."""
        if not self.complete:
            raise UpstreamError(f"{self.shown_url}: the body ended after {self.length} bytes, "
                                f"the index says {self.expected_size}")
        if self._file is not None:
            self._file.flush()
        return self.path
