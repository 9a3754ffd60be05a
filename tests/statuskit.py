"""Shared set-up of the status and passwd tests (tests/status/, tests/serve/test_passwd_command.py):
a mirror.toml whose upstream password no status output may show, and its store."""

from __future__ import annotations

import time
from pathlib import Path

from updmirror import config
from updmirror.store.snapshots import Store

PASSWORD = "tr0ub4dor&3"
HOUR = 3600.0


def write_config(tmp_path: Path, trees: tuple[str, ...], extra: str = "") -> Path:
    path = tmp_path / "mirror.toml"
    listed = ", ".join(f'"{t}"' for t in trees)
    path.write_text(f"""
[upstream]
url = "http://127.0.0.1:9/"
username = "EAV-0123"
password = "{PASSWORD}"

[mirror]
root = "store"
trees = [{listed}]
interval = "1h"
{extra}
""")
    return path


def open_mirror(tmp_path: Path, trees: tuple[str, ...]) -> tuple[config.Config, Store, float]:
    """The loaded config, its (empty) store and the time now."""
    cfg = config.load(write_config(tmp_path, trees))
    return cfg, Store(cfg.mirror.root), time.time()
