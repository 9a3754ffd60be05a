"""The shared folder: the store's current snapshot published to a folder
that Samba shares read-only (or to a remote share over SMB), for clients
that update from `\\\\mirror\\share`. A consumer of the store, like the
HTTP server: it reads snapshots and writes only inside the folder.
"""

from __future__ import annotations

import logging

from updmirror.config import Config
from updmirror.errors import UpdmirrorError
from updmirror.store import Store, StoreLock

from .publish import FolderReport, open_folder, publish

__all__ = ["FolderReport", "open_folder", "publish", "publish_after_sync", "publish_configured"]

log = logging.getLogger("updmirror.folder")


def publish_configured(cfg: Config, *, progress: bool = False) -> FolderReport:
    """Publish to the folder [folder] names, under the store's lock (one
    writer at a time, and no sync cleans the store while files are copied)."""
    store = Store(cfg.mirror.root)
    with StoreLock(store.root):
        folder = open_folder(cfg.folder)
        try:
            return publish(store, folder, cfg.folder.layout, cfg.mirror.grace, progress=progress)
        finally:
            folder.close()


def publish_after_sync(cfg: Config, sync_ok: bool, *,
                       progress: bool = False) -> tuple[FolderReport | None, str | None]:
    """After a sync: publish to [folder] if it is set and the sync succeeded.

    Returns (report, None) when published, (None, why) when publishing
    failed (logged; the folder's clients keep what they had), (None, None)
    when there was nothing to do. Never raises for a folder problem.
    """
    if not (sync_ok and cfg.folder.enabled):
        return None, None
    try:
        return publish_configured(cfg, progress=progress), None
    except UpdmirrorError as exc:
        log.error("shared folder not updated: %s", exc)
        return None, str(exc)
