"""A record of every sync run, for the status page and `updmirror status`."""

from __future__ import annotations

import json
import os
from pathlib import Path

RUNS_FILE = "runs.jsonl"
KEEP_RUNS = 500


def append_run(state_dir: Path, record: dict) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / RUNS_FILE
    line = json.dumps(record, sort_keys=True) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
    _trim(path)


def read_runs(state_dir: Path, limit: int = 50) -> list[dict]:
    """The newest `limit` runs, newest first; unreadable lines are skipped."""
    try:
        lines = (state_dir / RUNS_FILE).read_text("utf-8").splitlines()
    except FileNotFoundError:
        return []
    runs = []
    for line in reversed(lines):
        try:
            runs.append(json.loads(line))
        except ValueError:
            continue
        if len(runs) >= limit:
            break
    return runs


def _trim(path: Path) -> None:
    lines = path.read_text("utf-8").splitlines(keepends=True)
    if len(lines) > KEEP_RUNS * 2:
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(lines[-KEEP_RUNS:]), "utf-8")
        os.replace(tmp, path)
