"""Publishing under load: clients update from a multi-worker mirror in a loop
while the vendor releases and the mirror syncs and publishes, again and
again. Not one client update may fail or be inconsistent: every file the
index a client got lists is served, with the size the index lists.

Each client asks for /dll/update.ver with its product's User-Agent on one
connection, then checks every listed file with HEAD on another (each new
connection may reach another worker), and downloads the files it has not
had yet (at most a few per round), checking their length.

Sizes: UPDMIRROR_LOAD_CLIENTS (60; 500 with UPDMIRROR_LONG=1),
UPDMIRROR_LOAD_RELEASES (4; 20), UPDMIRROR_LOAD_WORKERS (4).
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import os
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
from synckit import SRC, assert_snapshot_complete, serving

from sizes import size
from updmirror.errors import FormatError
from updmirror.eset import nup
from updmirror.eset.modules import database_version, modules
from updmirror.eset.trees import user_agent
from updmirror.eset.updatever import UpdateVer

CLIENTS = size("UPDMIRROR_LOAD_CLIENTS", ci=60, long=500)
RELEASES = size("UPDMIRROR_LOAD_RELEASES", ci=4, long=20)
WORKERS = size("UPDMIRROR_LOAD_WORKERS", ci=4, long=4)
#: Processes the clients run in (so they do not share one interpreter's lock).
CLIENT_PROCESSES = 2
TREES_USED = ("ep11", "v16")
#: HEAD requests pipelined on a connection at once.
BATCH = 64
#: Files a client downloads whole per round.
DOWNLOADS = 2


@dataclass
class Tally:
    updates: int = 0
    files_checked: int = 0
    bytes_downloaded: int = 0
    older_index: int = 0          # an index older than one this client had (another worker, not yet switched)
    versions: set = field(default_factory=set)
    failures: list = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.updates += other.updates
        self.files_checked += other.files_checked
        self.bytes_downloaded += other.bytes_downloaded
        self.older_index += other.older_index
        self.versions |= other.versions
        self.failures += other.failures


async def _response(reader: asyncio.StreamReader, head_only: bool) -> tuple[int, int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    body = b"" if head_only else await reader.readexactly(length)
    return status, length, body


_INDEXES: dict[bytes, tuple[list, int]] = {}


def _whole(body: bytes, size: int | None) -> bool:
    """`size=` bytes, or for a section without size= a .nup whose inner size and CRC hold."""
    if size is not None:
        return len(body) == size
    try:
        nup.inspect(io.BytesIO(body), "GET")
    except FormatError:
        return False
    return True


def _read_index(body: bytes, port: int) -> tuple[list, int]:
    """The files an index lists and its version, parsed once per index per process:
    hundreds of clients parsing the same bytes would starve the client processes
    (a client too slow to send its request head gets 408, rightly)."""
    known = _INDEXES.get(body)
    if known is None:
        listed = modules(UpdateVer.parse(body), f"http://127.0.0.1:{port}/dll/update.ver")
        known = _INDEXES[body] = (listed, database_version(listed) or 0)
    return known


async def _one_update(port: int, source: str, tree: str, tally: Tally, had: set[str], last: list[int]) -> None:
    agent = user_agent(tree).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(b"GET /dll/update.ver HTTP/1.1\r\nHost: mirror\r\nUser-Agent: " + agent
                     + b"\r\nConnection: close\r\n\r\n")
        status, _, body = await _response(reader, head_only=False)
    finally:
        writer.close()
    if status != 200:
        tally.failures.append(f"{tree} index: {status}")
        return
    listed, version = _read_index(body, port)
    if version < last[0]:
        tally.older_index += 1
    last[0] = max(last[0], version)
    tally.versions.add((tree, version))
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        for at in range(0, len(listed), BATCH):
            batch = listed[at:at + BATCH]
            writer.write(b"".join(b"HEAD " + m.path.encode() + b" HTTP/1.1\r\nHost: mirror\r\nUser-Agent: "
                                  + agent + b"\r\n\r\n" for m in batch))
            for m in batch:
                status, length, _ = await _response(reader, head_only=True)
                tally.files_checked += 1
                # A section without size= (the vendor has some) promises only a file.
                if status != 200 or length != (length if m.size is None and length > 0 else m.size):
                    tally.failures.append(f"{tree} v{version} {m.path}: {status}, {length} bytes, "
                                          f"the index says {m.size}")
        for m in [m for m in listed if m.path not in had][:DOWNLOADS]:
            writer.write(b"GET " + m.path.encode() + b" HTTP/1.1\r\nHost: mirror\r\n\r\n")
            status, _, body = await _response(reader, head_only=False)
            if status != 200 or not _whole(body, m.size):
                tally.failures.append(f"{tree} v{version} GET {m.path}: {status}, {len(body)} bytes, "
                                      f"the index says {m.size}")
            tally.bytes_downloaded += len(body)
            had.add(m.path)
    finally:
        writer.close()
    tally.updates += 1


async def _clients(port: int, first: int, count: int, stop) -> Tally:
    tally = Tally()

    async def client(i: int) -> None:
        source = f"127.0.{1 + i // 250}.{2 + i % 250}"     # many endpoints, not one address
        tree = TREES_USED[i % len(TREES_USED)]
        had: set[str] = set()
        last = [0]
        while not stop.is_set():
            try:
                await _one_update(port, source, tree, tally, had, last)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                tally.failures.append(f"client {i}: {type(exc).__name__}: {exc}")
                await asyncio.sleep(0.1)

    await asyncio.gather(*(client(i) for i in range(first, first + count)))
    return tally


def _client_process(port: int, first: int, count: int, stop, results) -> None:
    results.put(asyncio.run(_clients(port, first, count, stop)))


def _kind(failure: str) -> str:
    m = re.search(r": (\d{3}),", failure)
    return m.group(1) if m else failure.split(": ")[1] if ": " in failure else failure


def run(command: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYTHONPATH=SRC))


@pytest.mark.timeout(300 + 60 * RELEASES)
def test_clients_never_see_a_failed_or_inconsistent_update_while_releases_are_published(setup):
    setup.write_config(trees=TREES_USED)
    # The vendor, the mirror and the clients share two cores: no stall verdicts from contention.
    setup.config_path.write_text(setup.config_path.read_text().replace("stall_timeout = 1.5", "stall_timeout = 30")
                                 .replace("min_speed = 20000", "min_speed = 0"))
    sync = [sys.executable, "-m", "updmirror", "-q", "sync", "-c", str(setup.config_path)]
    first = run(sync)
    assert first.returncode == 0, first.stderr
    published = [setup.store.current().id]
    ctx = multiprocessing.get_context("fork")
    stop, results = ctx.Event(), ctx.Queue()
    started = time.monotonic()
    with serving(setup, workers=WORKERS) as server:
        share = -(-CLIENTS // CLIENT_PROCESSES)
        procs = [ctx.Process(target=_client_process, args=(server.port, i * share,
                                                           min(share, CLIENTS - i * share), stop, results))
                 for i in range(CLIENT_PROCESSES)]
        for p in procs:
            p.start()
        try:
            for _ in range(RELEASES):
                release = run([sys.executable, "-m", "updmirror", "vendor", "publish", "--root",
                               str(setup.vendor_root)])
                assert release.returncode == 0, release.stderr
                done = run(sync)
                assert done.returncode == 0, done.stderr
                published.append(setup.store.current().id)
            time.sleep(3)          # a last round or two on the final snapshot
        finally:
            stop.set()
            tally = Tally()
            for _ in procs:
                tally.add(results.get(timeout=120))
            for p in procs:
                p.join(30)
    seconds = time.monotonic() - started
    assert_snapshot_complete(setup.store)
    assert "Traceback" not in server.stderr, server.stderr[-3000:]
    print(f"\npublishing under load: {CLIENTS} clients, {WORKERS} workers, {RELEASES} releases synced and "
          f"published in {seconds:.0f} s; {tally.updates} client updates, {tally.files_checked} files checked, "
          f"{tally.bytes_downloaded / 1e6:.1f} MB downloaded, {len(tally.versions)} index versions seen, "
          f"{tally.older_index} older index after a newer (a worker not yet switched), "
          f"{len(tally.failures)} failures {dict(Counter(_kind(f) for f in tally.failures))}")
    assert not tally.failures, tally.failures[:20]
    assert len(set(published)) == RELEASES + 1
    # The clients were updating all along: they saw every release's index.
    assert len(tally.versions) >= len(TREES_USED) * (RELEASES + 1), sorted(tally.versions)
    assert tally.updates >= CLIENTS * 2
