"""The sync room: plan (upstream index against the store), fetch, verify, publish.

    engine.py     one sync run under the store's lock, its report and record
    plan.py       what to fetch: the upstream index against the store

The `updmirror sync` command (a sync, then the shared folder) is the
daemon room's: it composes this room with folder/.
"""

from .engine import SyncReport, check_extractor, run_sync

__all__ = ["SyncReport", "check_extractor", "run_sync"]
