"""Release the next build, the way the vendor does.

Every index moves one release on: modules that changed get new delta
levels and continuous deltas, a few get a new full module instead, the
engine's `versionid` (the database version) rises, the deferred channel now
lists what the regular channel listed before, and pre-release is ahead
again. All of it follows from the seed and the new release number.

Files come first, indexes after, so a client never reads an index whose
files are not there. A file no index lists any more stays one release
longer, so a mirror in the middle of a sync against the previous indexes
can finish; the release after, it is deleted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from updmirror.eset.updatever import UpdateVer

from . import keys
from .generate import GenerateReport, VendorState, release_plan, report, unique_files, write_release


@dataclass
class PublishReport:
    release: int
    #: index path -> (highest versionid before, after)
    versionids: dict[str, tuple[int, int]]
    added: list[str]           # files written by this release
    removed: list[str]         # files deleted (unreferenced for a whole release)
    kept: list[str]            # unreferenced now, kept for one more release
    repository: GenerateReport

    def summary(self) -> str:
        ids = sorted({after for _, after in self.versionids.values()})
        return "\n".join([
            f"released:     {self.release}",
            f"versionid:    now {ids[0]}..{ids[-1]} across {len(self.versionids)} indexes",
            f"files:        {len(self.added)} added, {len(self.kept)} no longer listed (kept one release), "
            f"{len(self.removed)} removed",
            self.repository.summary(),
        ])


def publish(root: Path) -> PublishReport:
    started = time.monotonic()
    root = Path(root)
    state = VendorState.load(root)
    www = root / "www"
    vendor = keys.load(root / "vendor-key.pem")
    other = keys.load(root / "other-key.pem") if state.dsa else None
    before = {path: highest_versionid(www / path) for path in state.indexes}

    state.release += 1
    plan = release_plan(state, state.release)
    written, written_bytes = write_release(root, state, plan, vendor, other)
    referenced = set(unique_files(plan))
    previous = set(state.referenced)
    older = set(state.previously_referenced)
    kept = previous - referenced
    removed = older - referenced - previous
    for path in sorted(removed):
        _remove(www, path)
    added = sorted(referenced - previous - older)
    state.previously_referenced = sorted(previous)
    state.referenced = sorted(referenced)
    state.save(root)
    after = {path: highest_versionid(www / path) for path in state.indexes}
    return PublishReport(
        release=state.release,
        versionids={p: (before.get(p, 0), after[p]) for p in after},
        added=added, removed=sorted(removed), kept=sorted(kept),
        repository=report(root, state, written, written_bytes, time.monotonic() - started),
    )


def _remove(www: Path, path: str) -> None:
    target = www / path.lstrip("/")
    target.unlink(missing_ok=True)
    # Drop the module folder when it is empty; never climb out of www.
    folder = target.parent
    while folder != www and www in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            break
        folder = folder.parent


def highest_versionid(index_path: Path) -> int:
    doc = UpdateVer.parse(index_path.read_bytes(), str(index_path))
    ids = [int(s.get("versionid")) for s in doc.sections if (s.get("versionid") or "").isdigit()]
    return max(ids, default=0)
