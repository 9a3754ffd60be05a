"""`updmirror folder publish`: bring the shared folder up to date by hand
(a sync does it after each successful run when [folder] is set)."""

from __future__ import annotations

import argparse
import json
import sys

from updmirror import config
from updmirror.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("folder", help="the shared folder ([folder]): publish the current snapshot to it",
                       description="The shared folder that clients update from (\\\\mirror\\share).")
    folder_sub = p.add_subparsers(dest="folder_command", metavar="ACTION", required=True)
    pub = folder_sub.add_parser(
        "publish", help="copy the current snapshot to the shared folder now",
        description="Copy the store's current snapshot to [folder] (files first, then each index in "
                    "one rename; old files stay for [mirror] grace). Exit 0 when the folder holds "
                    "the current snapshot, 1 when it could not be brought up to date (clients keep "
                    "reading what was there), 2 on a configuration error.")
    pub.add_argument("-c", "--config", required=True, help="mirror.toml")
    pub.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    pub.set_defaults(func=publish_command)


def publish_command(args: argparse.Namespace) -> int:
    from updmirror.folder import publish_configured

    cfg = config.load(args.config)
    if not cfg.folder.enabled:
        raise ConfigError(f"{cfg.path}: [folder] sets neither path nor unc; there is no shared folder "
                          "to publish to")
    report = publish_configured(cfg, progress=not args.json)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print(f"updmirror: {report.message}")
    return 0
