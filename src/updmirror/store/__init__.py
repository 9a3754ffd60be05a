"""The store: verified files, immutable snapshots, one current pointer."""

from .lock import StoreLock
from .snapshots import Snapshot, SnapshotBuilder, Store

__all__ = ["Snapshot", "SnapshotBuilder", "Store", "StoreLock"]
