"""`updmirror serve` and `updmirror run` (and, from the status module,
`status` and `passwd`)."""

from __future__ import annotations

import argparse
import asyncio
import logging

from updmirror import config

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    for name, func, text in (
        ("serve", serve_command, "serve the current snapshot over HTTP (port 2221)"),
        ("run", run_command, "serve, and sync on the schedule of [mirror] interval"),
    ):
        p = sub.add_parser(name, help=text, description=text + ". Stops gracefully on SIGTERM; "
                           "SIGHUP reloads the allow list, the htpasswd file and the access log. "
                           "Exit 2 on a configuration error (port in use, missing certificate, "
                           "unreadable htpasswd).")
        p.add_argument("-c", "--config", required=True, help="mirror.toml")
        p.add_argument("--workers", type=int, default=None,
                       help="worker processes (default: [http] workers, 0 = one per core)")
        p.set_defaults(func=func)
    from updmirror.serve import status_commands
    status_commands.register(sub)


def _quiet_access_logger(args: argparse.Namespace, cfg: config.Config) -> None:
    # Without [http] access_log, the access log goes to the console only with
    # --debug: a line per request would drown everything else at 10,000 clients.
    if cfg.http.access_log is None and not getattr(args, "debug", False):
        logging.getLogger("updmirror.access").setLevel(logging.WARNING)


def serve_command(args: argparse.Namespace) -> int:
    from updmirror.serve import master

    cfg = config.load(args.config)
    _quiet_access_logger(args, cfg)
    return master.serve(cfg, workers=args.workers)


def run_command(args: argparse.Namespace) -> int:
    from updmirror.folder import publish_after_sync
    from updmirror.serve import master
    from updmirror.serve.schedule import first_delay, sync_forever
    from updmirror.store.snapshots import Store
    from updmirror.sync.engine import check_extractor, run_sync

    cfg = config.load(args.config)
    check_extractor(cfg)
    _quiet_access_logger(args, cfg)
    current = Store(cfg.mirror.root).current()
    delay = first_delay(current.created if current else None, cfg.mirror.interval)

    async def sync_and_publish():
        report = await run_sync(cfg)
        await asyncio.to_thread(publish_after_sync, cfg, report.ok)   # logs its own failure
        return report

    async def schedule(stop: asyncio.Event) -> None:
        await sync_forever(sync_and_publish, cfg.mirror.interval, stop, delay=delay)

    return master.serve(cfg, workers=args.workers, schedule=schedule)
