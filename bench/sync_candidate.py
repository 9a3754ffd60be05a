"""Candidate speed-ups of the sync, applied at run time, to measure them before anyone edits the engine.

    python bench/sync_initial.py --sync-cmd "python bench/sync_candidate.py --fsync-in-thread --chunk 1048576 --"

Runs `updmirror ARGS` (everything after `--`) with these changes patched in:

--fsync-in-thread   verify and fsync a downloaded file in the same worker thread
                    (`asyncio.to_thread`), instead of verifying in a thread and then
                    fsyncing on the event loop, which stalls every other download
                    for the length of the fsync;
--chunk BYTES       bytes asked of the connection per read in upstream/http.py
                    (CHUNK_SIZE, 64 KiB now), and the same as aiohttp's read buffer
                    (`ClientSession(read_bufsize=...)`, 64 KiB by default): fewer
                    trips through the event loop, the watchdog and the file write per
                    byte; memory grows by about `parallel` x BYTES.
--no-unusable-hash  do not hash the files for signatures that cannot be checked: an
                    approximation of choosing the hashes from the one-pass packets
                    whose key is available, made by leaving SHA-1 out of the hashes
                    `nup` may compute. Equivalent for the simulated vendor's files,
                    whose only SHA-1 signature is the DSA one by a key no file holds.

All three are in the engine since commits dadc03e and 8952816 (measured with
this file first: 0.80 of the sync's time for the first two); the file stays
as the way to measure the next candidate the same way.

Not a part of updmirror: it replaces `Sync._fetch_one` with a copy that
differs only as described, and refuses to run when the engine's own
`_fetch_one` is no longer the one it copied (it would measure stale code).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))


def _fetch_one_source_digest(engine) -> str:
    return hashlib.sha256(inspect.getsource(engine.Sync._fetch_one).encode()).hexdigest()[:16]


#: First 16 hex digits of the sha256 of the engine's `Sync._fetch_one` source this copy was made from.
ORIGINAL_DIGEST = "0d07925297ffba3d"


def patch_fsync_in_thread(engine) -> None:
    from updmirror import redact
    from updmirror.errors import FormatError
    from updmirror.eset import nup

    async def _fetch_one(self, upstream, module, progress) -> None:
        partial = self.store.partial_file(hashlib.sha256(module.path.encode()).hexdigest()[:32])
        limit = module.size if module.size is not None else engine.MAX_FILE_BYTES
        source = redact.url(module.url)
        await upstream.download(module.url, partial, module.size, limit, on_bytes=progress.advance_bytes)
        size = partial.stat().st_size
        if module.size is not None and size != module.size:
            partial.unlink(missing_ok=True)
            raise FormatError(f"{source}: got {size} bytes, the index says size={module.size}")

        def verify_and_flush() -> None:
            nup.verify(partial, source, self.cfg.verify.signing_keys, self.extra_keys)
            engine.fsync_path(partial)  # the change: off the event loop

        try:
            await asyncio.to_thread(verify_and_flush)
        except FormatError:
            partial.unlink(missing_ok=True)
            raise
        target = self.store.pool_file(module.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, target)
        self.report.files_fetched += 1
        self.report.bytes_fetched += size
        progress.file_done()

    engine.Sync._fetch_one = _fetch_one


def patch_chunk(size: int) -> None:
    import aiohttp

    import updmirror.upstream.http as http

    http.CHUNK_SIZE = size
    original = aiohttp.ClientSession.__init__

    def init(self, *args, **kwargs):
        kwargs.setdefault("read_bufsize", size)
        original(self, *args, **kwargs)

    aiohttp.ClientSession.__init__ = init


def patch_no_sha1_in_nup() -> None:
    import types

    from updmirror.eset import nup, openpgp

    # Only nup's view of the table changes; openpgp's own checks keep every hash.
    view = types.SimpleNamespace(**{k: getattr(openpgp, k) for k in dir(openpgp) if not k.startswith("__")})
    view.HASHES = {k: v for k, v in openpgp.HASHES.items() if k != openpgp.HASH_SHA1}
    nup.openpgp = view


def main() -> int:
    argv = sys.argv[1:]
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    split = argv.index("--")
    mine, rest = argv[:split], argv[split + 1 :]
    import updmirror.sync.engine as engine

    if "--fsync-in-thread" in mine:
        digest = _fetch_one_source_digest(engine)
        if digest != ORIGINAL_DIGEST and "to_thread(verify_and_flush)" in inspect.getsource(
            engine.Sync._fetch_one
        ):
            print(
                "sync_candidate: the engine already fsyncs in the worker thread; not patched", file=sys.stderr
            )
        elif digest != ORIGINAL_DIGEST:
            print(
                f"sync_candidate: the engine's Sync._fetch_one changed (digest {digest}, copied from "
                f"{ORIGINAL_DIGEST}); update this candidate before measuring it",
                file=sys.stderr,
            )
            return 2
        else:
            patch_fsync_in_thread(engine)
    if "--no-unusable-hash" in mine:
        patch_no_sha1_in_nup()
    if "--chunk" in mine:
        patch_chunk(int(mine[mine.index("--chunk") + 1]))
    from updmirror.cli import main as cli_main

    return cli_main(rest)


if __name__ == "__main__":
    sys.exit(main())
