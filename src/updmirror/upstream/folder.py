"""Fetching from a folder: a mirror fed from a copied tree, a mounted share or removable media.

The same semantics as over HTTP, so the sync cannot tell the difference:
bounded reads, resumable downloads into a `.part` file, validators (size and
modification time) that make an unchanged index cost nothing.

URLs map onto the folder: `file:///root/eset_upd/update.ver` or a plain path
inside the root is taken as it is; any other path (a host-absolute one such as
`/eset_upd/x.nup`, `file:///eset_upd/x.nup`, or the path of an http:// URL)
is taken relative to the root. Nothing outside the root is ever read.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from updmirror.httpfacts import http_date
from updmirror.upstream.base import IndexResult, PartialFile, Upstream, check_bounds
from updmirror.upstream.errors import NotFoundError, TooLargeError, UpstreamError

#: Bytes read per step; a thread hop per step, so larger than over the network.
CHUNK_SIZE = 1024 * 1024


def folder_root(location: str | Path) -> Path | None:
    """The folder a `file://` URL or a plain path names; None for any other URL."""
    if isinstance(location, Path):
        return location
    parts = urlsplit(location)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            return None
        return Path(unquote(parts.path))
    if parts.scheme == "" or (len(parts.scheme) == 1 and os.name == "nt"):
        return Path(location)
    return None


class FolderUpstream(Upstream):
    def __init__(self, root: str | Path):
        super().__init__()
        found = folder_root(root)
        if found is None:
            raise UpstreamError(f"{root}: not a folder or file:// URL")
        self.root = found.expanduser().absolute()

    async def fetch_index(self, url: str, validators: dict[str, str] | None,
                          max_bytes: int, *, user_agent: str | None = None) -> IndexResult:
        path, shown = self._locate(url)
        self.stats.requests += 1
        st = await asyncio.to_thread(_stat, path, shown)
        fresh = {"etag": f'"{st.st_size:x}-{st.st_mtime_ns:x}"',
                 "last_modified": http_date(st.st_mtime)}
        if validators and validators.get("etag") == fresh["etag"]:
            return IndexResult(False, b"", fresh, shown)
        if st.st_size > max_bytes:
            raise TooLargeError(f"{shown}: the index is {st.st_size} bytes, more than the limit "
                                f"of {max_bytes} bytes")
        # One byte over the bound: a file that grew since the stat is refused too.
        body = await asyncio.to_thread(_read_at_most, path, shown, max_bytes + 1)
        self.stats.bytes += len(body)
        if len(body) > max_bytes:
            raise TooLargeError(f"{shown}: the index is more than the limit of {max_bytes} bytes")
        return IndexResult(True, body, fresh, shown)

    async def download(self, url: str, partial: Path, expected_size: int | None, max_bytes: int,
                       on_bytes: Callable[[int], None] | None = None) -> Path:
        path, shown = self._locate(url)
        limit = check_bounds(shown, expected_size, max_bytes)
        self.stats.requests += 1
        st = await asyncio.to_thread(_stat, path, shown)
        if expected_size is not None and st.st_size != expected_size:
            raise UpstreamError(f"{shown}: the file is {st.st_size} bytes, the index says "
                                f"{expected_size}; the folder may be mid-update, try again later")
        if st.st_size > limit:
            raise TooLargeError(f"{shown}: the file is {st.st_size} bytes, more than the limit "
                                f"of {limit} bytes")
        with PartialFile(partial, shown, limit, expected_size, on_bytes, self.stats) as part:
            if part.length > st.st_size:
                part.restart()
            source = await asyncio.to_thread(_open, path, shown)
            try:
                await asyncio.to_thread(source.seek, part.length)
                while chunk := await asyncio.to_thread(_read, source, shown):
                    part.write(chunk)
            finally:
                source.close()
            return part.check_complete()

    async def close(self) -> None:
        """Nothing to release: no file stays open between calls."""

    def _locate(self, url: str) -> tuple[Path, str]:
        """The file in the root a URL names, and how to show it in messages."""
        parts = urlsplit(url)
        raw = unquote(parts.path) if parts.scheme else url
        shown = url if parts.scheme else str(self.root / raw.lstrip("/"))
        candidate = Path(raw)
        if not (candidate.is_absolute() and candidate.is_relative_to(self.root)):
            candidate = self.root / raw.lstrip("/")
        if ".." in candidate.parts:
            raise UpstreamError(f"{shown}: '..' in a path is not followed")
        real_root = self.root.resolve()
        real = candidate.resolve()
        if not real.is_relative_to(real_root):
            raise UpstreamError(f"{shown}: leads outside the folder {self.root}")
        return real, shown


def _stat(path: Path, shown: str) -> os.stat_result:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise NotFoundError(f"{shown}: no such file in the upstream folder") from None
    except OSError as exc:
        raise UpstreamError(f"{shown}: cannot read ({exc.strerror})") from None
    if not path.is_file():
        raise NotFoundError(f"{shown}: not a regular file")
    return st


def _open(path: Path, shown: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise NotFoundError(f"{shown}: no such file in the upstream folder") from None
    except OSError as exc:
        raise UpstreamError(f"{shown}: cannot read ({exc.strerror})") from None


def _read(source: BinaryIO, shown: str) -> bytes:
    try:
        return source.read(CHUNK_SIZE)
    except OSError as exc:
        raise UpstreamError(f"{shown}: read failed ({exc.strerror})") from None


def _read_at_most(path: Path, shown: str, limit: int) -> bytes:
    with _open(path, shown) as f:
        try:
            return f.read(limit)
        except OSError as exc:
            raise UpstreamError(f"{shown}: read failed ({exc.strerror})") from None
