"""A sync after one vendor release: requests and bytes fetched against the minimum the release needs.

    python bench/sync_release.py                    # 256 MiB repository, 5 releases, two mirror configurations

Works on a hard-linked copy of a cached simulated vendor repository (the
cached one stays at release 1), served by `updmirror vendor serve` in a
process of its own. Each mirror configuration gets its own store and one
full sync; then, release after release, `updmirror vendor publish` and one
`updmirror sync --json` per configuration.

The minimum a release needs, computed independently of the sync's code
from the vendor's new indexes and the mirror's pool: one request per
configured index (each one changed), plus one request and its bytes for
each module file the configured indexes now list (after the platform and
language selection) that the mirror's pool does not hold. Ratios: the
sync's requests (its summary, and the vendor's own count) and module bytes
fetched, over that minimum; 1.00 is optimal.

Configurations:
- everything: every tree of the repository, all three channels, all platforms and languages;
- filtered: the first two trees, regular channel only, x64, English (1033).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import WORK, copy_tree_linked, machine_line, mib, remove_tree, stats, table, updmirror
from sync_vendor import (
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


def configurations(trees: list[str]) -> dict[str, dict]:
    return {
        "everything": dict(trees=trees, channels=all_channels(), platforms=[], languages=[]),
        "filtered": dict(trees=trees[:2], channels=["regular"], platforms=["x64"], languages=[1033]),
    }


def in_pool(store: Path, path: str, size: int) -> bool:
    try:
        return (store / "pool" / path.lstrip("/")).stat().st_size == size
    except OSError:
        return False


def minimum(www: Path, store: Path, conf: dict) -> dict:
    """What this release needs at least: the configured indexes, and the listed files the pool lacks."""
    paths = index_paths(conf["trees"], conf["channels"])
    listed = listed_files(www, paths, conf["platforms"], conf["languages"])
    lacking = {p: s for p, s in listed.items() if not in_pool(store, p, s)}
    return {
        "indexes": len(paths),
        "files": len(lacking),
        "bytes": sum(lacking.values()),
        "requests": len(paths) + len(lacking),
        "index_bytes": sum((www / p).stat().st_size for p in paths),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description="Requests and bytes of a sync after one vendor release.")
    ap.add_argument("--size-mb", type=float, default=256)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--trees", nargs="+", default=["ep11", "v16", "v5"])
    ap.add_argument("--releases", type=int, default=5, help="releases published one after the other")
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    work = WORK / "release"
    remove_tree(work)
    work.mkdir(parents=True)
    pristine = cached_vendor(args.seed, args.size_mb, args.trees, timeout=args.timeout)
    root = work / "vendor"
    copy_tree_linked(pristine, root)
    www = root / "www"
    server, url = vendor_server(root, work / "vendor.log")
    confs = configurations(args.trees)
    stores = {name: work / f"store-{name}" for name in confs}
    configs = {
        name: write_mirror_config(
            work / f"mirror-{name}.toml",
            url=url,
            store=stores[name],
            signing_key=fingerprint(root), legacy_key_id=legacy_key_id(root),
            parallel=args.parallel,
            **conf,
        )
        for name, conf in confs.items()
    }
    rows = []
    with server:
        for name, cfg in configs.items():
            m, summary = run_sync_json(cfg, timeout=args.timeout)
            if not summary["ok"]:
                raise RuntimeError(f"the first sync ({name}) failed: {summary['message']}")
            print(
                f"first sync ({name}): {summary['files_fetched']} files, {mib(summary['bytes_fetched'])}, "
                f"{m.seconds:.1f} s",
                flush=True,
            )
        for _ in range(args.releases):
            pub = subprocess.run(
                updmirror("vendor", "publish", "--root", str(root)),
                check=True,
                capture_output=True,
                text=True,
                timeout=args.timeout,
            )
            released = pub.stdout.split("released:")[1].split()[0]
            for name, cfg in configs.items():
                need = minimum(www, stores[name], confs[name])
                before = vendor_requests(url)
                m, summary = run_sync_json(cfg, timeout=args.timeout)
                if not summary["ok"]:
                    raise RuntimeError(
                        f"the sync ({name}) after release {released} failed: {summary['message']}"
                    )
                row = {
                    "release": int(released),
                    "config": name,
                    "seconds": m.seconds,
                    "requests": summary["requests"],
                    "vendor_requests": vendor_requests(url) - before,
                    "files": summary["files_fetched"],
                    "bytes": summary["bytes_fetched"],
                    "need_requests": need["requests"],
                    "need_files": need["files"],
                    "need_bytes": need["bytes"],
                    "indexes": need["indexes"],
                    "index_bytes": need["index_bytes"],
                }
                row["request_ratio"] = row["requests"] / row["need_requests"]
                row["vendor_request_ratio"] = row["vendor_requests"] / row["need_requests"]
                row["byte_ratio"] = row["bytes"] / row["need_bytes"] if row["need_bytes"] else float("nan")
                rows.append(row)
                print(
                    f"release {released} ({name}): {row['requests']} requests for a minimum of "
                    f"{row['need_requests']}, {mib(row['bytes'])} for a minimum of {mib(row['need_bytes'])}, "
                    f"{m.seconds:.1f} s",
                    flush=True,
                )
    for store in stores.values():
        remove_tree(store)
    remove_tree(root)

    print()
    print(
        f"== sync after one vendor release, {args.releases} releases in a row, {args.size_mb:g} MiB repository "
        f"(trees {' '.join(args.trees)})"
    )
    print(machine_line())
    print(
        table(
            [
                "release",
                "config",
                "indexes",
                "requests (vendor's)",
                "minimum",
                "files",
                "minimum",
                "module bytes",
                "minimum",
                "time",
            ],
            [
                [
                    r["release"],
                    r["config"],
                    r["indexes"],
                    f"{r['requests']} ({r['vendor_requests']})",
                    r["need_requests"],
                    r["files"],
                    r["need_files"],
                    mib(r["bytes"]),
                    mib(r["need_bytes"]),
                    f"{r['seconds']:.1f} s",
                ]
                for r in rows
            ],
        )
    )
    print()
    summary_rows = []
    for name in confs:
        mine = [r for r in rows if r["config"] == name]
        summary_rows += [
            [name, "requests / minimum", stats(r["request_ratio"] for r in mine).show("{:.2f}")],
            [
                name,
                "requests at the vendor / minimum",
                stats(r["vendor_request_ratio"] for r in mine).show("{:.2f}"),
            ],
            [
                name,
                "module bytes / minimum",
                stats(r["byte_ratio"] for r in mine if r["need_bytes"]).show("{:.3f}"),
            ],
            [
                name,
                "files fetched / files lacking",
                stats(r["files"] / max(r["need_files"], 1) for r in mine).show("{:.2f}"),
            ],
            [
                name,
                "index bytes per release (fetched whole, not in module bytes)",
                mib(stats(r["index_bytes"] for r in mine).median),
            ],
            [name, "time", stats(r["seconds"] for r in mine).show("{:.2f}", " s")],
        ]
    print(table(["config", "figure", "median (min..max, spread)"], summary_rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
