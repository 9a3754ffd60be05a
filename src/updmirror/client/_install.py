"""The folder a client installs into (DIR): what it holds, and one atomic step to change it.

Layout::

    current -> versions/<id>        the installed version; one symlink, replaced by rename(2)
    versions/<id>/installed.json    what is installed: modules, database version, source, when
    versions/<id>/update.ver        the index this version was planned from
    versions/<id>/modules/<key>     the module files; hard links shared between versions
    staging/parts/<key>.part        downloads in progress, resumed by the next update
    staging/verified/<key>          downloaded and verified, waiting to be installed
    .lock                           held (flock) by the one update running on DIR

What DIR holds is what `current` points to, and nothing else: a version is
built complete beside it (files linked, records written and flushed) and
becomes installed by the one rename of `current`. A client killed at any
moment leaves `current` on the old version or on the new one, never between;
what it leaves in `staging/` and `versions/` is cleaned (or, for verified
downloads, re-used) by the next update.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from updmirror.files import HeldError, fsync_path, hold_lock, point_symlink, replace_durably, write_new

from ._errors import DestinationError
from ._plan import Held

INSTALLED = "installed.json"
INDEX = "update.ver"
FORMAT = 1


@dataclass(frozen=True)
class Installed:
    """What DIR holds (all None and empty for a folder never updated)."""

    id: str | None = None
    tree: str | None = None
    platform: str | None = None
    language: int | None = None
    #: The database version (highest versionid of the installed index's modules).
    version: int | None = None
    source: str | None = None
    #: The source's validators for that index (ETag, Last-Modified): a cheap "unchanged?" next time.
    validators: dict[str, str] = field(default_factory=dict)
    installed_at: float | None = None
    modules: tuple[Held, ...] = ()
    folder: Path | None = None

    def module_file(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / "modules" / key

    def to_json(self) -> dict:
        return {"format": FORMAT, "id": self.id, "tree": self.tree, "platform": self.platform,
                "language": self.language, "version": self.version, "source": self.source,
                "validators": self.validators, "installed_at": self.installed_at,
                "modules": [m.to_json() for m in self.modules]}


class Destination:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).absolute()
        self.current_link = self.root / "current"
        self.versions = self.root / "versions"
        self.parts = self.root / "staging" / "parts"
        self.verified = self.root / "staging" / "verified"

    # -- reading -----------------------------------------------------------

    def installed(self) -> Installed:
        """What `current` points to; an empty Installed when nothing is installed yet."""
        try:
            target = os.readlink(self.current_link)
        except FileNotFoundError:
            return Installed()
        except OSError as exc:
            raise DestinationError(f"{self.current_link}: cannot read ({exc.strerror}); is {self.root} "
                                   "a folder this client installed into?") from None
        folder = (self.root / target).resolve()
        if not folder.is_relative_to(self.versions.resolve()):
            raise DestinationError(f"{self.current_link} points outside {self.versions}; "
                                   "not a folder this client manages")
        try:
            raw = json.loads((folder / INSTALLED).read_text("utf-8"))
            return Installed(
                id=folder.name, tree=raw.get("tree"), platform=raw.get("platform"),
                language=raw.get("language"), version=raw.get("version"), source=raw.get("source"),
                validators=dict(raw.get("validators") or {}), installed_at=raw.get("installed_at"),
                modules=tuple(Held.from_json(m) for m in raw.get("modules", [])), folder=folder)
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise DestinationError(f"{folder / INSTALLED}: unreadable ({exc}); remove {self.current_link} "
                                   "to start over with a full update") from None

    # -- staging -----------------------------------------------------------

    def part_file(self, key: str) -> Path:
        return self.parts / f"{key}.part"

    def verified_file(self, key: str, size: int | None) -> Path | None:
        """A verified download of `key` left by an earlier attempt, if it has the right size."""
        path = self.verified / key
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return path if size is None or st.st_size == size else None

    def accept(self, part: Path, key: str) -> Path:
        """Move a verified download out of parts/: flushed first, so a version never links an empty file."""
        self.verified.mkdir(parents=True, exist_ok=True)
        target = self.verified / key
        # The folder is flushed with the version that links the file (install).
        replace_durably(part, target, sync_folder=False)
        return target

    # -- the one step ------------------------------------------------------

    def install(self, new: Installed, index: bytes, files: dict[str, Path]) -> Installed:
        """Make `new` (its modules found in `files` by key) the installed version, atomically."""
        self.versions.mkdir(parents=True, exist_ok=True)
        vid = self._next_id()
        building = self.versions / f".new-{vid}"
        shutil.rmtree(building, ignore_errors=True)
        (building / "modules").mkdir(parents=True)
        for m in new.modules:
            os.link(files[m.key], building / "modules" / m.key)
        record = Installed(**{**new.__dict__, "id": vid, "folder": self.versions / vid})
        write_new(building / INDEX, index)
        write_new(building / INSTALLED, json.dumps(record.to_json(), indent=1, sort_keys=True).encode())
        fsync_path(building / "modules")
        fsync_path(building)
        os.rename(building, self.versions / vid)
        fsync_path(self.versions)
        # The moment DIR changes.
        point_symlink(self.current_link, f"versions/{vid}", self.root / f".current-{vid}")
        return record

    def clean(self, *, staging: bool) -> None:
        """Remove what no version needs: versions other than the current one, builds
        left by a killed update, and (after a success) the staging area."""
        current = self.installed().id
        for entry in self._entries(self.versions):
            if entry.name != current:
                shutil.rmtree(entry, ignore_errors=True)
        for entry in self._entries(self.root):
            if entry.name.startswith(".current-") and entry.is_symlink():
                entry.unlink(missing_ok=True)
        if staging:
            shutil.rmtree(self.root / "staging", ignore_errors=True)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One update at a time on DIR; the kernel releases the lock of a killed client."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = hold_lock(self.root / ".lock")
        except HeldError as exc:
            raise DestinationError(f"another update (pid {exc.holder}) is running on {self.root}; "
                                   "wait for it to finish") from None
        except OSError as exc:
            raise DestinationError(f"{self.root}: cannot use the folder ({exc.strerror}); "
                                   "check that it is writable") from None
        try:
            yield
        finally:
            os.close(fd)

    def _next_id(self) -> str:
        numbers = [int(e.name.removeprefix(".new-")) for e in self._entries(self.versions)
                   if e.name.removeprefix(".new-").isdigit()]
        return f"{max(numbers, default=0) + 1:06d}"

    @staticmethod
    def _entries(folder: Path) -> list[Path]:
        try:
            return list(folder.iterdir())
        except FileNotFoundError:
            return []
