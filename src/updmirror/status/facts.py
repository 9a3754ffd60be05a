"""What an administrator (or monitoring) needs to know about the mirror.

`collect_status` gathers the facts once, as plain data; the status page
(page.py), `/status.json` (here), `/metrics` (metrics.py) and `updmirror
status` (commands.py) are four renderings of the same facts, so they cannot
disagree.

"Stale" means: no successful sync has confirmed an index as current within
two sync intervals (one missed run is tolerated, two are not), or the last
sync failed. The age of an index is the time since a successful sync last
found it to be what upstream serves; that is the mirror's delay behind
upstream at worst. Its age against the vendor counts from when the
vendor-facing mirror of its chain last saw it (hops.py): an index whose
chain is older than the same limit is stale too, and says which mirror is.
"""

from __future__ import annotations

import json
import time
from typing import Any

from updmirror import redact
from updmirror.config import Config
from updmirror.eset.trees import mirrored_indexes
from updmirror.httpfacts import CONTENT_TYPES
from updmirror.store.records import read_runs
from updmirror.store.snapshots import MANIFEST, Snapshot, Store, load_snapshot

from .hops import chain_facts, chain_reason, number

#: How many recent sync runs the facts carry.
RUNS_SHOWN = 10
#: How many error lines of one run are shown (a run can fail on many files).
ERRORS_SHOWN = 5

JSON_CONTENT_TYPE = CONTENT_TYPES[".json"]
HTML_CONTENT_TYPE = CONTENT_TYPES[".html"]

FRESH, STALE, FAILED = "fresh", "stale", "failed"
HEADLINES = {FRESH: "fresh", STALE: "STALE", FAILED: "LAST SYNC FAILED"}
LAST_SYNC_FAILED = "the last sync failed"


def collect_status(store: Store, cfg: Config, counters: dict, now: float | None = None) -> dict:
    """The facts, as JSON-ready data (times are unix seconds)."""
    now = time.time() if now is None else now
    scrub = _scrubber(cfg)
    snapshot, broken = current_snapshot(store)
    runs = read_runs(store.state, RUNS_SHOWN)
    last_run = runs[0] if runs else None
    last_success = next((r for r in runs if r.get("ok")), None)
    stale_after = 2 * cfg.mirror.interval

    indexes = [_index_facts(entry, snapshot, runs, last_run, now, stale_after, scrub)
               for entry in _expected_indexes(cfg, snapshot)]

    problems = []
    if last_run is not None and not last_run.get("ok"):
        problems.append(f"the last sync ({utc(_run_time(last_run))}) failed: "
                        f"{scrub(str(last_run.get('message') or 'no message'))}")
    if broken is not None:
        problems.append(f"the store's current pointer is broken: {broken}; the server keeps serving "
                        f"the last good snapshot{'' if snapshot is None else ' (' + snapshot.id + ')'}. "
                        "Run 'updmirror sync -c CONFIG' to publish a new one, which repairs it")
    elif snapshot is None:
        problems.append("no snapshot is published yet; run 'updmirror sync -c CONFIG'")
    # "The last sync failed" is said once above, not once per index.
    problems += [f"{i['tree']} {i['channel']} {i['path']}: {i['reason']}" for i in indexes
                 if i["stale"] and i["reason"] != LAST_SYNC_FAILED]

    if last_run is not None and not last_run.get("ok"):
        state = FAILED
    elif snapshot is None or broken is not None or any(i["stale"] for i in indexes):
        state = STALE
    else:
        state = FRESH

    return {
        "generated": now,
        "state": state,
        "headline": HEADLINES[state],
        "problems": problems,
        "upstream": scrub(redact.url(cfg.upstream.url)),
        "interval": cfg.mirror.interval,
        "stale_after": stale_after,
        "snapshot": _snapshot_facts(snapshot),
        # Served but not signature-checked ([verify] unverifiable = "accept"): said, not a problem.
        "unchecked": _unchecked_facts(snapshot),
        "last_sync": _run_facts(last_run, scrub) if last_run else None,
        "last_success": _run_time(last_success) if last_success else None,
        "indexes": indexes,
        "runs": [_run_facts(r, scrub) for r in runs],
        "server": _server_facts(counters, now),
    }


_snapshot_cache: dict[str, tuple[tuple, Snapshot]] = {}


def current_snapshot(store: Store) -> tuple[Snapshot | None, str | None]:
    """The current snapshot without its per-file lists, parsed once per
    snapshot: the server renders status pages on its event loop, and a
    manifest lists every file of every index. With a broken pointer, the
    newest snapshot (what the server falls back to) and what is broken."""
    directory, broken = store.locate_current()
    if broken is not None:
        newest = next(iter(store.snapshots()), None)
        directory = newest.dir if newest else None
    if directory is None:
        return None, broken   # nothing published yet
    try:
        st = (directory / MANIFEST).stat()
    except (FileNotFoundError, NotADirectoryError):
        return None, broken   # cleaned up or unpublished since it was found
    key = (str(directory), st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _snapshot_cache.get(str(store.root))
    if cached and cached[0] == key:
        return cached[1], broken
    snapshot = load_snapshot(directory)
    if snapshot is None:
        return None, broken or f"{directory / MANIFEST} cannot be read"
    slim = [{k: v for k, v in e.items() if k != "file_list"} for e in snapshot.manifest.get("indexes", [])
            if isinstance(e, dict)]
    # The digests of every file are for lower mirrors (store/tiers.py), not for the page.
    snapshot.manifest = {k: v for k, v in snapshot.manifest.items() if k != "sha256"}
    snapshot.manifest["indexes"] = slim
    _snapshot_cache.clear()  # one store per process: keep one entry
    _snapshot_cache[str(store.root)] = (key, snapshot)
    return snapshot, broken


def _expected_indexes(cfg: Config, snapshot) -> list[dict]:
    """Every index the configuration asks for, in its order, then any other
    index the snapshot still holds (e.g. a tree just removed from the config)."""
    held = {e.get("path"): e for e in (snapshot.manifest.get("indexes", []) if snapshot else [])}
    wanted = [held.pop(i.path, None)
              or {"tree": i.tree, "channel": i.channel, "path": i.path, "missing": True}
              for i in mirrored_indexes(cfg.mirror.trees, cfg.mirror.channels)]
    return wanted + list(held.values())


def _index_facts(entry: dict, snapshot, runs: list[dict], last_run: dict | None, now: float,
                 stale_after: float, scrub) -> dict:
    path = entry.get("path")
    missing = bool(entry.get("missing"))
    version = entry.get("versionid")
    confirmed = None
    if not missing:
        confirmed = number(entry.get("confirmed")) or (snapshot.created if snapshot else None)
        for run in runs:
            if run.get("ok") and _confirms(run, path, version):
                confirmed = max(confirmed or 0.0, _run_time(run))
                break  # runs are newest first
    upstream_date = number(entry.get("upstream_date"))
    age = None if confirmed is None else max(0.0, now - confirmed)

    if missing:
        reason = "not in the published snapshot yet"
    elif age is None:
        reason = "never confirmed by a sync"
    elif age > stale_after:
        reason = (f"not confirmed current for {duration(age)} (limit {duration(stale_after)}, "
                  "twice [mirror] interval)")
    elif last_run is not None and not last_run.get("ok"):
        reason = LAST_SYNC_FAILED
    else:
        reason = None
    # Against the vendor, through the mirrors above: a fresh tier of a stale upper is stale too.
    chain = chain_facts(entry, runs, now, stale_after) if not missing else chain_facts({}, [], now, stale_after)
    if reason is None or reason == LAST_SYNC_FAILED:
        reason = chain_reason(chain, stale_after, duration, utc) or reason
    return {
        "tree": entry.get("tree"),
        "channel": entry.get("channel"),
        "path": path,
        "version": version,
        "files": entry.get("files"),
        "bytes": entry.get("bytes"),
        "upstream_url": scrub(redact.url(str(entry["upstream_url"]))) if entry.get("upstream_url") else None,
        "upstream_date": upstream_date,
        "upstream_age_seconds": None if upstream_date is None else max(0.0, now - upstream_date),
        "confirmed": confirmed,
        "age_seconds": age,
        "last_sync": ({"time": _run_time(last_run), "ok": bool(last_run.get("ok"))}
                      if last_run else None),
        "in_snapshot": not missing,
        "stale": reason is not None,
        "reason": reason,
        # The chain of mirrors, vendor-facing first (status/hops.py says what each figure means).
        "hops": chain["hops"],
        "vendor_date": chain["vendor_date"],
        "vendor_confirmed": chain["vendor_confirmed"],
        "age_vs_vendor_seconds": chain["age_vs_vendor_seconds"],
        "upper": chain["upper"],
        "upper_stale": chain["upper_stale"],
    }


def _confirms(run: dict, path: str | None, version: Any) -> bool:
    for item in run.get("indexes") or []:
        if isinstance(item, dict) and item.get("path") == path:
            # A run that saw another version than the one served confirms nothing.
            return version is None or item.get("versionid") in (None, version)
    return False


def _snapshot_facts(snapshot) -> dict | None:
    if snapshot is None:
        return None
    m = snapshot.manifest
    entries = m.get("indexes", [])
    return {
        "id": snapshot.id,
        "created": snapshot.created,
        "files": m.get("files", sum(_int(e.get("files")) for e in entries)),
        "bytes": m.get("bytes", sum(_int(e.get("bytes")) for e in entries)),
    }


def _unchecked_facts(snapshot) -> list[dict]:
    held = snapshot.manifest.get("unchecked") if snapshot else None
    if not isinstance(held, dict):
        return []
    return [{"path": str(path), "section": str(u.get("section", "")),
             "key_ids": [str(k) for k in u.get("key_ids", [])]}
            for path, u in sorted(held.items()) if isinstance(u, dict)]


def _run_facts(run: dict, scrub) -> dict:
    errors = [scrub(str(e)) for e in (run.get("errors") or [])]
    return {
        "started": number(run.get("started")),
        "finished": number(run.get("finished")),
        "ok": bool(run.get("ok")),
        "message": scrub(str(run.get("message") or "")),
        "published": run.get("published"),
        "files_fetched": _int(run.get("files_fetched")),
        "bytes_fetched": _int(run.get("bytes_fetched")),
        "errors": errors[:ERRORS_SHOWN],
        "errors_total": len(errors),
        "unchecked": len(run.get("unchecked") or []),
    }


def _server_facts(counters: dict, now: float) -> dict:
    counters = counters or {}
    clients = counters.get("clients", 0)
    if not isinstance(clients, (int, float)):
        clients = len(clients)        # a set of addresses is fine too
    started = number(counters.get("started"))
    return {
        "connections_open": _int(counters.get("connections_open")),
        #: Lower mirrors holding a request open for this mirror's next snapshot.
        "announce_waiting": _int(counters.get("announce_waiting")),
        "connections_total": _int(counters.get("connections_total")),
        "requests_total": _int(counters.get("requests_total")),
        "bytes_sent": _int(counters.get("bytes_sent")),
        "responses": {str(k): _int(v) for k, v in sorted((counters.get("responses") or {}).items())},
        "clients": int(clients),
        "started": started,
        "uptime_seconds": None if started is None else max(0.0, now - started),
    }


def _run_time(run: dict) -> float:
    return number(run.get("finished")) or number(run.get("started")) or 0.0


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _scrubber(cfg: Config) -> redact.Scrubber:
    """Text from run records passes through this before anyone sees it: the
    sync already redacts, but a credential must not leak even if it slipped.
    Very short "passwords" would blank out ordinary words: the URL rule covers those."""
    return redact.Scrubber([cfg.upstream.password, redact.password_of(cfg.upstream.proxy)], min_length=4)


# -- renderings ---------------------------------------------------------------

def render_status_json(store: Store, cfg: Config, counters: dict, now: float | None = None) -> bytes:
    facts = collect_status(store, cfg, counters, now)
    return (json.dumps(facts, indent=1, sort_keys=True) + "\n").encode("utf-8")


def render_status_html(store: Store, cfg: Config, counters: dict, now: float | None = None) -> bytes:
    from .page import render_page

    return render_page(collect_status(store, cfg, counters, now)).encode("utf-8")


# -- small formatting helpers shared by the page and the command line ----------

def utc(t: float | None) -> str:
    if not t:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
