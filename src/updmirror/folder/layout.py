"""Where each index and file of a snapshot goes in the shared folder, as pure
decisions (no I/O: the caller reads the snapshot and hands over bytes).

Two layouts:

- ``flat``, what a vendor product's own mirror writes and its clients read
  from a share: a tree's index where its clients look (``update.ver``, or
  ``dll/update.ver``) with the files it lists beside it under bare names
  (``file=em001_32_l0.nup``). With several trees, one subfolder per tree
  (``ep11/dll/update.ver``); other channels below that (``pre/``,
  ``deferred/``: our choice, the vendor documents no share layout for them).
- ``vendor``: the snapshot's own paths (``eset_upd/ep11/dll/update.ver`` and
  host-relative ``file=/...``), for clients configured with the vendor's
  layout and for lower mirrors.

In the vendor layout a name is the file's repository path, so the one case
the grace period cannot cover is the vendor replacing a file in place (same
path, new size): the folder then holds the new file, as the store's current
snapshot does. The vendor's paths carry the build number, so this is rare.

A bare name must never change meaning while a client may still read it: the
vendor reuses a file's name in each new module folder (`mod_001_..._2121/
em001_32_l0.nup`, then `..._2122/em001_32_l0.nup`), so a name already given to
another file of a live generation gets a short digest of its path added.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field

from updmirror.errors import FormatError
from updmirror.eset.modules import is_module_section, modules
from updmirror.eset.updatever import UpdateVer

LAYOUTS = ("flat", "vendor")
#: The folder of each channel below its tree's folder, in the flat layout.
CHANNEL_FOLDERS = {"regular": "", "pre-release": "pre/", "deferred": "deferred/"}
#: Names the publisher keeps for itself; no file may take one.
RESERVED_PREFIX = ".updmirror"
INDEX_NAME = "update.ver"

#: A file as the snapshot has it: its repository path and its size.
FileId = tuple[str, int]


@dataclass
class PlannedIndex:
    """One index of the snapshot and the files it lists, placed in the folder."""

    target: str                      # folder-relative, "/"-separated: "dll/update.ver"
    source: str                      # the snapshot's index path: "eset_upd/ep11/dll/update.ver"
    data: bytes                      # the index as clients of the folder read it
    files: dict[str, FileId] = field(default_factory=dict)   # target -> file


def index_target(layout: str, tree: str, channel: str, index_path: str, several_trees: bool) -> str:
    """Where the index at snapshot path `index_path` goes in the folder."""
    if layout == "vendor":
        return index_path.lstrip("/")
    dll = "dll/" if index_path.endswith("dll/" + INDEX_NAME) else ""
    base = f"{tree}/" if several_trees else ""
    return f"{base}{CHANNEL_FOLDERS[channel]}{dll}{INDEX_NAME}"


def plan_index(layout: str, target: str, source: str, index_bytes: bytes,
               size_of: Callable[[str], int | None], taken: dict[str, FileId]) -> PlannedIndex:
    """Place one index and its files.

    `size_of(path)` is the size of the snapshot's file at repository path
    `path` (None when it lacks one); `taken` maps folder targets (case-folded, since SMB
    names are case-insensitive) to the file a live generation keeps there,
    and receives this index's choices.
    """
    index = UpdateVer.parse(index_bytes, source=source)
    listed = modules(index, "http://mirror/" + source.lstrip("/"), source=source)
    planned = PlannedIndex(target, source, index_bytes)
    folder = posixpath.dirname(target)
    names: dict[str, str] = {}
    for module in listed:
        if module.path in names:
            continue
        size = size_of(module.path)
        if size is None:
            raise FormatError(f"snapshot index {source} lists {module.path}, which the snapshot "
                              "does not hold; run 'updmirror sync' to repair the store")
        file = (module.path, size)
        if layout == "vendor":
            name = module.path.lstrip("/")
        else:
            name = _flat_name(folder, file, taken)
        taken[name.casefold()] = file
        names[module.path] = name
        planned.files[name] = file
    if layout == "flat":
        planned.data = _bare_names(index, {p: posixpath.basename(n) for p, n in names.items()}, listed)
    return planned


def _flat_name(folder: str, file: FileId, taken: dict[str, FileId]) -> str:
    path, _size = file
    base = posixpath.basename(path)
    reserved = base.startswith(RESERVED_PREFIX) or base.casefold() == INDEX_NAME
    candidates = [] if reserved else [base]
    stem, dot, ext = base.partition(".")
    digest = hashlib.sha256(f"{path}\0{file[1]}".encode()).hexdigest()
    candidates += [f"{stem}-{digest[:n]}{dot}{ext}" for n in (8, 16, 64)]
    for candidate in candidates:
        target = posixpath.join(folder, candidate)
        if taken.get(target.casefold(), file) == file:
            return target
    raise FormatError(f"no free name for {path} in the shared folder's {folder or 'top'} folder")


def _bare_names(index: UpdateVer, names: dict[str, str], listed) -> bytes:
    """The index with each module's `file=` replaced by its bare name beside the index."""
    by_section = {m.section.upper(): names[m.path] for m in listed}
    out = UpdateVer.parse(index.to_bytes())
    for section in out.sections:
        if is_module_section(section):
            name = by_section.get(section.name.upper())
            if name is not None and section.get("file") != name:
                section.set("file", name)
    return out.to_bytes()
