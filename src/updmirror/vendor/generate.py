"""Generate the simulated vendor's repository.

Layout of a vendor root::

    root/www/                  what the server serves, the vendor's own layout:
        eset_upd/ep11/dll/update.ver, eset_upd/ep11/pre/dll/update.ver,
        deferred/eset_upd/ep11/dll/update.ver, ...
        endpointwindowslatest-rel-sta/mod_001_loader_1234/em001_32_l0.dll.nup, ...
    root/vendor-key.pem        the signing key (private; never served)
    root/vendor-key.asc        its public key, armored: pin its fingerprint
    root/other-key.pem/.asc    the second (DSA) signer, whose key no file embeds
    root/vendor.json           state: seed, release, what each index lists

Everything is a function of the seed and the release number (see
`catalog`), so the same seed gives the same indexes and the same files,
byte for byte (the DSA signatures too: see `pgpwriter`).

The files are shaped like the vendor's real ones (`../shared/fixtures/
vendor-real/`, compared packet by packet in tests/vendor/test_real_shape.py):
a key packet, one-pass RSA and DSA packets, the literal data (a text block
starting with CRLF, then an inner blob that is itself a DSA-signed message),
the two signatures. Modules of 2010 are signed with DSA only and carry no
key packet; a few delta sections have no size=.

Files are streamed to disk (a gigabyte repository needs a few megabytes of
memory), each written once however many indexes list it, through a
temporary name so that a server reading the tree never sees half a file.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from updmirror.eset.trees import CHANNELS, TREES
from updmirror.eset.updatever import UpdateVer
from updmirror.files import atomic_file, write_atomically, write_json

from . import VendorError, catalog, keys, nupwriter
from .blobs import BlobReader
from .catalog import FileSpec, Flavour
from .nupwriter import SigningKey, build_nup

STATE_FILE = "vendor.json"
STATE_FORMAT = 2   # 2: files shaped like the real ones; DSA-only modules
DEFAULT_TREES = ("ep11", "v16", "v5")
MB = 1024 * 1024
#: Bytes of a `.nup` besides its module payload (key packet, text, signatures, inner framing), roughly.
NUP_OVERHEAD = 2000
#: The inner literal data is dated a little before the file (a few minutes in the real files).
INNER_EARLIER = 205
MIN_BLOB = 64


@dataclass
class VendorState:
    seed: int
    release: int
    size_mb: float
    trees: list[str]
    dsa: bool
    scale: float                      # bytes per unit of file weight
    fingerprint: str
    other_fingerprint: str | None
    key_created: int
    #: index path -> the files it lists (host-relative paths), for the current release.
    indexes: dict[str, list[str]] = field(default_factory=dict)
    #: files referenced by the current release's indexes, and by the previous release's.
    referenced: list[str] = field(default_factory=list)
    previously_referenced: list[str] = field(default_factory=list)
    format: int = STATE_FORMAT

    def save(self, root: Path) -> None:
        write_json(root / STATE_FILE, asdict(self))

    @classmethod
    def load(cls, root: Path) -> VendorState:
        path = root / STATE_FILE
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise VendorError(f"{path} does not exist: run 'updmirror vendor generate --root {root}' first") from None
        except (OSError, ValueError) as exc:
            raise VendorError(f"{path} cannot be read ({exc}); generate the repository again") from None
        if raw.get("format") != STATE_FORMAT:
            raise VendorError(f"{path} has format {raw.get('format')!r}, not {STATE_FORMAT}; generate again")
        return cls(**raw)


@dataclass
class GenerateReport:
    root: Path
    fingerprint: str
    release: int
    trees: list[str]
    #: index path -> number of module sections
    indexes: dict[str, int]
    files: int                 # files in www/ the current indexes list
    bytes: int                 # their total size
    written: int               # files written by this run
    written_bytes: int
    seconds: float

    def summary(self) -> str:
        sections = sorted(self.indexes.values())
        return "\n".join([
            f"vendor root:  {self.root}",
            f"fingerprint:  {self.fingerprint}",
            f"release:      {self.release}",
            f"trees:        {', '.join(self.trees)}",
            f"indexes:      {len(self.indexes)} ({sections[0]}..{sections[-1]} module sections each)",
            f"files:        {self.files} ({self.bytes / MB:.1f} MiB); written now: {self.written} "
            f"({self.written_bytes / MB:.1f} MiB)",
            f"time:         {self.seconds:.1f} s",
        ])


def generate(root: Path, *, seed: int = 1, size_mb: float = 8, trees: Iterable[str] = DEFAULT_TREES,
             dsa: bool = True, workers: int | None = None) -> GenerateReport:
    """Write a fresh repository for release 1 (its deferred channel: release 0).

    `dsa=False` leaves out what needs the legacy DSA key, unlike the vendor:
    the second signature, the inner blob's signature and the DSA-only modules.
    """
    started = time.monotonic()
    root = Path(root)
    trees = list(dict.fromkeys(trees))
    unknown = [t for t in trees if t not in TREES]
    if unknown or not trees:
        raise VendorError(f"unknown tree(s) {', '.join(unknown) or '(none given)'}; "
                          f"known: {', '.join(sorted(TREES))}")
    if size_mb <= 0:
        raise VendorError(f"--size-mb must be positive, not {size_mb}")
    _prepare_root(root)
    created = catalog.release_time(seed, -catalog.HISTORY) - 86400
    vendor = keys.vendor_key(seed, created)
    keys.save(vendor, root / "vendor-key.pem", root / "vendor-key.asc")
    other = None
    if dsa:
        other = keys.other_key(seed, created)
        keys.save(other, root / "other-key.pem", root / "other-key.asc")
    release = 1
    state = VendorState(seed=seed, release=release, size_mb=size_mb, trees=trees, dsa=dsa, scale=0.0,
                        fingerprint=vendor.fingerprint,
                        other_fingerprint=other.fingerprint if other else None, key_created=created)
    plan = release_plan(state, release)
    unique = unique_files(plan)
    total_weight = sum(f.weight for f in unique.values())
    state.scale = size_mb * MB / total_weight
    written, written_bytes = write_release(root, state, plan, vendor, other, workers=workers)
    state.referenced = sorted(unique)
    state.save(root)
    return report(root, state, written, written_bytes, time.monotonic() - started)


def _prepare_root(root: Path) -> None:
    if root.exists() and any(root.iterdir()) and not (root / STATE_FILE).exists():
        raise VendorError(f"{root} is not empty and holds no {STATE_FILE}; "
                          "give an empty or new folder so nothing else is overwritten")
    root.mkdir(parents=True, exist_ok=True)
    if (root / "www").exists():
        shutil.rmtree(root / "www")
    (root / "www").mkdir()


def all_flavours(trees: Iterable[str]) -> list[Flavour]:
    return [f for t in trees for f in catalog.flavours(t)]


def release_plan(state: VendorState, release: int) -> dict[str, tuple[Flavour, str, list[FileSpec]]]:
    """index path -> (flavour, channel, files it lists) for a release."""
    plan = {}
    for flavour in all_flavours(state.trees):
        for channel in CHANNELS:
            files = [f for f in catalog.index_files(state.seed, flavour, release, channel)
                     if state.dsa or not f.dsa_only]
            for path in flavour.index_paths(channel):
                plan[path] = (flavour, channel, files)
    return plan


def unique_files(plan) -> dict[str, FileSpec]:
    """Each file of a release plan once, by path (trees and indexes share files)."""
    out: dict[str, FileSpec] = {}
    for _, _, files in plan.values():
        for f in files:
            out.setdefault(f.path, f)
    return out


def blob_size(state: VendorState, spec: FileSpec) -> int:
    return max(MIN_BLOB, round(spec.weight * state.scale) - NUP_OVERHEAD)


def write_release(root: Path, state: VendorState, plan, vendor: SigningKey, other: SigningKey | None,
                  workers: int | None = None) -> tuple[int, int]:
    """Write the files `plan` lists that are not there yet, then its indexes.

    Returns (files written, bytes written). Indexes come last, so an index
    never names a file that is not on disk yet.
    """
    www = root / "www"
    todo = [f for f in unique_files(plan).values() if not (www / f.path.lstrip("/")).exists()]
    # Largest first: the pool stays busy to the end.
    todo.sort(key=lambda f: -f.weight)
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        sizes = list(pool.map(lambda f: write_nup(www, state, f, vendor, other), todo))
    for path, (flavour, channel, files) in plan.items():
        index = build_index(www, state, flavour, channel, files)
        shown = state.release - 1 if channel == "deferred" else state.release
        write_atomic(www / path, index, catalog.release_time(state.seed, shown))
    state.indexes = {path: [f.path for f in files] for path, (_, _, files) in plan.items()}
    return len(todo), sum(sizes)


def write_nup(www: Path, state: VendorState, spec: FileSpec, vendor: SigningKey,
              other: SigningKey | None) -> int:
    target = www / spec.path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    ts = spec.timestamp
    update_info = [("name", spec.section), *spec.items]
    blob, size = module_blob(state, spec, other)
    if spec.dsa_only:
        signer, embed, extra = other, False, ()
    else:
        signer, embed, extra = vendor, True, (other,) if other else ()
    with atomic_file(target, temporary=_temporary(target), mtime=ts, durable=False) as out:
        build_nup(out, key=signer, update_info=update_info, blob=(blob, size), literal_name=spec.literal_name,
                  data_name=spec.data_name, embed_key=embed, sig_version=3, extra_signers=extra, timestamp=ts)
    return target.stat().st_size


def module_blob(state: VendorState, spec: FileSpec, other: SigningKey | None):
    """(seekable file, length) of a file's inner blob: its module, signed like the vendor's."""
    items = dict(spec.items)
    year = time.gmtime(spec.timestamp).tm_year
    base = "" if items.get("level") in (None, "0") else f" (requires base module {items['base']})"
    text = (f"\r\n\r\nESET-MODULE - copyright (c) 1994-{year} ESET software\r\n\r\n"
            f"version: {items['version']}     \r\nbuild: {items['build']}\r\n"
            f"date (dd.mm.yyyy): {items['date']}\r\ntype: {items['type']} module update{base}\r\n").encode()
    size = blob_size(state, spec)
    payload = nupwriter.joined(text, BlobReader(state.seed, spec.path, size), size)
    if other is None:
        return payload, payload.length
    name = "NOD32.LIC" if spec.dsa_only else "module_inc.dat"
    inner = nupwriter.signed_module(payload, payload.length, other, name, spec.timestamp - INNER_EARLIER)
    return inner, inner.length


def build_index(www: Path, state: VendorState, flavour: Flavour, channel: str,
                files: list[FileSpec]) -> bytes:
    release = state.release - 1 if channel == "deferred" else state.release
    before, after = catalog.other_sections(state.seed, flavour, release)
    doc = UpdateVer()
    for name, items in before:
        doc.add_section(name, items)
    for f in files:
        size = [] if f.sizeless else [("size", str((www / f.path.lstrip("/")).stat().st_size))]
        doc.add_section(f.section, [*f.items, ("file", f.path), *size])
    for name, items in after:
        doc.add_section(name, items)
    return doc.to_bytes()


def write_atomic(path: Path, data: bytes, mtime: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data, temporary=_temporary(path), mtime=mtime, durable=False)


def _temporary(path: Path) -> Path:
    # .part: the vendor server never serves one, so a publish in progress stays invisible.
    # Not flushed (durable=False): the simulated vendor remakes every file from its seed.
    return path.with_name(path.name + ".part")


def report(root: Path, state: VendorState, written: int, written_bytes: int, seconds: float) -> GenerateReport:
    www = root / "www"
    referenced = set(state.referenced)
    total = sum((www / p.lstrip("/")).stat().st_size for p in referenced)
    return GenerateReport(
        root=root, fingerprint=state.fingerprint, release=state.release, trees=list(state.trees),
        indexes={p: len(files) for p, files in state.indexes.items()}, files=len(referenced), bytes=total,
        written=written, written_bytes=written_bytes, seconds=seconds,
    )
