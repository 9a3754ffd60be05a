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
import logging
import time
from dataclasses import asdict, dataclass, field

from updmirror import redact
from updmirror.config import Config
from updmirror.errors import (
    ConfigError,
    FormatError,
    SignatureError,
    StoreError,
    UpdmirrorError,
    UpstreamError,
)
from updmirror.eset import nup, openpgp, rar
from updmirror.eset.modules import Module, Selection, database_version, modules, select
from updmirror.eset.trees import TREES, user_agent
from updmirror.eset.updatever import MAX_INDEX_BYTES, UpdateVer
from updmirror.httpfacts import parse_http_date
from updmirror.progress import Progress
from updmirror.store import Snapshot, Store, StoreLock
from updmirror.store.diskerror import disk_error, is_disk_error
from updmirror.store.tiers import TIER_MANIFEST_PATH, encode, tier_manifest
from updmirror.units import human_bytes
from updmirror.upstream import NotFoundError, open_upstream

from .plan import (
    PRODUCT_MIRROR,
    VENDOR,
    FilePlan,
    IndexPlan,
    drop_share,
    index_plans,
    layouts_to_try,
    lists_bare_names,
    plan_files,
    rewrite_index,
)
from .tiers import (
    TIER_STATE_FILE,
    UpperManifest,
    chain,
    check_download,
    check_index,
    check_modules,
    fetch_upper_manifest,
    plan_with_manifest,
    vendor_date,
)

log = logging.getLogger("updmirror.sync")

_HASH_CHUNK = 1024 * 1024


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
    #: Bytes (and files) read to compute a SHA-256: the files fetched, and a
    #: pool file only when no earlier sync recorded its digest.
    bytes_hashed: int = 0
    files_hashed: int = 0
    #: The upper mirror's manifest planned from (URL), None when upstream has none.
    upper_manifest: str | None = None
    #: Files kept because the manifest lists the size and SHA-256 recorded for them.
    files_confirmed_by_manifest: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    #: Files of the served snapshot whose signatures could not be checked
    #: ([verify] unverifiable = "accept"): {"section", "path", "key_ids"} each.
    unchecked: list[dict] = field(default_factory=list)

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
                store.record_run(report.to_dict())
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
        #: Files accepted this run or earlier without a signature check, by path.
        self.unchecked: dict[str, dict] = dict(self.current.manifest.get("unchecked", {})) if self.current else {}
        # Strict again after accepting: what is served must be looked at anew, not taken as unchanged.
        self.refetch = force or (cfg.verify.unverifiable == "refuse" and bool(self.unchecked))
        #: SHA-256 of pool files, recorded when they were verified: never computed twice.
        self.sha256: dict[str, str] = dict(self.current.manifest.get("sha256", {})) if self.current else {}
        self.upper: UpperManifest | None = None
        #: Each index's chain of mirrors as this run saw it, by path.
        self.hops: dict[str, list[dict]] = {}
        self.checked_at = time.time()

    async def run(self) -> None:
        upstream = open_upstream(self.cfg.upstream)
        try:
            indexes = await self._fetch_indexes(upstream)
            if self._may_have_manifest(indexes):
                indexes = await self._read_upper_manifest(upstream, indexes)
            self.checked_at = time.time()
            changed = [i for i in indexes if i.changed]
            self._guard_against_drops(changed)
            files = plan_files(changed, self.store.pool_file)
            if self.upper is not None:
                for plan in changed:
                    check_modules(self.upper, plan)
                files, confirmed = plan_with_manifest(files, self.upper, self._known_sha256, self._pool_size)
                self.report.files_confirmed_by_manifest = confirmed
            self._check_reused(files.reuse)
            self.report.files_reused = len(files.reuse)
            if files.fetch:
                await self._fetch_files(upstream, files)
        finally:
            self.report.requests = upstream.stats.requests
            await upstream.close()
        self._chain(indexes)
        self._record_indexes(indexes)
        if not changed and self.current is not None and {i.path for i in indexes} == set(self.previous):
            self.report.message = (f"mirror is current: {len(indexes)} index(es) unchanged upstream, "
                                   f"snapshot {self.current.id}" + self._unchecked_note(self.unchecked))
            self.report.unchecked = _listed(self.unchecked)
            return
        snapshot = self._publish(indexes)
        self.report.published = snapshot.id
        self._save_validators(indexes)
        removed = self.store.retire_and_clean(self.cfg.mirror.grace)
        self.store.clear_partials()
        self.report.message = (f"published snapshot {snapshot.id}: {len(changed)} index(es) changed, "
                               f"{self.report.files_fetched} file(s) fetched "
                               f"({human_bytes(self.report.bytes_fetched)}), {self.report.files_reused} re-used"
                               + (f", {len(removed)} old snapshot(s) removed" if removed else "")
                               + (f"; planned from {self.upper.url}" if self.upper else "")
                               + self._unchecked_note(snapshot.manifest.get("unchecked", {})))

    # -- indexes -------------------------------------------------------------
    async def _fetch_indexes(self, upstream) -> list[IndexPlan]:
        saved = self._load_validators()
        up = self.cfg.upstream
        layouts = layouts_to_try(up.layout, (e.get("layout") for e in saved.values() if isinstance(e, dict)))
        failures: list[BaseException] = []
        for attempt, layout in enumerate(layouts):
            if layout == PRODUCT_MIRROR and set(self.cfg.mirror.channels) != {"regular"}:
                found = f"{failures[0]}; " if attempt else ""
                raise UpdmirrorError(
                    f"{found}a product's own mirror serves one channel, at its URL: set [mirror] "
                    f"channels = [\"regular\"] to mirror {redact.url(up.url)} in that layout")
            plans = index_plans(up.url, self.cfg.mirror.trees, self.cfg.mirror.channels, layout)
            results = await asyncio.gather(*(self._fetch_index(upstream, p, saved) for p in plans),
                                           return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            for failure in failures:
                if not isinstance(failure, UpdmirrorError):
                    raise failure
            missing = [f for f in failures if isinstance(f, NotFoundError)]
            if attempt + 1 < len(layouts) and plans and len(missing) == len(plans):
                log.info("%s: no index in the %s layout (%s); trying the %s layout",
                         redact.url(up.url), layout, missing[0], layouts[attempt + 1])
                continue
            break
        if not failures and layout != VENDOR:
            log.info("%s is a product's own mirror: indexes at its root, chosen by User-Agent",
                     redact.url(up.url))
        self.report.errors.extend(str(f) for f in failures)
        if failures:
            raise UpdmirrorError(f"{len(failures)} of {len(plans)} index(es) failed; nothing was "
                                 f"published. First: {failures[0]}")
        return plans

    async def _fetch_index(self, upstream, plan: IndexPlan, saved: dict) -> None:
        old = saved.get(plan.state_key)
        # Ask conditionally only when what we would rebuild is already served.
        usable = (old and old.get("selection") == repr(self.selection) and plan.path in self.previous
                  and not self.refetch)
        agent = self.cfg.upstream.user_agent or user_agent(plan.tree, mirror=True)
        result = await upstream.fetch_index(plan.url, old.get("validators") if usable else None,
                                            MAX_INDEX_BYTES, user_agent=agent)
        plan.validators = result.validators
        if not result.changed:
            plan.changed = False
            plan.upstream_date = old.get("upstream_date") if old else None
            plan.upstream_format = old.get("format", "text") if old else "text"
            log.info("index %s (%s, %s): unchanged upstream", plan.path, plan.tree, plan.channel)
            return
        plan.upstream_format = "rar" if rar.is_rar(result.body) else "text"
        plan.body_sha256 = hashlib.sha256(result.body).hexdigest()
        plan.index = UpdateVer.parse(result.body, source=redact.url(plan.url))
        mods = modules(plan.index, plan.url, allowed_hosts=self.cfg.upstream.allowed_hosts,
                       source=redact.url(plan.url), root_url=self.cfg.upstream.url)
        if plan.layout == PRODUCT_MIRROR and self.cfg.upstream.layout == "auto" and not lists_bare_names(mods):
            # Not found in this layout: "auto" may still try the other one.
            vendor_path = TREES[plan.tree].index_paths(plan.channel)[0]
            raise NotFoundError(
                f"{redact.url(self.cfg.upstream.url + vendor_path)}: not found, and the index at "
                f"{redact.url(plan.url)} names files from the host's root, as no product's own mirror "
                f"does: the upstream is in the vendor's layout and does not publish tree {plan.tree}; "
                "check [mirror] trees, or set [upstream] layout")
        plan.modules = select(mods, self.selection)
        plan.upstream_date = parse_http_date(result.validators.get("last_modified"))
        log.info("index %s (%s, %s): version %s, %d of %d module files selected",
                 plan.path, plan.tree, plan.channel, database_version(plan.modules),
                 len(plan.modules), len(mods))

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
        source = redact.url(module.url)
        bound = self.cfg.mirror.max_file_size
        if module.size is not None and module.size > bound:
            raise FormatError(f"{source} [{module.section}]: size={module.size} is more than [mirror] "
                              f"max_file_size ({bound} bytes); raise it if the vendor's files really grew")
        # Without size= the file is still bounded, and then held to its own inner size and CRC.
        limit = module.size if module.size is not None else bound
        await upstream.download(module.url, partial, module.size, limit, on_bytes=progress.advance_bytes)
        size = partial.stat().st_size
        if module.size is not None and size != module.size:
            partial.unlink(missing_ok=True)
            raise FormatError(f"{source}: got {size} bytes, the index says size={module.size}")

        def verify_and_add() -> tuple[str, nup.UncheckedSignatureError | None]:
            # One pass over the bytes: the SHA-256 (recorded for every later sync
            # and lower mirror) is fed by what the verification reads anyway.
            unchecked = failure = None
            with open(partial, "rb") as f:
                reader = _Digesting(f)
                try:
                    nup.verify(reader, source, self.cfg.verify.signing_keys, self.extra_keys,
                               self.cfg.verify.legacy_key_ids)
                except nup.UncheckedSignatureError as exc:
                    unchecked = exc
                except FormatError as exc:
                    failure = exc
                digest = reader.hexdigest()
            # Bytes other than the upper mirror's manifest lists are that mirror's
            # error first, whatever else is wrong with them.
            check_download(self.upper, module, size, digest)
            if failure is not None:
                raise failure
            if unchecked is not None:
                self._refuse_unchecked(module, source, str(unchecked))
            # Only now, verified, may it enter the pool; in this worker thread,
            # since the store's fsync on the event loop would stall every download.
            self.store.add_to_pool(partial, module.path)
            return digest, unchecked

        try:
            digest, unchecked = await asyncio.to_thread(verify_and_add)
        except FormatError:
            partial.unlink(missing_ok=True)   # a bad file must be fetched anew, not resumed
            raise
        finally:
            self.report.files_hashed += 1
            self.report.bytes_hashed += size
        self.sha256[module.path] = digest
        if unchecked is not None:
            # In the pool already: a run killed before this line finds out from
            # the file's head (_check_reused) that it was accepted unchecked.
            self._accept_unchecked(module, source, unchecked.key_ids)
        self.report.files_fetched += 1
        self.report.bytes_fetched += size
        progress.file_done(size if module.size is None else 0)

    # -- an upper updmirror's manifest ---------------------------------------------
    def _may_have_manifest(self, indexes: list[IndexPlan]) -> bool:
        """Ask for a manifest only of an upstream in the vendor layout (an
        updmirror serves that one), and, while nothing changed, only of one
        that had a manifest at the last look: the vendor never has one."""
        if not indexes or any(p.layout != VENDOR for p in indexes):
            return False
        if any(p.changed for p in indexes):
            return True
        state = self._load_tier_state()
        return state.get("url") != redact.url(self.cfg.upstream.url) or state.get("present") is not False

    async def _read_upper_manifest(self, upstream, indexes: list[IndexPlan]) -> list[IndexPlan]:
        """Fetch and check the upper mirror's manifest (self.upper); the indexes
        read anew once when the upper mirror published between the requests."""
        why = None
        for attempt in range(2):
            upper = await fetch_upper_manifest(upstream, self.cfg.upstream.url)
            self._save_tier_state(upper is not None)
            if upper is None:
                return indexes
            why = next(filter(None, (check_index(upper, p, self._upstream_index_sha(p)) for p in indexes)),
                       None)
            if why is None:
                self.upper = upper
                self.report.upper_manifest = upper.url
                log.info("planning from the upper mirror's manifest %s (mirror %s, snapshot %s)",
                         upper.url, upper.mirror, upper.snapshot)
                return indexes
            if attempt == 0:
                log.info("%s: the upper mirror published meanwhile; reading its indexes again", why)
                indexes = await self._fetch_indexes(upstream)
        raise FormatError(f"{why}, twice in a row; the upper mirror's manifest and its indexes "
                          "disagree, so nothing was published")

    def _upstream_index_sha(self, plan: IndexPlan) -> str | None:
        if plan.changed:
            return plan.body_sha256
        return self.previous.get(plan.path, {}).get("upstream_sha256")

    def _known_sha256(self, path: str) -> str | None:
        """The recorded digest of a pool file; computed (once) for a file that
        an older version of the mirror verified without recording it."""
        digest = self.sha256.get(path)
        if digest is None and self._pool_size(path) is not None:
            digest = self._hash_counted(self.store.pool_file(path))
            self.sha256[path] = digest
        return digest

    def _pool_size(self, path: str) -> int | None:
        try:
            return self.store.pool_file(path).stat().st_size
        except OSError:
            return None

    def _hash_counted(self, path) -> str:
        self.report.files_hashed += 1
        self.report.bytes_hashed += path.stat().st_size
        return _sha256_of(path)

    def _chain(self, indexes: list[IndexPlan]) -> None:
        """Each index's hops: the upper mirror's chain and this mirror, now."""
        now = time.time()
        for plan in indexes:
            upper = self.upper.indexes.get(plan.path, {}).get("hops") if self.upper else None
            published: float | None = now
            if not plan.changed:
                before = self.previous.get(plan.path, {})
                hops = before.get("hops") or []
                published = (hops[-1].get("published_at") if hops else None) or before.get("confirmed")
            self.hops[plan.path] = chain(upper, self.cfg.mirror.name, self.checked_at, published)

    def _load_tier_state(self) -> dict:
        return self.store.load_state(TIER_STATE_FILE)

    def _save_tier_state(self, present: bool) -> None:
        # Written only when it changes: a sync that finds nothing new writes no state.
        state = {"url": redact.url(self.cfg.upstream.url), "present": present}
        if self._load_tier_state() != state:
            self.store.save_state(TIER_STATE_FILE, state)

    # -- files whose signatures cannot be checked (legacy DSA only) ----------------
    def _refuse_unchecked(self, module: Module, source: str, why: str) -> None:
        """Raise unless [verify] lets this file in without a signature check."""
        if self.cfg.verify.unverifiable == "refuse":
            raise SignatureError(f"{source} [{module.section}]: refused: {why.removeprefix(source + ': ')}; "
                                 '[verify] unverifiable = "refuse" (set it to "accept" to publish such '
                                 "files after their size and CRC-32 check)")
        if module.size is None:
            # Nothing but its own text would bound it: no exception for a file with no size= as well.
            raise SignatureError(f"{source} [{module.section}]: refused: {why.removeprefix(source + ': ')}, "
                                 "and its index section has no size= to hold it to")

    def _accept_unchecked(self, module: Module, source: str, key_ids: tuple[str, ...]) -> None:
        self.unchecked[module.path] = {"section": module.section, "key_ids": list(key_ids)}
        log.warning("%s [%s]: NOT SIGNATURE-CHECKED: signed only by the legacy DSA key %s, which the "
                    "mirror cannot check; accepted after its size and inner CRC-32 check "
                    '([verify] unverifiable = "accept")', source, module.section, ", ".join(key_ids))

    def _check_reused(self, reused: list[Module]) -> None:
        """Pool files taken as they are: which were accepted unchecked, and may they still be?"""
        served = {p for e in self.previous.values() for p, _ in e.get("file_list", [])}
        for module in reused:
            if module.path not in self.unchecked and module.path not in served:
                # In the pool from a run that did not publish: its head says how it was signed.
                embedded, signers = nup.announced_signers(self.store.pool_file(module.path), module.path)
                key_ids = nup.only_legacy_signatures(embedded, signers, self.cfg.verify.legacy_key_ids)
                if key_ids:
                    self.unchecked[module.path] = {"section": module.section, "key_ids": list(key_ids)}
            if module.path in self.unchecked:
                key_ids = self.unchecked[module.path]["key_ids"]
                self._refuse_unchecked(module, redact.url(module.url),
                                       f"signed only by the legacy DSA key {', '.join(key_ids)}, which the "
                                       "mirror cannot check (accepted by an earlier sync)")

    @staticmethod
    def _unchecked_note(unchecked: dict[str, dict]) -> str:
        if not unchecked:
            return ""
        sections = sorted({u["section"] for u in unchecked.values()})
        return (f"; {len(unchecked)} file(s) not signature-checked (legacy DSA only): "
                + ", ".join(sections[:8]) + (" ..." if len(sections) > 8 else ""))

    # -- publishing --------------------------------------------------------------
    def _publish(self, indexes: list[IndexPlan]) -> Snapshot:
        builder = self.store.new_snapshot()
        try:
            entries = []
            linked: set[str] = set()
            for plan in indexes:
                if plan.changed:
                    body = rewrite_index(plan.index, plan.modules)
                    # A section without size= is recorded with the size its file was verified at.
                    file_list = [(m.path, m.size if m.size is not None else
                                  self.store.pool_file(m.path).stat().st_size) for m in plan.modules]
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
                             file_list=file_list, confirmed=time.time(),
                             sha256=hashlib.sha256(body).hexdigest(),
                             upstream_sha256=(plan.body_sha256 if plan.changed
                                              else self.previous[plan.path].get("upstream_sha256")),
                             hops=self.hops[plan.path], vendor_date=vendor_date(self.upper, plan))
                entries.append(entry)
            unchecked = {p: u for p, u in sorted(self.unchecked.items()) if p in linked}
            digests = {p: self.sha256.get(p) or self._hash_counted(builder.dir / "tree" / p.lstrip("/"))
                       for p in sorted(linked)}
            created = time.time()
            builder.write(TIER_MANIFEST_PATH, encode(tier_manifest(builder.id, created, self.cfg.mirror.name,
                                                                   entries, digests)))
            manifest = {"indexes": entries, "files": len(linked),
                        "bytes": sum(e["bytes"] for e in entries), "unchecked": unchecked,
                        "sha256": digests, "mirror": self.cfg.mirror.name, "created": created}
            snapshot = builder.publish(manifest)
        except BaseException:
            builder.abandon()
            raise
        self.report.unchecked = _listed(unchecked)
        log.info("published snapshot %s: %d index(es), %d files", snapshot.id, len(entries), len(linked))
        return snapshot

    def _record_indexes(self, indexes: list[IndexPlan]) -> None:
        for plan in indexes:
            self.report.indexes.append({
                "tree": plan.tree, "channel": plan.channel, "path": plan.path,
                "upstream_url": redact.url(plan.url), "layout": plan.layout, "changed": plan.changed,
                "versionid": (database_version(plan.modules) if plan.changed
                              else self.previous[plan.path].get("versionid")),
                "files": len(plan.modules) if plan.changed else None,
                "hops": self.hops.get(plan.path),
            })

    # -- validators (conditional requests) ---------------------------------------
    def _load_validators(self) -> dict:
        return self.store.load_upstream_state()

    def _save_validators(self, indexes: list[IndexPlan]) -> None:
        data = {p.state_key: {"url": redact.url(p.url), "validators": p.validators,
                              "selection": repr(self.selection), "upstream_date": p.upstream_date,
                              "layout": p.layout, "format": p.upstream_format} for p in indexes}
        self.store.save_upstream_state(data)


class _Digesting:
    """A file as nup.verify reads it, feeding SHA-256 with every byte read."""

    def __init__(self, f):
        self._f = f
        self._sha256 = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._sha256.update(data)
        return data

    def hexdigest(self) -> str:
        """The file's SHA-256, reading what the verification left (nothing, for
        a well-formed file; the rest of one it refused)."""
        while chunk := self._f.read(_HASH_CHUNK):
            self._sha256.update(chunk)
        return self._sha256.hexdigest()


def _sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _listed(unchecked: dict[str, dict]) -> list[dict]:
    return [{"path": p, **u} for p, u in sorted(unchecked.items())]


def check_extractor(cfg: Config) -> None:
    """Refuse to start (`sync`, `run`) when the upstream served a RAR index at
    the last sync and no RAR extractor is installed: one line naming the package.

    The mirror knows from the store's upstream state (upstream.json), which
    records for each index whether it came plain or RAR-wrapped, stored or
    compressed alike: an upstream that sent RAR may compress the next one. A
    first sync that meets a compressed index without an extractor fails on it
    with the same line.
    """
    prefix = redact.url(cfg.upstream.url)
    for entry in Store(cfg.mirror.root).load_upstream_state().values():
        url = entry.get("url") if isinstance(entry, dict) else None
        if entry and entry.get("format") == "rar" and isinstance(url, str) and url.startswith(prefix):
            if rar.extractor() is None:
                raise rar.missing_extractor(f"the upstream served {url} RAR-wrapped at the last sync")
            return


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
