"""Freshness and health: what an administrator (or monitoring) needs to
know about the mirror, gathered once as plain data and rendered four ways.

    facts.py      `collect_status`: per tree, per index, per sync run; JSON
    metrics.py    the Prometheus text of /metrics
    page.py       the `/status` HTML page
    commands.py   `updmirror status` (exit 1 when stale or failed)

Reads the store and its run records, never writes; knows nothing of the
HTTP server, which imports this room to answer /status, /status.json and
/metrics with the server's counters added.
"""

from .facts import (
    FAILED,
    FRESH,
    HTML_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    STALE,
    collect_status,
    current_snapshot,
    duration,
    render_status_html,
    render_status_json,
    utc,
)
from .metrics import METRICS_CONTENT_TYPE, render_metrics
from .page import render_page

__all__ = [
    "FAILED", "FRESH", "HTML_CONTENT_TYPE", "JSON_CONTENT_TYPE", "METRICS_CONTENT_TYPE", "STALE",
    "collect_status", "current_snapshot", "duration", "render_metrics", "render_page",
    "render_status_html", "render_status_json", "utc",
]
