"""A minimal update client, the seed of the reference client.

It does what an endpoint does against a mirror: ask for `/dll/update.ver`
with its User-Agent, pick the module files its platform and language need,
download them and check each against the index (size) and its signature.
The demo and the load benchmark use it; sources in priority order, failover
and atomic install come with the reference-client issue.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from updmirror import redact
from updmirror.errors import FormatError, UpdmirrorError
from updmirror.eset import nup
from updmirror.eset.modules import Module, Selection, modules, select
from updmirror.eset.trees import user_agent
from updmirror.eset.updatever import MAX_INDEX_BYTES, UpdateVer

#: The agents of the products whose trees the demo and the benchmarks serve.
USER_AGENTS = {tree: user_agent(tree) for tree in ("ep11", "v16", "v5")}


@dataclass
class ClientUpdate:
    """What one client update did."""

    user_agent: str
    index_url: str
    version: int | None = None
    files: int = 0
    bytes: int = 0
    #: Files signed only by a legacy key given as `legacy_key_ids`: size and CRC checked only.
    unchecked: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def needed(mods: Iterable[Module], platform: str, language: int | None) -> list[Module]:
    """The files a client of `platform` and `language` downloads."""
    languages = (language,) if language is not None else ()
    return select(mods, Selection(platforms=(platform,), languages=languages))


async def update_once(session: aiohttp.ClientSession, base_url: str, *, user_agent: str,
                      platform: str = "x64", language: int | None = 1033, dll: bool = True,
                      pinned: Iterable[str] = (), legacy_key_ids: Iterable[str] = ()) -> ClientUpdate:
    """One update from the mirror at `base_url`, as an endpoint would do it.

    A file signed only by `legacy_key_ids` (keys whose public part the client
    lacks) is counted in `unchecked` after its size and CRC check, not refused.
    """
    start = time.monotonic()
    index_url = base_url.rstrip("/") + ("/dll/update.ver" if dll else "/update.ver")
    result = ClientUpdate(user_agent, redact.url(index_url))
    headers = {"User-Agent": user_agent}
    try:
        async with session.get(index_url, headers=headers) as resp:
            if resp.status != 200:
                raise UpdmirrorError(f"{redact.url(index_url)}: HTTP {resp.status}")
            body = await resp.content.read(MAX_INDEX_BYTES + 1)
        index = UpdateVer.parse(body, redact.url(index_url))
        wanted = needed(modules(index, index_url), platform, language)
        result.version = max((m.versionid for m in wanted if m.versionid), default=None)
        with tempfile.TemporaryDirectory(prefix="updmirror-client-") as tmp:
            for module in wanted:
                target = Path(tmp) / module.path.lstrip("/")
                await _download(session, module, target, headers)
                try:
                    await asyncio.to_thread(nup.verify, target, redact.url(module.url), pinned, (),
                                            legacy_key_ids)
                except nup.UncheckedSignatureError:
                    result.unchecked += 1   # the caller named these keys as ones it cannot check
                result.files += 1
                result.bytes += module.size or 0
    except (UpdmirrorError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        result.errors.append(f"{type(exc).__name__}: {exc}")
    result.seconds = time.monotonic() - start
    return result


async def _download(session: aiohttp.ClientSession, module: Module, target: Path,
                    headers: dict[str, str]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    got = 0
    limit = module.size if module.size is not None else 1 << 30
    async with session.get(module.url, headers=headers) as resp:
        if resp.status != 200:
            raise UpdmirrorError(f"{redact.url(module.url)}: HTTP {resp.status}")
        with open(target, "wb") as f:
            async for chunk in resp.content.iter_chunked(256 * 1024):
                got += len(chunk)
                if got > limit:
                    raise FormatError(f"{redact.url(module.url)}: more than size={limit} bytes")
                f.write(chunk)
    if module.size is not None and got != module.size:
        raise FormatError(f"{redact.url(module.url)}: got {got} bytes, index says {module.size}")
