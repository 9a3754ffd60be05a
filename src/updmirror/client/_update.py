"""One update of DIR from sources in priority order, as an endpoint does it.

For each source in turn: read the tree's index with the endpoint's
User-Agent, check it (parses, lists modules for this platform, not older
than what DIR holds), plan from what DIR holds, download and verify each
file (size, inner size and CRC, signature by a pinned key), install in one
step. Anything that goes wrong with a source (down, refused credentials, a
broken, truncated or older index, a file that fails) moves on to the next,
keeping the files already verified: they are the same files whoever serves
them. DIR changes only when a source succeeds.

Sources are not compared with each other: the first source, in priority
order, that serves an index not older than DIR is the one used, even if a
later one is newer. Asking every mirror at every check would multiply the
load on the secondaries, which exist for when the primary fails; a source
that is merely behind is caught up by its own sync.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiohttp

from updmirror.errors import ConfigError, FormatError
from updmirror.eset import nup
from updmirror.eset.modules import Module, database_version, modules
from updmirror.eset.trees import TREES, user_agent
from updmirror.eset.updatever import MAX_INDEX_BYTES, UpdateVer
from updmirror.upstream import (
    AuthError,
    NotFoundError,
    TooLargeError,
    Upstream,
    UpstreamConfig,
    UpstreamError,
)
from updmirror.upstream.backoff import BACKOFF_BASE

from ._errors import DestinationError, SourceFailure, UpdateFailed
from ._install import Destination, Installed
from ._plan import module_key, modules_for, plan_update
from ._sources import Source

log = logging.getLogger("updmirror.client")

#: A module file whose index gives no size is still bounded.
MAX_FILE_BYTES = 1 << 30
#: What modules of a share resolve against: urljoin does not know smb://, and the
#: file's place in the share is all that matters (a share's index cannot send us elsewhere).
_SHARE_BASE = "file:///share/"
PLATFORMS = ("x86", "x64", "arm64")
#: How many parsed indexes a Client keeps (a few trees x platforms x languages).
PARSED_INDEXES = 16


@dataclass(frozen=True)
class Endpoint:
    """Who the client is: its tree, platform and language, and the keys it trusts."""

    tree: str
    platform: str = "x64"
    language: int | None = 1033
    #: Fingerprints of the signing keys a module must be signed by (the vendor's, in production).
    pinned: tuple[str, ...] = ()
    #: Sent to HTTP sources; by default that of the tree's product on this platform.
    user_agent: str | None = None
    #: Key IDs whose signatures alone are taken after the size and inner CRC check: the
    #: vendor's old DSA key, which signs modules of 2010 still listed and whose public
    #: part is in no file (the sync's [verify] unverifiable = "accept"). None by default.
    legacy_key_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.tree not in TREES:
            raise ConfigError(f"unknown tree {self.tree!r}; known: {', '.join(sorted(TREES))}")
        if self.platform not in PLATFORMS:
            raise ConfigError(f"unknown platform {self.platform!r}; known: {', '.join(PLATFORMS)}")
        if not self.pinned:
            raise ConfigError("no signing key pinned: a client installs only modules signed by a "
                              "key it trusts")
        object.__setattr__(self, "pinned", tuple(self.pinned))
        object.__setattr__(self, "legacy_key_ids", tuple(self.legacy_key_ids))

    @property
    def agent(self) -> str:
        return self.user_agent or user_agent(self.tree, self.platform)

    @property
    def index_paths(self) -> tuple[str, ...]:
        """Where to look for the index on a source, in order.

        At the root, as a mirror serves it to this User-Agent (or a product's own
        mirror lays it out); then at the vendor's path, for a source laid out
        like the vendor's server (a share holding several trees).
        """
        tree = TREES[self.tree]
        root = "dll/update.ver" if tree.has_dll else "update.ver"
        vendor = [p for p in tree.index_paths("regular") if p.endswith("/" + root) or p == root]
        return (root, *vendor[:1])


class Progress(Protocol):
    """What an update reports as it goes (the command line draws it; a library user may ignore it)."""

    def planned(self, source: str, files: int, total_bytes: int) -> None: ...

    def advance(self, n: int) -> None: ...

    def file_done(self, name: str) -> None: ...


@dataclass
class UpdateResult:
    dest: Path
    #: "updated": a new version is installed; "current": DIR already held what the source offers.
    status: str
    source: str
    version: int | None
    previous_version: int | None
    downloaded_files: int = 0
    downloaded_bytes: int = 0
    #: Files verified by an earlier, interrupted attempt and not downloaded again.
    reused_files: int = 0
    #: Files DIR held and still holds.
    kept_files: int = 0
    installed_files: int = 0
    #: Downloaded files taken on their size and inner CRC alone (signed only by a legacy key).
    unchecked_files: int = 0
    seconds: float = 0.0
    #: Sources given up before the one that served, and why.
    failures: list[SourceFailure] = field(default_factory=list)


class _GiveUp(Exception):
    def __init__(self, source: Source, cause: str, message: str):
        super().__init__(message)
        self.failure = SourceFailure(source.shown, cause, message)


class Client:
    """Updates folders from sources; one per process is enough for thousands of endpoints.

    Every update made through it shares one HTTP connection pool (at most
    `max_connections` at a time) and one fetcher per source and User-Agent;
    at most `max_updates` run at once, the others wait their turn: an endpoint
    costs a task, not a session or a thread, and memory does not grow with
    the number of endpoints started together.
    Use as an async context manager, inside the event loop that runs the updates.
    """

    def __init__(self, *, max_connections: int = 32, max_updates: int = 256, connect_timeout: float = 10.0,
                 stall_timeout: float = 30.0, min_speed: int = 1024, retries: int = 1,
                 backoff_base: float = BACKOFF_BASE, rng: random.Random | None = None):
        self.max_connections = max_connections
        # Updates beyond this wait before they read their folder: memory stays that of
        # `max_updates` updates in flight however many endpoints the caller starts at once.
        self._running = asyncio.Semaphore(max_updates)
        self.connect_timeout = connect_timeout
        self.stall_timeout = stall_timeout
        self.min_speed = min_speed
        self.retries = retries
        self.backoff_base = backoff_base
        self.rng = rng or random.Random()
        self._connector: aiohttp.TCPConnector | None = None
        self._fetchers: dict[tuple, Upstream] = {}
        #: The modules of recent indexes by (bytes, where, platform, language): thousands of
        #: endpoints of one tree read the same index, and parsing it is most of an update's CPU.
        self._parsed: OrderedDict[tuple, tuple[bytes, list[Module]]] = OrderedDict()

    async def update(self, dest: str | Path, sources: Sequence[Source | Sequence[Source]],
                     endpoint: Endpoint, *, progress: Progress | None = None) -> UpdateResult:
        """Bring `dest` up to date from the first source that can; raise UpdateFailed if none can.

        `sources` in priority order; a list within it is a group of equal
        priority, tried in random order. Raises DestinationError when `dest`
        cannot be used or another update runs on it; ConfigError for a bad
        endpoint or no source.
        """
        order = self._order(sources)
        if not order:
            raise ConfigError("no source to update from")
        destination = Destination(dest)
        async with self._running:
            started = time.monotonic()
            with destination.lock():
                try:
                    return await self._update(destination, order, endpoint, progress, started)
                except OSError as exc:
                    # The fetchers turn every network and source failure into an UpstreamError:
                    # what is left is the folder's own disk (full, read-only, permissions).
                    raise DestinationError(f"{destination.root}: cannot write ({exc.strerror or exc}); "
                                           "check the folder's disk and permissions") from None

    async def _update(self, destination: Destination, order: list[Source], endpoint: Endpoint,
                      progress: Progress | None, started: float) -> UpdateResult:
        await asyncio.to_thread(destination.clean, staging=False)
        run = _Run(self, destination, endpoint, destination.installed(), progress)
        failures: list[SourceFailure] = []
        for source in order:
            try:
                result = await run.from_source(source)
            except _GiveUp as give_up:
                failures.append(give_up.failure)
                log.warning("%s; %s", give_up.failure.message,
                            "trying the next source" if source is not order[-1] else "no source left")
                continue
            result.failures = failures
            result.seconds = time.monotonic() - started
            # Current or updated, nothing staged is needed any more (a killed
            # update may have left some after its install).
            await asyncio.to_thread(destination.clean, staging=True)
            return result
        raise UpdateFailed(str(destination.root), failures)

    async def close(self) -> None:
        fetchers, self._fetchers = list(self._fetchers.values()), {}
        for f in fetchers:
            await f.close()
        if self._connector is not None:
            await self._connector.close()
            self._connector = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _order(self, sources: Sequence[Source | Sequence[Source]]) -> list[Source]:
        out: list[Source] = []
        for level in sources:
            group = [level] if isinstance(level, Source) else list(level)
            self.rng.shuffle(group)
            out += group
        return out

    def wanted(self, body: bytes, where: tuple, parse: Callable[[], list[Module]]) -> tuple[bytes, list[Module]]:
        """(body, `parse()`), or both as they were for the same body and `where` a moment ago
        (a pure function of them). The body returned is the one kept: endpoints that read
        the same index hold one copy of it between them, not one each."""
        key = (body, *where)
        found = self._parsed.get(key)
        if found is None:
            found = self._parsed[key] = (body, parse())
            while len(self._parsed) > PARSED_INDEXES:
                self._parsed.popitem(last=False)
        else:
            self._parsed.move_to_end(key)
        return found

    def fetcher(self, source: Source, agent: str) -> Upstream:
        """The fetcher for `source`, made on first use (inside the running event loop)."""
        key = (source.kind, source.url, agent if source.kind == "http" else None, source.user, source.password)
        found = self._fetchers.get(key)
        if found is not None:
            return found
        settings = UpstreamConfig(url=source.url, username=source.user, password=source.password,
                                  user_agent=agent, connect_timeout=self.connect_timeout,
                                  stall_timeout=self.stall_timeout, min_speed=self.min_speed,
                                  retries=self.retries, parallel=self.max_connections)
        if source.kind == "http":
            from updmirror.upstream import HttpUpstream
            if self._connector is None:
                self._connector = aiohttp.TCPConnector(limit=self.max_connections)
            found = HttpUpstream(settings, backoff_base=self.backoff_base, connector=self._connector)
        elif source.kind == "share":
            from updmirror.upstream import SmbUpstream
            found = SmbUpstream(settings, backoff_base=self.backoff_base)
        else:
            from updmirror.upstream import FolderUpstream
            found = FolderUpstream(source.url)
        self._fetchers[key] = found
        return found


class _Run:
    """One update's state across the sources it tries."""

    def __init__(self, client: Client, destination: Destination, endpoint: Endpoint,
                 installed: Installed, progress: Progress | None):
        self.client = client
        self.destination = destination
        self.endpoint = endpoint
        self.installed = installed
        self.progress = progress
        # What DIR holds only counts when it is this endpoint's: a folder switched to
        # another tree or platform starts over.
        self.comparable = (installed.tree, installed.platform, installed.language) == (
            endpoint.tree, endpoint.platform, endpoint.language)
        self.held = installed.modules if self.comparable else ()

    async def from_source(self, source: Source) -> UpdateResult:
        fetcher = self.client.fetcher(source, self.endpoint.agent)
        found = await self._index(fetcher, source)
        if found is None:
            return self._result(source, "current", self.installed.version)
        path, body, validators = found
        body, wanted = self._modules(source, path, body)
        version = database_version(wanted)
        before = self.installed.version if self.comparable else None
        if before is not None and version is not None and version < before:
            raise _GiveUp(source, "older-index", f"{source.shown}: its index is version {version}, "
                          f"older than the installed {before}; not installing it")
        plan = plan_update(wanted, self.held)
        if not plan.changes:
            return self._result(source, "current", version)

        files = {h.key: self.installed.module_file(h.key) for h in plan.keep}
        result = self._result(source, "updated", version)
        result.kept_files = len(plan.keep)
        if self.progress:
            self.progress.planned(source.shown, len(plan.download), plan.bytes)
        for m in plan.download:
            key = module_key(m)
            done = self.destination.verified_file(key, m.size)
            if done is not None:
                result.reused_files += 1
                if self.progress:
                    self.progress.advance(m.size or 0)
            else:
                done = await self._download(fetcher, source, m, key, result)
                result.downloaded_files += 1
            files[key] = done
            if self.progress:
                self.progress.file_done(m.section)
        new = Installed(tree=self.endpoint.tree, platform=self.endpoint.platform,
                        language=self.endpoint.language, version=version, source=source.shown,
                        validators={"index": path, **validators}, installed_at=time.time(),
                        modules=plan.installed())
        await asyncio.to_thread(self.destination.install, new, body, files)
        result.installed_files = len(new.modules)
        return result

    async def _index(self, fetcher: Upstream, source: Source) -> tuple[str, bytes, dict] | None:
        """(path, body, validators) of the tree's index on `source`; None when it is the one installed."""
        mine = self.installed.validators if self.comparable and self.installed.source == source.shown else {}
        missing = []
        for path in self.endpoint.index_paths:
            url = source.file_url(path)
            try:
                got = await fetcher.fetch_index(url, mine if mine.get("index") == path else None,
                                                MAX_INDEX_BYTES)
            except NotFoundError as exc:
                missing.append(str(exc))
                continue
            except AuthError as exc:
                raise _GiveUp(source, "credentials", str(exc)) from None
            except TooLargeError as exc:
                raise _GiveUp(source, "broken-index", str(exc)) from None
            except UpstreamError as exc:
                raise _GiveUp(source, "unavailable", str(exc)) from None
            if not got.changed:
                return None
            return path, got.body, got.validators
        raise _GiveUp(source, "not-found", f"{source.shown}: no index for {self.endpoint.tree} ("
                      + "; ".join(missing) + ")")

    def _modules(self, source: Source, path: str, body: bytes) -> tuple[bytes, list[Module]]:
        base = _SHARE_BASE if source.kind == "share" else source.url
        shown = f"{source.shown} {path}"
        e = self.endpoint

        def parse() -> list[Module]:
            try:
                index = UpdateVer.parse(body, shown)
                found = modules(index, base + path, root_url=base, source=shown)
            except FormatError as exc:
                raise _GiveUp(source, "broken-index", str(exc)) from None
            wanted = modules_for(found, e.platform, e.language)
            if not wanted:
                raise _GiveUp(source, "broken-index", f"{shown}: lists no module for {e.platform} "
                              f"({len(found)} module sections in all); not an index for this endpoint")
            return wanted

        return self.client.wanted(body, (source.shown, base, path, e.platform, e.language), parse)

    async def _download(self, fetcher: Upstream, source: Source, m: Module, key: str,
                        result: UpdateResult) -> Path:
        part = self.destination.part_file(key)
        shown = f"{source.shown} {m.path}"

        def arrived(n: int) -> None:
            result.downloaded_bytes += n
            if self.progress:
                self.progress.advance(n)

        try:
            await fetcher.download(source.file_url(m.path), part, m.size, MAX_FILE_BYTES, arrived)
            try:
                await asyncio.to_thread(nup.verify, part, shown, self.endpoint.pinned, (),
                                        self.endpoint.legacy_key_ids)
            except nup.UncheckedSignatureError:
                result.unchecked_files += 1
        except AuthError as exc:
            raise _GiveUp(source, "credentials", str(exc)) from None
        except UpstreamError as exc:
            raise _GiveUp(source, "download", str(exc)) from None
        except FormatError as exc:
            # Not the file the index describes: its bytes are no good as a start either.
            part.unlink(missing_ok=True)
            raise _GiveUp(source, "download", str(exc)) from None
        return await asyncio.to_thread(self.destination.accept, part, key)

    def _result(self, source: Source, status: str, version: int | None) -> UpdateResult:
        return UpdateResult(self.destination.root, status, source.shown, version,
                            self.installed.version if self.comparable else None,
                            installed_files=len(self.held) if status == "current" else 0)
