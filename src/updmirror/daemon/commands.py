"""`updmirror sync`: one run, exit 0 only when the mirror is complete and current."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from updmirror import config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sync", help="replicate the upstream repository once",
                       description="Fetch the configured indexes and files, verify them, and publish "
                                   "a new snapshot atomically, then to the shared folder if [folder] "
                                   "is set. Exit 0 when the mirror (and the folder) is complete and "
                                   "current, 1 when the sync or the folder failed (what clients see "
                                   "is unchanged), 2 on a configuration error.")
    p.add_argument("-c", "--config", required=True, help="mirror.toml")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    p.add_argument("--force", action="store_true",
                   help="publish even if an index drops more files than [mirror] max_drop allows, "
                        "and ask upstream unconditionally")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from updmirror.sync.engine import check_extractor, run_sync

    cfg = config.load(args.config)
    check_extractor(cfg)
    report = asyncio.run(run_sync(cfg, force=args.force, progress=not args.json))
    folder = folder_error = None
    if cfg.folder.enabled:
        from updmirror.folder import publish_after_sync
        folder, folder_error = publish_after_sync(cfg, report.ok, progress=not args.json)
    if args.json:
        data = report.to_dict()
        if folder or folder_error:
            data["folder"] = folder.to_dict() if folder else {"error": folder_error}
        json.dump(data, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    elif report.ok:
        print(f"updmirror: {report.message}")
        if folder:
            print(f"updmirror: {folder.message}")
    if not report.ok:
        print(f"updmirror: sync failed: {report.message}", file=sys.stderr)
        return 1
    if folder_error:
        print(f"updmirror: shared folder not updated: {folder_error}", file=sys.stderr)
        return 1
    return 0
