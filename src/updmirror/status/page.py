"""The `/status` page: the facts of `status.collect_status` as one
self-contained HTML page (no script, no external asset), readable at a
glance. Every value is escaped; the facts carry no credentials.

The state is said in words and symbols as well as colour, so that it reads
the same in a terminal browser, printed, or to someone colour-blind.
"""

from __future__ import annotations

from html import escape
from itertools import groupby

from updmirror.units import human_bytes

from .facts import FAILED, FRESH, STALE, duration, utc

#: The page reloads itself this often (seconds): an admin can leave it open.
REFRESH_SECONDS = 60

_SYMBOL = {FRESH: "\u2714", STALE: "\u26a0", FAILED: "\u2716"}

_STYLE = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
       margin: 0; color: #1f2328; background: #f6f8fa; }
main { max-width: 72rem; margin: 0 auto; padding: 0 1.2rem 2rem; }
header.state { padding: 1rem 1.2rem; color: #fff; }
header.state h1 { margin: 0; font-size: 2rem; letter-spacing: .02em; }
header.state p { margin: .25rem 0 0; opacity: .95; }
header.fresh { background: #1a7f37; }
header.stale { background: #9a6700; }
header.failed { background: #cf222e; }
ul.problems { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px;
              padding: .6rem 1rem .6rem 2rem; margin: 1rem 0; }
ul.problems li { margin: .15rem 0; }
h2 { font-size: 1.15rem; margin: 1.4rem 0 .4rem; }
h2 .badge { font-size: .8rem; vertical-align: middle; padding: .1rem .5rem; border-radius: 1rem;
            margin-left: .5rem; color: #fff; background: #1a7f37; }
section.stale h2 .badge { background: #9a6700; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #d0d7de; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #d8dee4; vertical-align: top; }
th { background: #eaeef2; font-weight: 600; white-space: nowrap; }
td.when { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.stale td, table.stale td { background: #fff8c5; }
tr.stale td.why { color: #9a6700; font-weight: 600; }
tr.failed td { background: #ffebe9; }
p.vendor-age { margin: .6rem 0 .3rem; }
table.hops { width: auto; min-width: 28rem; }
tr.hop.stale td { background: #fff8c5; }
.ok { color: #1a7f37; font-weight: 600; }
.bad { color: #cf222e; font-weight: 600; }
.muted { color: #59636e; }
code { font: .9em ui-monospace, "DejaVu Sans Mono", monospace; }
dl.server { display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: .5rem;
            margin: 0; }
dl.server div { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: .5rem .7rem; }
dl.server dt { color: #59636e; font-size: .85rem; }
dl.server dd { margin: 0; font-size: 1.3rem; font-variant-numeric: tabular-nums; }
footer { margin-top: 1.5rem; color: #59636e; font-size: .85rem; }
"""


def render_page(facts: dict) -> str:
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        f"<meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">",
        f"<title>updmirror: {_e(facts['headline'])}</title>",
        f"<style>{_STYLE}</style></head><body>",
        _header(facts),
        "<main>",
        _problems(facts["problems"]),
        _unchecked(facts["unchecked"]),
        *_index_sections(facts),
        _server(facts["server"]),
        _runs(facts["runs"]),
        f"<footer>Page generated {_e(utc(facts['generated']))}; it reloads every "
        f"{REFRESH_SECONDS} s. The same facts: <a href=\"status.json\">status.json</a>, "
        "<a href=\"metrics\">metrics</a>.</footer>",
        "</main></body></html>\n",
    ]
    return "".join(parts)


def _header(facts: dict) -> str:
    state = facts["state"]
    snap = facts["snapshot"]
    if snap:
        served = (f"Serving snapshot <code>{_e(snap['id'])}</code>, published "
                  f"{_e(_when(snap['created'], facts['generated']))}")
    else:
        served = "No snapshot published yet"
    last = facts["last_sync"]
    if last:
        result = "succeeded" if last["ok"] else "FAILED"
        synced = f"last sync {result} {_e(_when(last['finished'] or last['started'], facts['generated']))}"
    else:
        synced = "no sync has run yet"
    return (f"<header class=\"state {state}\" id=\"state\"><h1>{_SYMBOL[state]} {_e(facts['headline'])}</h1>"
            f"<p>{served}; {synced}. Upstream: <code>{_e(facts['upstream'])}</code>, synced every "
            f"{_e(duration(facts['interval']))}, stale after {_e(duration(facts['stale_after']))}.</p>"
            "</header>")


def _problems(problems: list[str]) -> str:
    if not problems:
        return ""
    items = "".join(f"<li>{_e(p)}</li>" for p in problems)
    return f"<ul class=\"problems\" id=\"problems\">{items}</ul>"


def _unchecked(unchecked: list[dict]) -> str:
    if not unchecked:
        return ""
    items = "".join(f"<li><code>{_e(u['section'])}</code> <code>{_e(u['path'])}</code> "
                    f"<span class=\"muted\">(signed only by {_e(', '.join(u['key_ids']))})</span></li>"
                    for u in unchecked)
    return (f"<section class=\"unchecked\" id=\"unchecked\"><h2>{len(unchecked)} file(s) not "
            "signature-checked</h2><p class=\"muted\">Signed only by the vendor's legacy DSA key, which no "
            "file carries: served after their size and inner CRC-32 check "
            "(<code>[verify] unverifiable = \"accept\"</code>).</p>"
            f"<ul>{items}</ul></section>")


def _index_sections(facts: dict) -> list[str]:
    now = facts["generated"]
    sections = []
    for (tree, channel), group in groupby(facts["indexes"], key=lambda i: (i["tree"], i["channel"])):
        rows = list(group)
        stale = any(i["stale"] for i in rows)
        cls = "stale" if stale else "fresh"
        badge = f"{_SYMBOL[STALE]} STALE" if stale else f"{_SYMBOL[FRESH]} fresh"
        body = []
        for i in rows:
            last = i["last_sync"]
            if last is None:
                last_sync = "<span class=\"muted\">never</span>"
            else:
                word = "<span class=\"ok\">ok</span>" if last["ok"] else "<span class=\"bad\">FAILED</span>"
                last_sync = f"{word} {_ago(last['time'], now)}"
            upstream = (_ago(i["upstream_date"], now) if i["upstream_date"]
                        else "<span class=\"muted\">unknown</span>")
            why = _e(i["reason"]) if i["reason"] else "<span class=\"ok\">current</span>"
            body.append(
                f"<tr class=\"{'stale' if i['stale'] else 'fresh'}\">"
                f"<td><code>{_e(i['path'])}</code></td>"
                f"<td class=\"num version\">{_e(i['version'] if i['version'] is not None else '-')}</td>"
                f"<td class=\"when\">{last_sync}</td>"
                f"<td class=\"num age\">{_e(duration(i['age_seconds']))}</td>"
                f"<td class=\"when\">{upstream}</td>"
                f"<td class=\"num\">{_e(i['files'] if i['files'] is not None else '-')}</td>"
                f"<td class=\"num\">{_e(human_bytes(i['bytes']))}</td>"
                f"<td class=\"why\">{why}</td></tr>")
        sections.append(
            f"<section class=\"tree {cls}\" data-tree=\"{_e(tree)}\" data-channel=\"{_e(channel)}\">"
            f"<h2>{_e(tree)} <span class=\"muted\">\u00b7 {_e(channel)}</span>"
            f"<span class=\"badge\">{badge}</span></h2>"
            f"<table class=\"{cls}\"><thead><tr><th>Index</th><th>Version</th><th>Last sync</th>"
            "<th title=\"time since a successful sync last found this index current upstream\">"
            "Age vs upstream</th><th>Upstream published</th><th>Files</th><th>Size</th><th>State</th>"
            f"</tr></thead><tbody>{''.join(body)}</tbody></table>"
            + "".join(_chain(i, now) for i in rows) + "</section>")
    return sections


_THIS_MIRROR = " <span class=\"muted\">(this mirror)</span>"


def _chain(i: dict, now: float) -> str:
    """The index's chain of mirrors, vendor-facing first, with each hop's lag."""
    hops = i.get("hops") or []
    if not hops:
        return ""
    published = (f"; the vendor published this version {_ago(i['vendor_date'], now)}"
                 if i.get("vendor_date") else "")
    upper = i.get("upper")
    warning = (f" <span class=\"bad\">Its upper mirror {_e(upper['name'])} is stale.</span>"
               if i.get("upper_stale") and upper else "")
    rows = []
    for position, hop in enumerate(hops):
        stale_upper = i.get("upper_stale") and position == len(hops) - 2
        synced = _ago(hop["synced_at"], now) if hop["synced_at"] else "<span class=\"muted\">unknown</span>"
        rows.append(
            f"<tr class=\"hop{' stale' if stale_upper else ''}\" data-hop=\"{_e(hop['name'])}\">"
            f"<td class=\"num\">{position}</td><td><code>{_e(hop['name'])}</code>"
            f"{_THIS_MIRROR if position == len(hops) - 1 else ''}</td>"
            f"<td class=\"when\">{synced}</td>"
            f"<td class=\"num lag\">{_e(duration(hop['lag_seconds']))}</td></tr>")
    return (f"<p class=\"vendor-age\" data-path=\"{_e(i['path'])}\">Age against the vendor of "
            f"<code>{_e(i['path'])}</code>: <strong class=\"age-vs-vendor\">"
            f"{_e(duration(i['age_vs_vendor_seconds']))}</strong> through {len(hops)} mirror(s){published}."
            f"{warning}</p>"
            f"<table class=\"hops\" data-path=\"{_e(i['path'])}\"><thead><tr><th>Hop</th><th>Mirror</th>"
            "<th title=\"when this mirror last confirmed the index against its upstream\">Last synced</th>"
            "<th title=\"how old the upper mirror's confirmation was when this mirror synced from it\">Lag</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _server(s: dict) -> str:
    responses = ", ".join(f"{_e(k)}: {v:,}" for k, v in s["responses"].items() if v) or "none yet"
    cells = [
        ("Clients", f"{s['clients']:,}"),
        ("Requests", f"{s['requests_total']:,}"),
        ("Bytes served", human_bytes(s["bytes_sent"])),
        ("Connections open", f"{s['connections_open']:,}"),
        ("Connections total", f"{s['connections_total']:,}"),
        ("Lower mirrors waiting", f"{s['announce_waiting']:,}"),
        ("Uptime", duration(s["uptime_seconds"]) if s["uptime_seconds"] is not None else "-"),
    ]
    items = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in cells)
    return (f"<section class=\"server\"><h2>Server</h2><dl class=\"server\">{items}</dl>"
            f"<p class=\"muted\">Responses by status: {responses}</p></section>")


def _runs(runs: list[dict]) -> str:
    if not runs:
        return "<section class=\"runs\"><h2>Recent syncs</h2><p class=\"muted\">None yet.</p></section>"
    rows = []
    for r in runs:
        took = (duration(r["finished"] - r["started"]) if r["finished"] and r["started"] else "-")
        result = "<span class=\"ok\">ok</span>" if r["ok"] else "<span class=\"bad\">FAILED</span>"
        errors = "".join(f"<br><span class=\"bad\">{_e(e)}</span>" for e in r["errors"]
                         if e != r["message"])
        more = r["errors_total"] - len(r["errors"])
        if more > 0:
            errors += f"<br><span class=\"muted\">and {more} more error(s)</span>"
        rows.append(
            f"<tr class=\"{'run-ok' if r['ok'] else 'failed'}\"><td>{_e(utc(r['started']))}</td>"
            f"<td class=\"num\">{_e(took)}</td><td>{result}</td>"
            f"<td>{_e(r['message'])}{errors}</td>"
            f"<td class=\"num\">{r['files_fetched']:,}</td>"
            f"<td class=\"num\">{_e(human_bytes(r['bytes_fetched']))}</td></tr>")
    return ("<section class=\"runs\"><h2>Recent syncs</h2><table><thead><tr><th>Started</th><th>Took</th>"
            "<th>Result</th><th>Message</th><th>Files fetched</th><th>Bytes fetched</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></section>")


def _when(t: float | None, now: float) -> str:
    if not t:
        return "never"
    return f"{utc(t)} ({duration(max(0.0, now - t))} ago)"


def _ago(t: float, now: float) -> str:
    """ "3 min ago", with the exact time on hover: relative times read faster."""
    return f"<time title=\"{_e(utc(t))}\">{_e(duration(max(0.0, now - t)))} ago</time>"


def _e(value: object) -> str:
    return escape(str(value), quote=True)
