"""Initial sync of a ~1 GB simulated repository, against curl downloading the same files.

    python bench/sync_initial.py                    # 1024 MiB, 3 runs
    python bench/sync_initial.py --size-mb 64 --runs 2 --profile
    python bench/sync_initial.py --compare-cmd "env X=1 /path/python -m updmirror"   # a candidate sync

Starts the simulated vendor (`updmirror vendor serve`, a process of its own)
on a free loopback port, then per run, each from an empty folder:

- sync: `updmirror sync --json` of every tree and channel the repository has
  (all platforms, all languages): fetch, check size, inner filesize and CRC
  and the RSA signature of every file, fsync it, publish a snapshot;
- baseline: curl fetching the same indexes and files with as many parallel
  connections as the sync's `parallel`, verifying nothing, syncing nothing
  to disk.

The two alternate in order from run to run, so a slow spell on this shared
machine does not always hit the same side. Goals (issue 5): sync time at
most 1.2x the baseline's; the sync's peak RSS under 150 MB.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import MB, WORK, cpu_seconds, machine_line, mib, remove_tree, run_measured, stats, table
from sync_vendor import (
    all_channels,
    cached_vendor,
    curl_config,
    curl_parallel,
    fingerprint,
    folder_bytes,
    index_paths,
    legacy_key_id,
    listed_files,
    run_sync_json,
    vendor_requests,
    vendor_root,
    vendor_server,
    write_mirror_config,
)

GOAL_RATIO = 1.2
GOAL_RSS = 150 * 1000 * 1000  # "150 MB"


def main() -> int:
    ap = argparse.ArgumentParser(description="Initial sync vs a parallel curl download of the same files.")
    ap.add_argument("--size-mb", type=float, default=1024, help="repository size (default 1024)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--trees", nargs="+", default=["ep11", "v16", "v5"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--parallel", type=int, default=8, help="the sync's [upstream] parallel, and curl's")
    ap.add_argument("--timeout", type=float, default=1800, help="limit per command, seconds")
    ap.add_argument(
        "--profile", action="store_true", help="then one more sync under py-spy: where the time goes"
    )
    ap.add_argument(
        "--remove-repository",
        action="store_true",
        help="delete the generated vendor repository at the end (it is kept for reuse otherwise)",
    )
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    ap.add_argument(
        "--sync-cmd",
        help="run this instead of 'python -m updmirror' for the sync (a candidate "
        'change), e.g. "env X=1 /path/python /path/runner.py"',
    )
    ap.add_argument(
        "--compare-cmd",
        help="also run this sync command (a candidate change) in every run, alternating with the "
        "standard sync and curl, and report it beside them",
    )
    args = ap.parse_args()

    work = WORK / "initial"
    remove_tree(work)
    work.mkdir(parents=True)
    root = cached_vendor(args.seed, args.size_mb, args.trees, timeout=args.timeout)
    channels = all_channels()
    indexes = index_paths(args.trees, channels)
    files = listed_files(root / "www", indexes)
    want_bytes = sum(files.values())
    print(
        f"repository: {len(indexes)} indexes, {len(files)} files, {mib(want_bytes)}; "
        f"parallel {args.parallel}",
        flush=True,
    )

    server, url = vendor_server(root, work / "vendor.log")
    store, downloads = work / "store", work / "curl"
    config = write_mirror_config(
        work / "mirror.toml",
        url=url,
        store=store,
        trees=args.trees,
        channels=channels,
        signing_key=fingerprint(root), legacy_key_id=legacy_key_id(root),
        parallel=args.parallel,
    )
    curl_cfg = curl_config(work / "curl.cfg", url, [*indexes, *files], downloads)
    results = []
    with server:
        for run in range(args.runs):
            row = {"run": run + 1}
            sides = ["sync", "curl"] + (["candidate"] if args.compare_cmd else [])
            order = sides[run % len(sides) :] + sides[: run % len(sides)]  # each side goes first in turn
            for side in order:
                before = vendor_requests(url)
                vendor_cpu = cpu_seconds(server.pid)
                if side == "sync":
                    remove_tree(store)
                    m, summary = run_sync_json(config, timeout=args.timeout, sync_cmd=args.sync_cmd)
                    if (
                        not summary["ok"]
                        or summary["files_fetched"] != len(files)
                        or summary["bytes_fetched"] != want_bytes
                    ):
                        raise RuntimeError(
                            f"the sync did not fetch the whole repository: {summary['message']}"
                        )
                    row.update(
                        sync_s=m.seconds,
                        sync_maxrss=m.maxrss,
                        sync_tree_rss=m.tree_peak_rss,
                        sync_requests=summary["requests"],
                        sync_files=summary["files_fetched"],
                        sync_bytes=summary["bytes_fetched"],
                        sync_inside_s=summary["finished"] - summary["started"],
                        sync_cpu=m.cpu_seconds,
                    )
                elif side == "candidate":
                    remove_tree(store)
                    m, summary = run_sync_json(config, timeout=args.timeout, sync_cmd=args.compare_cmd)
                    if not summary["ok"] or summary["bytes_fetched"] != want_bytes:
                        raise RuntimeError(
                            f"the candidate did not fetch the whole repository: {summary['message']}"
                        )
                    row.update(candidate_s=m.seconds, candidate_maxrss=m.maxrss, candidate_cpu=m.cpu_seconds)
                else:
                    remove_tree(downloads)
                    m = run_measured(curl_parallel(curl_cfg, args.parallel), timeout=args.timeout).check()
                    n, size = folder_bytes(downloads)
                    if n != len(files) + len(indexes):
                        raise RuntimeError(f"curl fetched {n} files, not {len(files) + len(indexes)}")
                    row.update(
                        curl_s=m.seconds,
                        curl_maxrss=m.maxrss,
                        curl_files=n,
                        curl_bytes=size,
                        curl_cpu=m.cpu_seconds,
                    )
                    # Not part of the baseline: what writing curl's files to disk would add (sync -f = syncfs).
                    row["flush_s"] = run_measured(
                        ["sync", "-f", str(downloads)], timeout=args.timeout
                    ).seconds
                row[f"{side}_vendor_cpu"] = cpu_seconds(server.pid) - vendor_cpu
                row[f"{side}_vendor_requests"] = vendor_requests(url) - before
            row["ratio"] = row["sync_s"] / row["curl_s"]
            if args.compare_cmd:
                row["candidate_ratio"] = row["candidate_s"] / row["curl_s"]
            results.append(row)
            print(
                f"run {run + 1}: sync {row['sync_s']:.1f} s, curl {row['curl_s']:.1f} s, "
                f"ratio {row['ratio']:.2f}, sync peak RSS {mib(row['sync_maxrss'])}",
                flush=True,
            )
            remove_tree(downloads)
        profile = None
        if args.profile:
            from sync_profile import record, summarize

            remove_tree(store)
            raw = work / "sync-profile.txt"
            if record(config, raw, timeout=args.timeout, sync_cmd=args.sync_cmd):
                profile = summarize(raw)
    remove_tree(store)
    remove_tree(downloads)
    cost = verification_cost(root / "www", files, fingerprint(root), legacy_key_id(root))

    report(args, results, len(indexes), len(files), want_bytes, max(files.values()), cost, profile)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "runs": results,
                    "profile": profile,
                    "verification_cost": cost,
                },
                indent=1,
            )
        )
    if args.remove_repository:
        remove_tree(vendor_root(args.seed, args.size_mb, args.trees))
    return 0


def verification_cost(www: Path, files: dict[str, int], key: str, legacy: str) -> dict:
    """CPU seconds to verify every file once in one thread, as the sync does
    (nup.verify with the sync's pinned and legacy keys), and the share of each
    digest it really computes.

    Which digests and over how many bytes is counted, not assumed: a second
    pass feeds nup.verify counting wrappers of the hashes it asks openpgp for
    (only those of signatures a candidate key can check: the vendor's DSA/SHA-1
    signature, whose key is in no file, is not hashed) and of its CRC-32; then
    each digest is timed alone over its count of bytes.
    """
    import hashlib
    import zlib
    from collections import Counter

    from updmirror.eset import nup, openpgp

    def verify_all() -> None:
        for path in files:
            try:
                nup.verify(www / path.lstrip("/"), path, [key], (), [legacy])
            except nup.UncheckedSignatureError:
                pass  # a legacy-only file: checked for size and CRC, as the sync accepts it

    started = time.process_time()
    verify_all()
    out: dict = {"verify": time.process_time() - started}

    fed: Counter[str] = Counter()

    class Counted:
        def __init__(self, name: str, inner):
            self.name, self.inner = name, inner

        def update(self, data) -> None:
            fed[self.name] += len(data)
            self.inner.update(data)

        def __getattr__(self, attr):
            return getattr(self.inner, attr)

    class CountedZlib:
        def __getattr__(self, attr):
            return getattr(zlib, attr)

        @staticmethod
        def crc32(data, value=0):
            fed["CRC-32"] += len(data)
            return zlib.crc32(data, value)

    real_new_hash, real_zlib = openpgp.new_hash, nup.zlib
    openpgp.new_hash = lambda algo: Counted(openpgp.hash_name(algo), real_new_hash(algo))
    nup.zlib = CountedZlib()
    try:
        verify_all()
    finally:
        openpgp.new_hash, nup.zlib = real_new_hash, real_zlib

    block = b"\x5a" * MB
    out["digests"] = {}
    for name, count in sorted(fed.items(), key=lambda item: (item[0] == "CRC-32", item[0])):
        step = (lambda b: zlib.crc32(b)) if name == "CRC-32" else hashlib.new(name.lower()).update
        started = time.process_time()
        for _ in range(max(1, count // MB)):
            step(block)
        out["digests"][name] = {"bytes": count, "seconds": time.process_time() - started}
    return out


def report(
    args,
    results: list[dict],
    n_indexes: int,
    n_files: int,
    want_bytes: int,
    largest: int,
    cost: dict,
    profile: str | None,
) -> None:
    sync = stats(r["sync_s"] for r in results)
    curl = stats(r["curl_s"] for r in results)
    ratio = stats(r["ratio"] for r in results)
    rss = stats(r["sync_maxrss"] / MB for r in results)
    tree_rss = stats(r["sync_tree_rss"] / MB for r in results)
    median_ratio = sync.median / curl.median
    print()
    print(
        f"== initial sync of {mib(want_bytes)} ({n_files} files, {n_indexes} indexes), "
        f"{len(results)} runs, parallel {args.parallel}"
    )
    if args.sync_cmd:
        print(f"sync command: {args.sync_cmd} (a candidate, not 'python -m updmirror')")
    print(machine_line())
    print(
        table(
            ["run", "sync s", "curl s", "sync/curl", "sync peak RSS", "sync requests", "curl requests"],
            [
                [
                    r["run"],
                    f"{r['sync_s']:.1f}",
                    f"{r['curl_s']:.1f}",
                    f"{r['ratio']:.2f}",
                    mib(r["sync_maxrss"]),
                    r["sync_requests"],
                    r["curl_vendor_requests"],
                ]
                for r in results
            ],
        )
    )
    print()
    print(
        table(
            ["figure", "median (min..max, spread)"],
            [
                ["sync time (updmirror sync, whole command)", sync.show("{:.1f}", " s")],
                ["baseline time (curl --parallel, no verification)", curl.show("{:.1f}", " s")],
                ["sync / baseline, median of the per-run ratios", ratio.show("{:.2f}")],
                ["sync / baseline, ratio of the medians", f"{median_ratio:.2f}"],
                ["sync throughput", f"{want_bytes / MB / sync.median:.1f} MiB/s"],
                ["baseline throughput", f"{want_bytes / MB / curl.median:.1f} MiB/s"],
                [
                    "CPU of the sync process (user + system)",
                    stats(r["sync_cpu"] for r in results).show("{:.1f}", " s"),
                ],
                [
                    "CPU of the vendor server during the sync",
                    stats(r["sync_vendor_cpu"] for r in results).show("{:.1f}", " s"),
                ],
                ["CPU of curl", stats(r["curl_cpu"] for r in results).show("{:.1f}", " s")],
                [
                    "CPU of the vendor server during curl",
                    stats(r["curl_vendor_cpu"] for r in results).show("{:.1f}", " s"),
                ],
                [
                    "not in the baseline: flushing curl's files to disk after it (sync -f)",
                    stats(r["flush_s"] for r in results).show("{:.1f}", " s"),
                ],
                ["sync peak RSS (kernel maxrss of the process)", rss.show("{:.1f}", " MiB")],
                ["sync peak RSS (polled, process tree)", tree_rss.show("{:.1f}", " MiB")],
                [
                    "files / bytes fetched by the sync",
                    f"{results[0]['sync_files']} / {results[0]['sync_bytes']}",
                ],
                ["largest file", mib(largest)],
                [
                    "CPU to verify every file once, one thread (of which " + " / ".join(cost["digests"]) + ")",
                    f"{cost['verify']:.1f} s ("
                    + " / ".join(f"{d['seconds']:.1f}" for d in cost["digests"].values()) + " s)",
                ],
                [
                    "requests seen by the vendor: sync / curl",
                    f"{results[0]['sync_vendor_requests']} / {results[0]['curl_vendor_requests']}",
                ],
            ],
        )
    )
    print()
    ok_time = ratio.median <= GOAL_RATIO
    ok_rss = rss.high * MB < GOAL_RSS
    print(
        f"goal: sync at most {GOAL_RATIO}x the baseline: {'MET' if ok_time else 'MISSED'} "
        f"(median ratio {ratio.median:.2f}"
        + ("" if ok_time else f", {ratio.median / GOAL_RATIO - 1:.0%} over")
        + ")"
    )
    print(
        f"goal: peak RSS under 150 MB: {'MET' if ok_rss else 'MISSED'} (highest {rss.high * MB / 1e6:.0f} MB)"
    )
    if args.compare_cmd:
        cand = stats(r["candidate_s"] for r in results)
        print()
        print(f"candidate, measured in the same runs: {args.compare_cmd}")
        print(
            table(
                ["figure", "median (min..max, spread)"],
                [
                    ["candidate sync time", cand.show("{:.1f}", " s")],
                    [
                        "candidate / baseline, median of the per-run ratios",
                        stats(r["candidate_ratio"] for r in results).show("{:.2f}"),
                    ],
                    [
                        "candidate / standard sync, median of the per-run ratios",
                        stats(r["candidate_s"] / r["sync_s"] for r in results).show("{:.2f}"),
                    ],
                    [
                        "CPU of the candidate (user + system)",
                        stats(r["candidate_cpu"] for r in results).show("{:.1f}", " s"),
                    ],
                    [
                        "candidate peak RSS",
                        stats(r["candidate_maxrss"] / MB for r in results).show("{:.1f}", " MiB"),
                    ],
                ],
            )
        )
    if profile:
        print()
        print("profile of one more sync (py-spy, all threads):")
        print(profile)
    print(f"(finished {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")


if __name__ == "__main__":
    sys.exit(main())
