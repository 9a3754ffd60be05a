"""One sync run: fetch the indexes, plan, fetch and verify files, publish.

The order is what keeps clients safe (architecture invariants 1 to 3):
nothing reaches the pool before it verifies, and nothing reaches clients
before every file of every index in the new snapshot is in the pool.
A run that fails anywhere publishes nothing and leaves the current snapshot
as it was; verified files stay in the pool for the next run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from email.utils import parsedate_to_datetime

from updmirror import redact
from updmirror.config import Config
from updmirror.errors import ConfigError, FormatError, StoreError, UpdmirrorError, UpstreamError
from updmirror.eset import nup, openpgp
from updmirror.eset.modules import Module, Selection, database_version, modules, select
from updmirror.eset.trees import TREES
from updmirror.eset.updatever import MAX_INDEX_BYTES, UpdateVer
from updmirror.store import Snapshot, Store, StoreLock
from updmirror.store.diskerror import disk_error, is_disk_error
from updmirror.store.records import append_run
from updmirror.store.snapshots import fsync_path
from updmirror.units import human_bytes
from updmirror.upstream import open_upstream

from .plan import FilePlan, IndexPlan, drop_share, plan_files, rewrite_index
from .progress import Progress

log = logging.getLogger("updmirror.sync")

VALIDATORS_FILE = "upstream.json"
#: A module file with no `size=` is still bounded.
MAX_FILE_BYTES = 1 << 30


@dataclass
class SyncReport:
    ok: bool = False
    message: str = ""
    started: float = field(default_factory=time.time)
    finished: float | None = None
    published: str | None = None        # id of the snapshot made current, if any
    indexes: list[dict] = field(default_factory=list)
    files_fetched: int = 0
    bytes_fetched: int = 0
    files_reused: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


async def run_sync(cfg: Config, *, force: bool = False, progress: bool = False) -> SyncReport:
    """Run one sync under the store's lock; the report says how it went.

    Raises LockedError when another sync holds the store. Any other failure
    is in the report (`ok` False, `message`, `errors`) and in the run record.
    """
    store = Store(cfg.mirror.root)
    try:
        store.ensure()
    except OSError as exc:
        raise disk_error(exc) from None
    report = SyncReport()
    with StoreLock(store.root):
        try:
            await Sync(cfg, store, report, force=force, progress=progress).run()
            report.ok = True
        except (UpdmirrorError, OSError) as exc:
            if isinstance(exc, OSError):
                # A write under the store failed (full, failing, read-only disk).
                log.debug("sync: a write failed", exc_info=True)
                exc = disk_error(exc)
            report.ok = False
            report.message = str(exc)
            if str(exc) not in report.errors:
                report.errors.append(str(exc))
        finally:
            report.finished = time.time()
            try:
                append_run(store.state, report.to_dict())
            except StoreError as exc:
                report.message += f"; and the run could not be recorded: {exc}"
    level = logging.INFO if report.ok else logging.ERROR
    log.log(level, "sync %s: %s", "done" if report.ok else "FAILED", report.message)
    return report


class Sync:
    def __init__(self, cfg: Config, store: Store, report: SyncReport, *, force: bool, progress: bool):
        self.cfg = cfg
        self.store = store
        self.report = report
        self.force = force
        self.show_progress = progress
        self.selection = Selection(platforms=cfg.mirror.platforms, languages=cfg.mirror.languages,
                                   types=cfg.mirror.types)
        self.current = store.current()
        #: The current snapshot's indexes by path: what a run compares against.
        self.previous: dict[str, dict] = {
            e["path"]: e for e in (self.current.manifest.get("indexes", []) if self.current else [])}
        self.extra_keys = _load_key_files(cfg)

    async def run(self) -> None:
        upstream = open_upstream(self.cfg.upstream)
        try:
            indexes = await self._fetch_indexes(upstream)
            changed = [i for i in indexes if i.changed]
            self._guard_against_drops(changed)
            files = plan_files(changed, self.store.pool_file)
            self.report.files_reused = len(files.reuse)
            if files.fetch:
                await self._fetch_files(upstream, files)
        finally:
            self.report.requests = upstream.stats.requests
            await upstream.close()
        self._record_indexes(indexes)
        if not changed and self.current is not None and {i.path for i in indexes} == set(self.previous):
            self.report.message = (f"mirror is current: {len(indexes)} index(es) unchanged upstream, "
                                   f"snapshot {self.current.id}")
            return
        snapshot = self._publish(indexes)
        self.report.published = snapshot.id
        self._save_validators(indexes)
        removed = self.store.retire_and_clean(self.cfg.mirror.grace)
        _clear_partials(self.store)
        self.report.message = (f"published snapshot {snapshot.id}: {len(changed)} index(es) changed, "
                               f"{self.report.files_fetched} file(s) fetched "
                               f"({human_bytes(self.report.bytes_fetched)}), {self.report.files_reused} re-used"
                               + (f", {len(removed)} old snapshot(s) removed" if removed else ""))

    # -- indexes -------------------------------------------------------------
    async def _fetch_indexes(self, upstream) -> list[IndexPlan]:
        saved = self._load_validators()
        selection_key = repr(self.selection)
        plans = []
        for tree_name in self.cfg.mirror.trees:
            tree = TREES[tree_name]
            for channel in self.cfg.mirror.channels:
                for path in tree.index_paths(channel):
                    plans.append(IndexPlan(tree_name, channel, path, self.cfg.upstream.url + path))

        async def one(plan: IndexPlan) -> None:
            old = saved.get(plan.url)
            # Ask conditionally only when what we would rebuild is already served.
            usable = (old and old.get("selection") == selection_key and plan.path in self.previous
                      and not self.force)
            result = await upstream.fetch_index(plan.url, old.get("validators") if usable else None,
                                                MAX_INDEX_BYTES)
            plan.validators = result.validators
            if not result.changed:
                plan.changed = False
                plan.upstream_date = old.get("upstream_date") if old else None
                log.info("index %s (%s, %s): unchanged upstream", plan.path, plan.tree, plan.channel)
                return
            plan.index = UpdateVer.parse(result.body, source=redact.url(plan.url))
            mods = modules(plan.index, plan.url, allowed_hosts=self.cfg.upstream.allowed_hosts,
                           source=redact.url(plan.url), root_url=self.cfg.upstream.url)
            plan.modules = select(mods, self.selection)
            plan.upstream_date = _http_date(result.validators.get("last_modified"))
            log.info("index %s (%s, %s): version %s, %d of %d module files selected",
                     plan.path, plan.tree, plan.channel, database_version(plan.modules),
                     len(plan.modules), len(mods))

        results = await asyncio.gather(*(one(p) for p in plans), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures:
            if not isinstance(failure, UpdmirrorError):
                raise failure
            self.report.errors.append(str(failure))
        if failures:
            raise UpdmirrorError(f"{len(failures)} of {len(plans)} index(es) failed; nothing was "
                                 f"published. First: {failures[0]}")
        return plans

    def _guard_against_drops(self, changed: list[IndexPlan]) -> None:
        if self.force:
            return
        for plan in changed:
            before = self.previous.get(plan.path)
            if not before:
                continue
            share = drop_share((f[0] for f in before.get("file_list", [])), (m.path for m in plan.modules))
            if share > self.cfg.mirror.max_drop:
                raise UpdmirrorError(
                    f"{redact.url(plan.url)}: the new index would drop {share:.0%} of the mirror's "
                    f"{len(before.get('file_list', []))} files for {plan.tree} ({plan.channel}), more than "
                    f"max_drop = {self.cfg.mirror.max_drop:.0%}; nothing was published. If upstream "
                    "really shrank, run 'updmirror sync --force'")

    # -- files -----------------------------------------------------------------
    async def _fetch_files(self, upstream, files: FilePlan) -> None:
        progress = Progress(self.show_progress, len(files.fetch), files.fetch_bytes)
        semaphore = asyncio.Semaphore(self.cfg.upstream.parallel)
        failures: list[str] = []
        disk: list[OSError] = []

        async def one(module: Module) -> None:
            async with semaphore:
                if len(failures) >= 8 or disk:
                    return  # enough to report; stop hammering a broken upstream (or disk)
                try:
                    await self._fetch_one(upstream, module, progress)
                except (UpdmirrorError, OSError) as exc:
                    if is_disk_error(exc):
                        disk.append(exc)  # every file would meet it: said once, below
                        return
                    msg = str(exc) if isinstance(exc, UpdmirrorError) else \
                        f"{module.path}: {exc.strerror or exc}"
                    failures.append(msg)
                    log.error("%s", msg)

        with progress:
            await asyncio.gather(*(one(m) for m in files.fetch))
        if disk:
            raise disk_error(disk[0], disk[0].filename or self.store.root)
        if failures:
            self.report.errors.extend(failures)
            raise UpstreamError(f"{len(failures)} of {len(files.fetch)} file(s) could not be fetched and "
                                f"verified; nothing was published. First: {failures[0]}")

    async def _fetch_one(self, upstream, module: Module, progress: Progress) -> None:
        partial = self.store.partial_file(hashlib.sha256(module.path.encode()).hexdigest()[:32])
        limit = module.size if module.size is not None else MAX_FILE_BYTES
        source = redact.url(module.url)
        await upstream.download(module.url, partial, module.size, limit, on_bytes=progress.advance_bytes)
        size = partial.stat().st_size
        if module.size is not None and size != module.size:
            partial.unlink(missing_ok=True)
            raise FormatError(f"{source}: got {size} bytes, the index says size={module.size}")

        def verify_and_flush() -> None:
            nup.verify(partial, source, self.cfg.verify.signing_keys, self.extra_keys)
            # On disk before the rename makes it "verified"; flushed in this
            # worker thread, since an fsync on the event loop stalls every download.
            fsync_path(partial)

        try:
            await asyncio.to_thread(verify_and_flush)
        except FormatError:
            partial.unlink(missing_ok=True)   # a bad file must be fetched anew, not resumed
            raise
        target = self.store.pool_file(module.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, target)
        self.report.files_fetched += 1
        self.report.bytes_fetched += size
        progress.file_done()

    # -- publishing --------------------------------------------------------------
    def _publish(self, indexes: list[IndexPlan]) -> Snapshot:
        builder = self.store.new_snapshot()
        try:
            entries = []
            linked: set[str] = set()
            for plan in indexes:
                if plan.changed:
                    body = rewrite_index(plan.index, plan.modules)
                    file_list = [(m.path, m.size) for m in plan.modules]
                    for path, _size in file_list:
                        if path not in linked:
                            builder.link(path, self.store.pool_file(path))
                            linked.add(path)
                    entry = {"versionid": database_version(plan.modules)}
                else:
                    # Carried over from the current snapshot: same bytes, same inodes.
                    before = self.previous[plan.path]
                    body = (self.current.tree / plan.path).read_bytes()
                    file_list = [tuple(f) for f in before["file_list"]]
                    for path, _size in file_list:
                        if path not in linked:
                            builder.link(path, self.current.tree / path.lstrip("/"))
                            linked.add(path)
                    entry = {"versionid": before.get("versionid")}
                builder.write(plan.path, body)
                entry.update(tree=plan.tree, channel=plan.channel, path=plan.path,
                             upstream_url=redact.url(plan.url), upstream_date=plan.upstream_date,
                             files=len(file_list), bytes=sum(s or 0 for _, s in file_list),
                             file_list=file_list, confirmed=time.time())
                entries.append(entry)
            manifest = {"indexes": entries, "files": len(linked),
                        "bytes": sum(e["bytes"] for e in entries)}
            snapshot = builder.publish(manifest)
        except BaseException:
            builder.abandon()
            raise
        log.info("published snapshot %s: %d index(es), %d files", snapshot.id, len(entries), len(linked))
        return snapshot

    def _record_indexes(self, indexes: list[IndexPlan]) -> None:
        for plan in indexes:
            self.report.indexes.append({
                "tree": plan.tree, "channel": plan.channel, "path": plan.path,
                "upstream_url": redact.url(plan.url), "changed": plan.changed,
                "versionid": (database_version(plan.modules) if plan.changed
                              else self.previous[plan.path].get("versionid")),
                "files": len(plan.modules) if plan.changed else None,
            })

    # -- validators (conditional requests) ---------------------------------------
    def _load_validators(self) -> dict:
        try:
            return json.loads((self.store.state / VALIDATORS_FILE).read_text("utf-8"))
        except (OSError, ValueError):
            return {}

    def _save_validators(self, indexes: list[IndexPlan]) -> None:
        data = {p.url: {"validators": p.validators, "selection": repr(self.selection),
                        "upstream_date": p.upstream_date} for p in indexes}
        tmp = self.store.state / (VALIDATORS_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), "utf-8")
        os.replace(tmp, self.store.state / VALIDATORS_FILE)


def _load_key_files(cfg: Config) -> list:
    keys = []
    for path in cfg.verify.key_files:
        try:
            keys.extend(openpgp.load_key_file(path, f"[verify] key_files: {path}"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the signing key file listed in [verify] key_files "
                              f"({exc.strerror})") from None
        except (openpgp.PGPError, FormatError) as exc:
            raise ConfigError(f"{path}: not an OpenPGP public key file ({exc})") from None
    return keys


def _clear_partials(store: Store) -> None:
    for part in store.partial.glob("*.part"):
        part.unlink(missing_ok=True)


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
