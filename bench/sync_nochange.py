"""A sync when nothing changed upstream, on the largest repository the generator makes.

    python bench/sync_nochange.py                   # all 18 trees x 3 channels, 10 runs

Every tree the simulated vendor knows, in all three channels, all platforms
and languages: 69 indexes, some 10,000 index entries, about 4,300 distinct
files with seed 5 (the generator's catalog gives no more: see BENCHMARKS.md).
After one full sync, each run is `updmirror sync --json` again with nothing
changed upstream.

Figures: wall time of the whole command (what cron sees, Python start-up
included) and the time inside the run (the summary's finished - started);
requests, from the summary and from the vendor's own count. Goals (issue 5):
under one second, one request per index.

Baselines, measured in the same run:
- curl sending the same conditional requests (one GET per index with
  If-Modified-Since = that index's Last-Modified, all answered 304), with
  as many parallel connections as the sync: the network floor;
- `python -m updmirror --version`: Python start-up and the command line's
  imports, which every sync command pays;
- `python -c "import updmirror.sync.engine"`: the start-up a sync cannot
  avoid (the engine and aiohttp), without the other commands' modules;
- the first, full sync of the same repository, for scale.
"""

from __future__ import annotations

import argparse
import email.utils
import json
import os
import sys
from pathlib import Path

from common import MB, WORK, machine_line, mib, remove_tree, run_measured, stats, table, updmirror
from sync_vendor import (
    PASSWORD,
    USER,
    all_channels,
    cached_vendor,
    fingerprint,
    index_paths,
    legacy_key_id,
    listed_files,
    run_sync_json,
    vendor_requests,
    vendor_server,
    write_mirror_config,
)

from updmirror.eset.trees import TREES

GOAL_SECONDS = 1.0


def conditional_curl_config(cfg: Path, url: str, www: Path, paths: list[str]) -> Path:
    """One conditional GET per index (If-Modified-Since = its Last-Modified), bodies thrown away."""
    blocks = []
    for p in paths:
        since = email.utils.formatdate(int((www / p).stat().st_mtime), usegmt=True)
        blocks.append(
            "\n".join(
                [
                    f'user = "{USER}:{PASSWORD}"',
                    f'url = "{url}{p}"',
                    'output = "/dev/null"',
                    f'header = "If-Modified-Since: {since}"',
                    'write-out = "%{http_code}\\n"',
                ]
            )
        )
    cfg.write_text("\nnext\n".join(blocks) + "\n")
    os.chmod(cfg, 0o600)
    return cfg


def main() -> int:
    ap = argparse.ArgumentParser(description="A sync with nothing changed upstream, ~70 indexes.")
    ap.add_argument("--size-mb", type=float, default=128, help="repository size (default 128)")
    ap.add_argument("--seed", type=int, default=5, help="default 5: the seed with the most files")
    ap.add_argument("--trees", nargs="+", default=list(TREES), help="default: every tree")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    work = WORK / "nochange"
    remove_tree(work)
    work.mkdir(parents=True)
    root = cached_vendor(args.seed, args.size_mb, args.trees, timeout=args.timeout)
    channels = all_channels()
    indexes = index_paths(args.trees, channels)
    www = root / "www"
    listings = sum(len(listed_files(www, [p])) for p in indexes)
    files = listed_files(www, indexes)
    print(
        f"repository: {len(indexes)} indexes, {listings} index entries, {len(files)} distinct files, "
        f"{mib(sum(files.values()))}",
        flush=True,
    )

    server, url = vendor_server(root, work / "vendor.log")
    store = work / "store"
    config = write_mirror_config(
        work / "mirror.toml",
        url=url,
        store=store,
        trees=args.trees,
        channels=channels,
        signing_key=fingerprint(root), legacy_key_id=legacy_key_id(root),
        parallel=args.parallel,
    )
    curl_cfg = conditional_curl_config(work / "curl.cfg", url, www, indexes)
    curl_cmd = [
        "curl",
        "--silent",
        "--show-error",
        "--parallel",
        "--parallel-max",
        str(args.parallel),
        "--config",
        str(curl_cfg),
    ]
    runs = []
    with server:
        before = vendor_requests(url)
        first, first_summary = run_sync_json(config, timeout=args.timeout)
        if not first_summary["ok"] or first_summary["files_fetched"] != len(files):
            raise RuntimeError(f"the first sync did not mirror everything: {first_summary['message']}")
        first_vendor = vendor_requests(url) - before
        print(f"first (full) sync: {first.seconds:.1f} s, {first_summary['requests']} requests", flush=True)
        snapshots = (
            sorted(p.name for p in (store / "snapshots").iterdir()) if (store / "snapshots").is_dir() else []
        )
        for run in range(args.runs):
            row = {"run": run + 1}
            for side in (
                ("sync", "curl", "python", "engine") if run % 2 == 0 else ("engine", "python", "curl", "sync")
            ):
                before = vendor_requests(url)
                if side == "sync":
                    m, summary = run_sync_json(config, timeout=args.timeout)
                    if not summary["ok"] or summary["published"] is not None:
                        raise RuntimeError(
                            f"a sync with nothing changed published or failed: {summary['message']}"
                        )
                    row.update(
                        sync_s=m.seconds,
                        inside_s=summary["finished"] - summary["started"],
                        requests=summary["requests"],
                        fetched=summary["files_fetched"],
                        maxrss=m.maxrss,
                    )
                elif side == "curl":
                    m = run_measured(curl_cmd, timeout=args.timeout).check()
                    codes = m.stdout.split()
                    if codes != ["304"] * len(indexes):
                        raise RuntimeError(
                            f"curl's conditional requests got {sorted(set(codes))}, not all 304"
                        )
                    row["curl_s"] = m.seconds
                elif side == "python":
                    m = run_measured(updmirror("--version"), timeout=60).check()
                    row["python_s"] = m.seconds
                else:
                    m = run_measured(
                        [sys.executable, "-c", "import updmirror.sync.engine"], timeout=60
                    ).check()
                    row["engine_s"] = m.seconds
                row[f"{side}_vendor_requests"] = vendor_requests(url) - before
            runs.append(row)
            print(
                f"run {run + 1}: sync {row['sync_s']:.3f} s (inside {row['inside_s']:.3f} s), "
                f"{row['requests']} requests; curl {row['curl_s']:.3f} s; python start-up {row['python_s']:.3f} s",
                flush=True,
            )
        after = (
            sorted(p.name for p in (store / "snapshots").iterdir()) if (store / "snapshots").is_dir() else []
        )
    remove_tree(store)

    sync = stats(r["sync_s"] for r in runs)
    inside = stats(r["inside_s"] for r in runs)
    curl = stats(r["curl_s"] for r in runs)
    python = stats(r["python_s"] for r in runs)
    engine = stats(r["engine_s"] for r in runs)
    requests = stats(r["requests"] for r in runs)
    vendor = stats(r["sync_vendor_requests"] for r in runs)
    print()
    print(
        f"== sync with nothing changed: {len(indexes)} indexes, {listings} index entries, {len(files)} files, "
        f"{len(runs)} runs"
    )
    print(machine_line())
    print(
        table(
            ["figure", "median (min..max, spread)"],
            [
                ["sync, whole command (wall)", sync.show("{:.3f}", " s")],
                ["sync, inside the run (summary finished - started)", inside.show("{:.3f}", " s")],
                ["baseline: curl, same conditional GETs (all 304)", curl.show("{:.3f}", " s")],
                ["baseline: python -m updmirror --version (start-up)", python.show("{:.3f}", " s")],
                ["baseline: python -c 'import updmirror.sync.engine'", engine.show("{:.3f}", " s")],
                ["sync / curl (whole command)", f"{sync.median / curl.median:.1f}"],
                ["sync - start-up, vs curl", f"{max(sync.median - python.median, 0) / curl.median:.1f}"],
                ["requests (sync's summary)", requests.show("{:.0f}")],
                ["requests (vendor's count)", vendor.show("{:.0f}")],
                ["requests per index", f"{requests.median / len(indexes):.2f}"],
                ["sync peak RSS", stats(r["maxrss"] / MB for r in runs).show("{:.1f}", " MiB")],
                [
                    "for scale: the first, full sync",
                    f"{first.seconds:.1f} s, {first_summary['requests']} requests "
                    f"({first_vendor} at the vendor), {mib(first_summary['bytes_fetched'])}",
                ],
                [
                    "snapshots before / after the no-change runs",
                    f"{len(snapshots)} / {len(after)} (nothing published)",
                ],
            ],
        )
    )
    ok_time = sync.median < GOAL_SECONDS
    ok_req = requests.high == len(indexes) and vendor.high == len(indexes)
    print()
    print(
        f"goal: under {GOAL_SECONDS:g} s: {'MET' if ok_time else 'MISSED'} (median {sync.median:.3f} s whole "
        f"command, worst {sync.high:.3f} s"
        + ("" if ok_time else f", {sync.median / GOAL_SECONDS - 1:.0%} over")
        + ")"
    )
    print(
        f"goal: one request per index: {'MET' if ok_req else 'MISSED'} "
        f"(at most {requests.high:.0f} requests by the summary, {vendor.high:.0f} at the vendor, "
        f"for {len(indexes)} indexes)"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "runs": runs,
                    "first_s": first.seconds,
                    "indexes": len(indexes),
                    "listings": listings,
                    "files": len(files),
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
