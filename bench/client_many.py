"""Many reference clients in one process: what the client library costs per endpoint, against
the storm's raw load generator doing the same downloads.

    python bench/client_many.py                          # C = 500, 2000; 2 runs each (~5 min once set up)
    python bench/client_many.py --clients 1000 --runs 1

Set-up, made once under WORK/client-many and reused: the simulated vendor (seed 2, 32 MiB, trees
ep11 and v16), a mirror synced at its release 1, one reference client per tree (x64, language
1033) installed from that mirror (the templates), then the vendor's release 2 synced.

Each run serves the store with `updmirror serve` (one worker) and, side by side, in turns:

- client: C folders, hard-linked copies of the templates (half ep11, half v16), all updated at
  once by ONE process through ONE `updmirror.client.Client` (`--pool` connections): each update
  reads its index with its User-Agent, plans from what its folder holds, downloads the deltas,
  verifies each (size, inner CRC, RSA signature), installs (hard links, fsync, one rename);
- raw: the storm's load generator (bench/serve_load.py, one process, raw HTTP/1.1 keep-alive)
  fetching the same index and the same files per client, verifying and installing nothing:
  what the network part alone costs.

Figures per side: updates per second (C / time until the last finished), the process's CPU
seconds per update, its peak RSS and the RSS it gained per client ((peak - at start) / C), the
most threads it had at once, errors. The server and both sides share the machine's two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import WORK, machine_line, remove_tree, stats, table, updmirror, use_repo_sources

use_repo_sources()

from serve_load import Children, sources  # noqa: E402
from serve_snapshot import Snapshot, client_downloads, ours, raise_open_files  # noqa: E402
from sync_vendor import cached_vendor, fingerprint, vendor_server, write_mirror_config  # noqa: E402

from updmirror.eset.trees import TREES  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = WORK / "client-many"
SEED, SIZE_MB, TREE_NAMES = 2, 32, ["ep11", "v16"]
INDEX = {t: next(p for p in TREES[t].index_paths("regular") if p.endswith("dll/update.ver")) for t in TREE_NAMES}


# -- set-up -----------------------------------------------------------------------------

def setup() -> tuple[Snapshot, dict[str, Path], str]:
    """The store at release 2, the release-1 templates by tree, and the signing key."""
    store, old, templates = ROOT / "store", ROOT / "release1-indexes", ROOT / "templates"
    done = ROOT / "ready.json"
    if not done.exists():
        for stale in (store, old, templates, ROOT / "vendor"):
            remove_tree(stale)
        ROOT.mkdir(parents=True, exist_ok=True)
        vendor = ROOT / "vendor"
        shutil.copytree(cached_vendor(SEED, SIZE_MB, TREE_NAMES), vendor, copy_function=os.link)
        conf = ROOT / "sync.toml"
        server, url = vendor_server(vendor, ROOT / "vendor.log")
        with server:
            write_mirror_config(conf, url=url, store=store, trees=TREE_NAMES, channels=["regular"],
                                signing_key=fingerprint(vendor))
            _sync(conf)
            snap = Snapshot(store, (store / "current" / "tree").resolve(), old)
            with ours(snap, 1, ROOT) as mirror:
                asyncio.run(_templates(f"http://127.0.0.1:{mirror.port}", templates, fingerprint(vendor)))
            for t in TREE_NAMES:
                (old / INDEX[t]).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(snap.tree / INDEX[t], old / INDEX[t])
            subprocess.run(updmirror("-q", "vendor", "publish", "--root", str(vendor)), check=True,
                           stdout=subprocess.DEVNULL, timeout=600)
            _sync(conf)
        done.write_text(json.dumps({"fingerprint": fingerprint(vendor)}))
    key = json.loads(done.read_text())["fingerprint"]
    return (Snapshot(store, (store / "current" / "tree").resolve(), old),
            {t: templates / t for t in TREE_NAMES}, key)


def _sync(conf: Path) -> None:
    subprocess.run(updmirror("-q", "sync", "-c", str(conf)), check=True, timeout=1800, stdin=subprocess.DEVNULL)


async def _templates(url: str, templates: Path, key: str) -> None:
    from updmirror.client import Client, Endpoint, Source
    async with Client() as client:
        for t in TREE_NAMES:
            await client.update(templates / t, [Source.parse(url)], Endpoint(t, "x64", 1033, pinned=(key,)))


# -- one side of a run ----------------------------------------------------------------------

def run_clients(port: int, folders: list[tuple[str, str]], key: str, pool: int) -> dict:
    """The reference clients, in a child process of their own (its RSS and CPU are theirs alone)."""
    job = {"url": f"http://127.0.0.1:{port}", "folders": folders, "key": key, "pool": pool}
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child"], input=json.dumps(job),
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"client process failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_raw(snap: Snapshot, port: int, count: int) -> dict:
    from updmirror.client import user_agent
    clients = [{"tree": t, "platform": "x64", "agent": user_agent(t), "index": INDEX[t], "ask": "/dll/update.ver"}
               for t in (TREE_NAMES[i % 2] for i in range(count))]
    job = {"kind": "storm", "port": port, "sources": sources(4), "cap": 600, "rounds": 1, "clients": clients,
           "old_root": str(snap.old_indexes), "tree_root": str(snap.tree)}
    with Children([job]) as children:
        children.ready()
        children.say("go")
        [r] = children.results(900)
    span = r["end"] - r["begin"]
    return {"seconds": span, "done": len(r["times"]), "errors": sum(r["errors"].values()), "cpu": r["cpu"],
            "rss0": None, "peak": None, "threads": 1}


def child_main() -> None:
    job = json.loads(sys.stdin.read())
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    from updmirror.client import Client, Endpoint, Source, UpdateFailed

    source = Source.parse(job["url"])
    endpoints = {t: Endpoint(t, "x64", 1033, pinned=(job["key"],)) for t in TREE_NAMES}
    rss0 = _rss()
    peak = {"rss": rss0, "threads": threading.active_count()}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            peak["rss"] = max(peak["rss"], _rss())
            peak["threads"] = max(peak["threads"], threading.active_count() - 1)   # not this one

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    errors: dict[str, int] = {}

    async def go() -> float:
        async with Client(max_connections=job["pool"], stall_timeout=60) as client:
            async def one(folder: str, tree: str) -> None:
                try:
                    r = await client.update(folder, [source], endpoints[tree])
                    if r.status != "updated":
                        errors["not updated"] = errors.get("not updated", 0) + 1
                except UpdateFailed as exc:
                    kind = exc.failures[0].cause if exc.failures else "failed"
                    errors[kind] = errors.get(kind, 0) + 1

            begin = time.monotonic()
            await asyncio.gather(*(one(f, t) for f, t in job["folders"]))
            return time.monotonic() - begin

    cpu0 = time.process_time()
    seconds = asyncio.run(go())
    cpu = time.process_time() - cpu0
    stop.set()
    sampler.join(1)
    print(json.dumps({"seconds": seconds, "done": len(job["folders"]) - sum(errors.values()), "errors": errors,
                      "cpu": cpu, "rss0": rss0, "peak": peak["rss"], "threads": peak["threads"]}))


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- the parent ------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description="Many reference clients in one process, against the raw generator.")
    ap.add_argument("--clients", type=int, nargs="+", default=[500, 2000])
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--pool", type=int, default=256, help="the Client's connection pool (default 256)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_main()
        return 0
    raise_open_files()
    snap, templates, key = setup()
    for t in TREE_NAMES:
        files = client_downloads((snap.tree / INDEX[t]).read_bytes(), (snap.old_indexes / INDEX[t]).read_bytes(),
                                 INDEX[t], "x64")
        print(f"a {t} x64 client current at release 1 downloads {len(files)} files, "
              f"{sum(s for _, s in files) / 1e3:.0f} KB, after its index")
    print(machine_line(), flush=True)
    work = ROOT / "folders"
    all_rows = []
    for c in args.clients:
        results: dict[str, list[dict]] = {"client": [], "raw": []}
        for run in range(args.runs):
            for side in (("client", "raw") if run % 2 == 0 else ("raw", "client")):
                (ROOT / "logs").mkdir(exist_ok=True)
                with ours(snap, 1, ROOT / "logs") as server:
                    if side == "client":
                        folders = _folders(work, templates, c)
                        r = run_clients(server.port, folders, key, args.pool)
                        remove_tree(work)
                    else:
                        r = run_raw(snap, server.port, c)
                results[side].append(r)
                print(f"  C={c} run {run + 1} {side}: {c / r['seconds']:.0f} updates/s, "
                      f"CPU {r['cpu']:.1f} s, errors {r['errors']}"
                      + (f", peak RSS {r['peak'] / 2**20:.0f} MiB, {r['threads']} threads" if r["peak"] else ""),
                      flush=True)
        all_rows += _rows(c, results)
    print()
    print(table(["C", "side", "updates/s", "x raw", "CPU ms/update", "peak RSS MiB", "RSS KiB/client",
                 "threads", "errors"], all_rows))
    print(machine_line())
    return 0


def _folders(work: Path, templates: dict[str, Path], count: int) -> list[tuple[str, str]]:
    remove_tree(work)
    out = []
    for i in range(count):
        tree = TREE_NAMES[i % 2]
        dest = work / f"c{i:05d}"
        # Hard links: an update only ever links, renames and unlinks, never writes into a file;
        # but each folder has a lock of its own (flock locks the inode).
        shutil.copytree(templates[tree], dest, symlinks=True, copy_function=os.link,
                        ignore=shutil.ignore_patterns(".lock"))
        out.append((str(dest), tree))
    return out


def _rows(c: int, results: dict[str, list[dict]]) -> list[list[str]]:
    rate = {side: stats([c / r["seconds"] for r in runs]) for side, runs in results.items()}
    rows = []
    for side, runs in results.items():
        cpu = stats([1000 * r["cpu"] / c for r in runs])
        if runs[0]["peak"]:
            peak = f"{stats([r['peak'] / 2**20 for r in runs]).median:.0f}"
            per = f"{stats([(r['peak'] - r['rss0']) / 1024 / c for r in runs]).median:.1f}"
        else:
            peak = per = "-"
        errors = "/".join(str(r["errors"] if isinstance(r["errors"], int) else sum(r["errors"].values()))
                          for r in runs)
        rows.append([f"{c:,}", side, f"{rate[side].median:.0f} ({rate[side].low:.0f}..{rate[side].high:.0f})",
                     f"{rate[side].median / rate['raw'].median:.2f}", f"{cpu.median:.2f}", peak, per,
                     str(max(r["threads"] for r in runs)), errors])
    return rows


if __name__ == "__main__":
    sys.exit(main())
