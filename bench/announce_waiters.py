"""400 lower mirrors waiting on one upper mirror: its memory, and how soon all are current.

    python bench/announce_waiters.py                  # 400 lower mirrors (~2 min once set up)
    python bench/announce_waiters.py --lowers 1000

Set-up: the simulated vendor (seed 7, 4 MiB, tree ep11; generated once under WORK, copied per
run) and one upper mirror synced from it, served by `updmirror serve` (the default two workers,
Basic authentication). The lower mirrors are simulated in this one process, each with its own
connection and its own credentials' header, each doing what a lower updmirror does:

- announce: one `updmirror.sync.AnnounceWatcher` per lower mirror (the daemon's own code:
  a long-poll on /updmirror/announce, the default jitter of 2 s) and, when it wakes, the sync's
  requests: the upper's tier manifest, its index, and every file the manifest lists that the
  previous one did not;
- poll 5s (baseline): each lower mirror asks for the manifest every 5 s (10 % jitter, random
  phase), as a lower mirror with [mirror] interval = "5s" would, and fetches the same on news.

Figures per mode: the upper server's resident memory (the sum over its processes) before the
lower mirrors connect and while they wait, per lower mirror; the requests and bytes the upper
answers in 30 quiet seconds (more than one 25-s wait), from its status counters; and, after one
release (the vendor publishes, the upper syncs), the time from the upper's publish until the
first, the median and the last lower mirror is current (has read the new manifest, the index
and the new files).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import time
from pathlib import Path

from common import (
    WORK,
    Service,
    copy_tree_linked,
    free_port,
    get_json,
    machine_line,
    mib,
    remove_tree,
    table,
    tree_rss,
    updmirror,
    use_repo_sources,
    write_htpasswd,
)

use_repo_sources()

import aiohttp  # noqa: E402
from sync_vendor import cached_vendor, fingerprint, legacy_key_id, vendor_server, write_mirror_config  # noqa: E402

from updmirror import config  # noqa: E402
from updmirror.sync import AnnounceWatcher  # noqa: E402
from updmirror.upstream import HttpUpstream  # noqa: E402

INDEX = "eset_upd/ep11/dll/update.ver"
HERE = WORK / "announce-waiters"
LOWER_USER, LOWER_PASSWORD = "lower", "lower-bench-pw"
QUIET = 30.0


def served(port: int) -> tuple[int, int]:
    """(requests answered, bytes sent) by the upper server so far, from its /status.json."""
    server = get_json(f"http://127.0.0.1:{port}/status.json", LOWER_USER, LOWER_PASSWORD)["server"]
    return server["requests_total"], server["bytes_sent"]


class Lower:
    """One simulated lower mirror: what it knows of the upper's snapshot, and when it caught up."""

    def __init__(self, cfg, connector):
        self.cfg = cfg
        self.fetcher = HttpUpstream(cfg.upstream, connector=connector)
        self.snapshot: str | None = None
        self.files: dict[str, dict] = {}
        self.current_at: float | None = None
        #: When it learnt of the release (woken by an announcement, or its poll saw a new snapshot).
        self.heard_at: float | None = None

    async def catch_up(self) -> bool:
        """The sync's requests; True when the upper's snapshot was new."""
        base = self.cfg.upstream.url
        manifest = json.loads((await self.fetcher.fetch_index(base + "updmirror/manifest.json", None,
                                                              16 << 20)).body)
        if manifest["snapshot"] == self.snapshot:
            return False
        first = self.snapshot is None
        self.snapshot = manifest["snapshot"]
        await self.fetcher.fetch_index(base + INDEX, None, 1 << 20)
        new = [p for p, f in manifest["files"].items() if self.files.get(p) != f]
        if not first:
            for path in new:
                await self.fetcher.fetch_index(base + path.lstrip("/"), None, 64 << 20)
        self.files = manifest["files"]
        return not first


async def announce_lower(lower: Lower, stop: asyncio.Event, ready: asyncio.Event) -> None:
    await lower.catch_up()
    wake = asyncio.Event()
    watcher = AnnounceWatcher(lower.cfg, wake, last_synced=time.time)
    watching = asyncio.create_task(watcher.run(stop))
    ready.set()
    try:
        while not stop.is_set():
            waker = asyncio.create_task(wake.wait())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({waker, stopper}, return_when=asyncio.FIRST_COMPLETED)
            waker.cancel()
            stopper.cancel()
            if stop.is_set():
                break
            wake.clear()
            lower.heard_at = lower.heard_at or time.monotonic()
            if await lower.catch_up():
                lower.current_at = time.monotonic()
    finally:
        await asyncio.gather(watching, return_exceptions=True)


async def polling_lower(lower: Lower, stop: asyncio.Event, ready: asyncio.Event) -> None:
    await lower.catch_up()
    ready.set()
    try:
        await asyncio.wait_for(stop.wait(), random.uniform(0, 5))
        return
    except asyncio.TimeoutError:
        pass
    while not stop.is_set():
        asked = time.monotonic()
        if await lower.catch_up():
            lower.heard_at = asked
            lower.current_at = time.monotonic()
        try:
            await asyncio.wait_for(stop.wait(), 5 * random.uniform(0.9, 1.1))
        except asyncio.TimeoutError:
            pass


async def run_mode(mode: str, n: int, lower_cfg, upper: Service, port: int, upper_cfg: Path,
                   vendor: Path) -> dict:
    before = tree_rss(upper.pid)
    connector = aiohttp.TCPConnector(limit=0)
    lowers = [Lower(lower_cfg, connector) for _ in range(n)]
    stop = asyncio.Event()
    readies = [asyncio.Event() for _ in lowers]
    body = announce_lower if mode == "announce" else polling_lower
    tasks = [asyncio.create_task(body(lw, stop, r)) for lw, r in zip(lowers, readies, strict=True)]
    try:
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
        await asyncio.sleep(3)          # every watcher's request is held by now
        waiting = tree_rss(upper.pid)
        io_before = await asyncio.to_thread(served, port)
        await asyncio.sleep(QUIET)
        io_after = await asyncio.to_thread(served, port)
        await asyncio.to_thread(subprocess.run, updmirror("vendor", "publish", "--root", str(vendor)),
                                check=True, stdout=subprocess.DEVNULL)
        await asyncio.to_thread(subprocess.run, updmirror("-q", "sync", "-c", str(upper_cfg)), check=True,
                                stdout=subprocess.DEVNULL)
        published = time.monotonic()
        cpu_before = time.process_time()
        until = published + 90
        while time.monotonic() < until and any(lw.current_at is None for lw in lowers):
            await asyncio.sleep(0.05)
        times = sorted(lw.current_at - published for lw in lowers if lw.current_at is not None)
        heard = sorted(lw.heard_at - published for lw in lowers if lw.heard_at is not None)
        cpu = time.process_time() - cpu_before
        busy = max(times) if times else 0.0
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for lw in lowers:
            await lw.fetcher.close()
        await connector.close()
    return {"rss_before": before, "rss_waiting": waiting, "current": len(times), "lowers": n,
            "first": times[0] if times else None, "median": statistics.median(times) if times else None,
            "last": times[-1] if times else None,
            "quiet_requests": io_after[0] - io_before[0], "quiet_bytes": io_after[1] - io_before[1],
            "heard_last": heard[-1] if heard else None, "heard_median": statistics.median(heard) if heard else None,
            "lower_cpu": cpu, "lower_cpu_share": cpu / busy if busy else None}


def setup(work: Path) -> tuple[Path, Path, Path]:
    """(vendor root, upper's config, lower mirrors' config)."""
    pristine = cached_vendor(7, 4, ["ep11"])
    remove_tree(work)
    work.mkdir(parents=True)
    vendor = work / "vendor"
    copy_tree_linked(pristine, vendor)
    return vendor, work / "upper.toml", work / "lower.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lowers", type=int, default=400)
    args = parser.parse_args()
    print(machine_line())
    results = {}
    for mode in ("announce", "poll 5s"):
        work = HERE / mode.replace(" ", "-")
        vendor, upper_cfg, lower_toml = setup(work)
        uport = free_port()
        write_htpasswd(work / "htpasswd", LOWER_USER, LOWER_PASSWORD)
        vendor_service, vendor_url = vendor_server(vendor, work / "vendor.log")
        write_mirror_config(upper_cfg, url=vendor_url, store=work / "store", trees=["ep11"], channels=["regular"],
                            signing_key=fingerprint(vendor), legacy_key_id=legacy_key_id(vendor),
                            extra={"mirror": ['name = "upper"'],
                                   "http": [f'listen = ["127.0.0.1:{uport}"]', 'auth = "basic"',
                                            f'htpasswd = "{work / "htpasswd"}"',
                                            "max_connections_per_address = 5000"]})
        lower_toml.write_text(f"""[upstream]
url = "http://127.0.0.1:{uport}/"
username = "{LOWER_USER}"
password = "{LOWER_PASSWORD}"

[mirror]
root = "{work / 'lower-unused'}"
""")
        with vendor_service:
            subprocess.run(updmirror("-q", "sync", "-c", str(upper_cfg)), check=True, stdout=subprocess.DEVNULL)
            with Service(updmirror("-q", "serve", "-c", str(upper_cfg)), port=uport, log=work / "upper.log") as upper:
                time.sleep(1)
                print(f"{mode}: {args.lowers} lower mirrors ...", flush=True)
                results[mode] = asyncio.run(run_mode(mode, args.lowers, config.load(lower_toml), upper,
                                                     uport, upper_cfg, vendor))
    rows = []
    for mode, r in results.items():
        per = (r["rss_waiting"] - r["rss_before"]) / r["lowers"]
        rows.append([mode, mib(r["rss_before"]), mib(r["rss_waiting"]), f"{per / 1024:.1f} KiB",
                     f"{r['quiet_requests'] / QUIET:.1f}/s, {r['quiet_bytes'] / QUIET / 1024:.0f} KiB/s",
                     f"{r['current']}/{r['lowers']}",
                     " / ".join(f"{r[k]:.2f}" if r[k] is not None else "-" for k in ("first", "median", "last")),
                     f"{r['heard_median']:.2f} / {r['heard_last']:.2f}" if r["heard_last"] is not None else "-",
                     f"{r['lower_cpu']:.1f} s ({r['lower_cpu_share']:.0%} of a core)"
                     if r["lower_cpu_share"] is not None else "-"])
    print()
    print(table(["mode", "upper RSS before", "while they wait", "per lower mirror",
                 "upper answers when quiet (status pages' counters)", "current",
                 "current after publish: first / median / last (s)", "heard of it: median / last (s)",
                 "lower mirrors' process CPU until then"],
                rows))
    a, p = results["announce"], results["poll 5s"]
    if a["last"] and p["last"]:
        print(f"\nall {a['lowers']} current: announce {a['last']:.2f} s, poll every 5 s {p['last']:.2f} s "
              f"({p['last'] / a['last']:.2f}x)")
    print("(the quiet window holds the server's counters as of its once-a-second flush; an announcement "
          "request is counted when answered: each lower mirror renews one every 25 s)")


if __name__ == "__main__":
    main()
