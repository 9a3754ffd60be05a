"""`updmirror sync` (one run, then the shared folder; exit 0 only when the
mirror is complete and current) and `updmirror run` (serve, and that same
sync on a schedule, each in a child process of its own)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from updmirror import config
from updmirror.serve import SERVER_NOTE, add_server_arguments

log = logging.getLogger(__name__)


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

    text = ("serve, and sync on the schedule of [mirror] interval, and as soon as an upper "
            "updmirror announces a new snapshot")
    p = sub.add_parser("run", help=text, description=f"{text}. Each sync runs as its own process "
                       "('updmirror sync'); a failed one is logged and retried sooner while the last "
                       f"good snapshot stays served. {SERVER_NOTE}")
    add_server_arguments(p)
    p.set_defaults(func=run_command)


def run(args: argparse.Namespace) -> int:
    from updmirror.sync import check_extractor, run_sync

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


def run_command(args: argparse.Namespace) -> int:
    from updmirror.serve import quiet_access_logger, serve
    from updmirror.store import Store
    from updmirror.sync import AnnounceWatcher, announce_url, check_extractor

    from .process import sync_in_child
    from .schedule import first_delay, sync_forever

    cfg = config.load(args.config)
    check_extractor(cfg)
    debug, quiet = bool(getattr(args, "debug", False)), bool(getattr(args, "quiet", False))
    quiet_access_logger(cfg, debug=debug)
    current = Store(cfg.mirror.root).current()
    delay = first_delay(current.created if current else None, cfg.mirror.interval)
    config_path = Path(args.config).resolve()   # the same file for every sync, whatever the cwd

    def sync():
        return sync_in_child(config_path, debug=debug, quiet=quiet)

    def last_synced() -> float | None:
        newest = Store(cfg.mirror.root).current()
        return newest.created if newest else None

    async def schedule(stop: asyncio.Event) -> None:
        # An upper updmirror's announcements make a sync come sooner; the timer stays.
        wake = asyncio.Event()
        watcher = None
        if announce_url(cfg) is not None:
            watch = AnnounceWatcher(cfg, wake, last_synced=last_synced)
            watcher = asyncio.create_task(watch.run(stop))
        try:
            await sync_forever(sync, cfg.mirror.interval, stop, delay=delay, wake=wake)
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)

    return serve(cfg, workers=args.workers, schedule=schedule)
