"""`updmirror status`.

`status` prints the facts the `/status` page shows (without the server's
counters, which live in the running server) and exits 0 when the mirror is
fresh, 1 when it is stale or the last sync failed, 2 on a configuration
error, so that monitoring (Nagios, a systemd timer, cron) can call it.
"""

from __future__ import annotations

import argparse
import json
import sys

from updmirror import config
from updmirror.errors import ConfigError
from updmirror.store import Store
from updmirror.units import human_bytes

from .facts import FRESH, collect_status, duration, utc


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="show whether the mirror is fresh (exit 1 when stale or failed)",
                       description="Print each tree and channel's version, last sync and age. Exit 0 "
                                   "when the mirror is fresh, 1 when it is stale or the last sync "
                                   "failed, 2 on a configuration error.")
    p.add_argument("-c", "--config", required=True, help="mirror.toml")
    p.add_argument("--json", action="store_true", help="print the facts as JSON (as /status.json)")
    p.set_defaults(func=run_status)


def run_status(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    try:
        facts = collect_status(Store(cfg.mirror.root), cfg, {})
    except OSError as exc:
        raise ConfigError(f"{cfg.mirror.root}: cannot read the store ({exc.strerror}); run this as the "
                          "server's user or a member of its group") from None
    facts.pop("server")  # the command is not the server: it has no counters to show
    if args.json:
        json.dump(facts, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    elif sys.stdout.isatty():
        _print_rich(facts)
    else:
        _print_plain(facts)
    return 0 if facts["state"] == FRESH else 1


def _rows(facts: dict) -> list[list[str]]:
    """One row per index; why a row is stale is in the problem lines above it."""
    rows = []
    for i in facts["indexes"]:
        rows.append([str(i["tree"]), str(i["channel"]), str(i["path"]),
                     "-" if i["version"] is None else str(i["version"]),
                     duration(i["age_seconds"]),
                     "-" if i["files"] is None else str(i["files"]),
                     human_bytes(i["bytes"]),
                     "STALE" if i["stale"] else "ok"])
    return rows


_HEADINGS = ["TREE", "CHANNEL", "INDEX", "VERSION", "AGE", "FILES", "SIZE", "STATE"]
#: A terminal is often 80 columns: the index path names the tree and channel.
_RICH_COLUMNS = [2, 3, 4, 5, 6, 7]


def _summary(facts: dict) -> list[str]:
    now = facts["generated"]
    lines = []
    snap = facts["snapshot"]
    if snap:
        lines.append(f"snapshot {snap['id']}, published {utc(snap['created'])} "
                     f"({duration(now - snap['created'])} ago), {snap['files']} files, "
                     f"{human_bytes(snap['bytes'])}")
    last = facts["last_sync"]
    if last:
        when = last["finished"] or last["started"]
        lines.append(f"last sync {'ok' if last['ok'] else 'FAILED'} {utc(when)} "
                     f"({duration(now - when)} ago): {last['message']}")
    else:
        lines.append("no sync has run yet")
    lines.append(f"upstream {facts['upstream']}, synced every {duration(facts['interval'])}, "
                 f"stale after {duration(facts['stale_after'])}")
    unchecked = facts.get("unchecked") or []
    if unchecked:
        lines.append(f"{len(unchecked)} file(s) not signature-checked (signed only by the legacy DSA key "
                     f"{', '.join(sorted({k for u in unchecked for k in u['key_ids']}))}; size and CRC-32 "
                     "checked):")
        lines += [f"  {u['section']} {u['path']}" for u in unchecked]
    return lines


def _chain_lines(facts: dict) -> list[str]:
    """Per index, its age against the vendor and the chain of mirrors with each hop's lag."""
    lines = []
    for i in facts["indexes"]:
        hops = i.get("hops") or []
        if not hops:
            continue
        steps = " -> ".join(f"{h['name']} (lag {duration(h['lag_seconds'])})" for h in hops)
        published = (f"; the vendor published it {utc(i['vendor_date'])}" if i.get("vendor_date") else "")
        lines.append(f"{i['path']}: {duration(i['age_vs_vendor_seconds'])} old against the vendor, "
                     f"through vendor -> {steps}{published}")
        if i.get("upper_stale"):
            lines.append(f"  its upper mirror {i['upper']['name']} is STALE")
    return lines


def _print_plain(facts: dict) -> None:
    out = [f"updmirror: {facts['headline']}"]
    out += [f"  {p}" for p in facts["problems"]]
    out += _summary(facts)
    table = [_HEADINGS] + _rows(facts)
    widths = [max(len(r[c]) for r in table) for c in range(len(_HEADINGS))]
    for row in table:
        out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    out += _chain_lines(facts)
    print("\n".join(out))


def _print_rich(facts: dict) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    style = {"fresh": "bold white on green", "stale": "bold black on yellow",
             "failed": "bold white on red"}[facts["state"]]
    console.print(f" {facts['headline']} ", style=style, markup=False)
    for p in facts["problems"]:
        console.print(f"  {p}", style="yellow", markup=False, highlight=False)
    for line in _summary(facts):
        console.print(line, markup=False, highlight=False)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, highlight=False)
    for c in _RICH_COLUMNS:
        table.add_column(_HEADINGS[c], no_wrap=True,
                         justify="right" if _HEADINGS[c] in ("VERSION", "FILES", "SIZE") else "left")
    for i, row in zip(facts["indexes"], _rows(facts), strict=True):
        table.add_row(*(row[c] for c in _RICH_COLUMNS), style="bold yellow" if i["stale"] else None)
    console.print(table)
    for line in _chain_lines(facts):
        console.print(line, markup=False, highlight=False, style="bold yellow" if "STALE" in line else None)
