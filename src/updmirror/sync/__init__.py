"""The sync room: plan (upstream index against the store), fetch, verify, publish.

    engine.py     one sync run under the store's lock, its report and record
    plan.py       what to fetch: the upstream index against the store
    tiers.py      an upper updmirror's manifest, read, checked and planned from
    announce.py   when to sync sooner: an upper updmirror's announcements
                  (`updmirror run` wakes its schedule with AnnounceWatcher)

The `updmirror sync` command (a sync, then the shared folder) is the
daemon room's: it composes this room with folder/.
"""

import importlib
from typing import Any

#: Loaded on first use: the engine pulls in aiohttp, which plan.py's users need not.
_LAZY = {"SyncReport": "engine", "check_extractor": "engine", "run_sync": "engine",
         "index_plans": "plan", "plan_files": "plan", "AnnounceWatcher": "announce",
         "announce_url": "announce"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = ["AnnounceWatcher", "SyncReport", "announce_url", "check_extractor", "index_plans", "plan_files",
           "run_sync"]
