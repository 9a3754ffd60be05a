"""The publisher's record of the shared folder, kept in the folder itself
(`.updmirror-folder.json`), so that it travels with the folder (a remote
share too) and says what in it is ours.

A *generation* is one snapshot as published to the folder: its indexes and
files. The newest published one is current; older ones are retired when the
next is published and kept (their files stay) for the grace period, so that
a client that read their index can finish. A generation still `pending` was
being written when a publish stopped: its files may be there, and one of its
indexes may already have been replaced, so it is treated as retired then.

Only names a generation lists, and folders the record says we created, are
ever replaced or removed: nothing else in the folder is touched.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from updmirror.errors import FolderError

from .layout import FileId

RECORD_NAME = ".updmirror-folder.json"
FORMAT = 1


@dataclass
class Generation:
    snapshot: str
    layout: str
    published: float
    retired: float | None = None
    pending: bool = True
    indexes: list[str] = field(default_factory=list)
    files: dict[str, FileId] = field(default_factory=dict)

    @property
    def names(self) -> set[str]:
        return set(self.indexes) | set(self.files)


@dataclass
class FolderRecord:
    generations: list[Generation] = field(default_factory=list)
    #: Folders we created (folder-relative), removed again once empty and unused.
    dirs: list[str] = field(default_factory=list)

    @classmethod
    def from_bytes(cls, data: bytes | None, where: str) -> FolderRecord:
        if data is None:
            return cls()
        try:
            raw = json.loads(data)
            if raw.get("format") != FORMAT:
                raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT}")
            gens = [Generation(**{**g, "files": {k: (v[0], int(v[1])) for k, v in g["files"].items()}})
                    for g in raw["generations"]]
            return cls(gens, list(raw.get("dirs", [])))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise FolderError(f"{where}: the publisher's record is damaged ({exc}); move the folder's "
                              "contents away (clients keep the files they have) and publish again") from None

    def to_bytes(self) -> bytes:
        data = {"format": FORMAT, "generations": [asdict(g) for g in self.generations],
                "dirs": sorted(set(self.dirs))}
        return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()

    @property
    def current(self) -> Generation | None:
        done = [g for g in self.generations if not g.pending and g.retired is None]
        return done[-1] if done else None

    def owned(self) -> set[str]:
        names: set[str] = set()
        for g in self.generations:
            names |= g.names
        return names

    def taken(self) -> dict[str, FileId]:
        """Case-folded file targets of every generation still recorded -> the file there."""
        out: dict[str, FileId] = {}
        for g in self.generations:
            for name, file in g.files.items():
                out[name.casefold()] = file
        return out

    def begin(self, gen: Generation, now: float) -> None:
        """Add `gen` as pending; an earlier pending one (a publish that stopped) is retired now."""
        for g in self.generations:
            if g.pending:
                g.pending, g.retired = False, now
        self.generations.append(gen)

    def finish(self, gen: Generation, now: float) -> None:
        """`gen`'s indexes are in place: it is current, and the one before it retired `now`
        (the grace period of its clients starts when its index was replaced)."""
        for g in self.generations:
            if g is not gen and g.retired is None:
                g.retired = now
        gen.pending = False

    def expire(self, now: float, grace: float) -> list[Generation]:
        """Drop and return generations retired at least `grace` seconds ago."""
        gone = [g for g in self.generations if g.retired is not None and now - g.retired >= grace]
        self.generations = [g for g in self.generations if g not in gone]
        return gone
