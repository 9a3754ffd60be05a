"""`updmirror status`, run as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from statuskit import HOUR, PASSWORD, open_mirror
from updmirror.store.records import append_run
from updmirror.store.snapshots import Store

SRC = Path(__file__).resolve().parents[2] / "src"
TREES = ("ep11",)
INDEX = {"tree": "ep11", "channel": "regular", "path": "eset_upd/ep11/dll/update.ver", "versionid": 31234,
         "files": 120, "bytes": 123_456_789}


def publish(store: Store, created: float) -> None:
    builder = store.new_snapshot()
    builder.write(INDEX["path"], b"[HOSTS]\r\n")
    builder.publish({"indexes": [INDEX], "created": created, "files": 120, "bytes": 123_456_789})


def record(store: Store, finished: float, ok: bool = True, message: str = "mirror is current") -> None:
    indexes = [dict(INDEX, changed=False)] if ok else []
    append_run(store.state, {"started": finished - 30, "finished": finished, "ok": ok, "message": message,
                             "indexes": indexes, "files_fetched": 0, "bytes_fetched": 0, "errors": []})


@pytest.fixture
def mirror(tmp_path):
    return open_mirror(tmp_path, TREES)


def updmirror(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "updmirror", *args], input=stdin, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=path), timeout=60)


def test_status_command_exits_0_when_fresh(mirror, tmp_path):
    cfg, store, now = mirror
    publish(store, created=now - 600)
    record(store, now - 600)
    result = updmirror("status", "-c", str(cfg.path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("updmirror: fresh")
    assert "eset_upd/ep11/dll/update.ver" in result.stdout and "31234" in result.stdout
    as_json = updmirror("status", "-c", str(cfg.path), "--json")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout)["indexes"][0]["version"] == 31234


def test_status_command_exits_1_when_stale(mirror):
    cfg, store, now = mirror
    publish(store, created=now - 5 * HOUR)
    record(store, now - 5 * HOUR)
    result = updmirror("status", "-c", str(cfg.path))
    assert result.returncode == 1
    assert result.stdout.startswith("updmirror: STALE")


def test_status_command_exits_1_when_the_last_sync_failed(mirror):
    cfg, store, now = mirror
    publish(store, created=now - 600)
    record(store, now - 600)
    record(store, now - 60, ok=False, message="upstream answered 503")
    result = updmirror("status", "-c", str(cfg.path), "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["state"] == "failed" and "upstream answered 503" in data["last_sync"]["message"]
    assert PASSWORD not in result.stdout


def test_status_command_exits_2_on_a_config_error(tmp_path):
    result = updmirror("status", "-c", str(tmp_path / "missing.toml"))
    assert result.returncode == 2
    assert "missing.toml" in result.stderr and "not found" in result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[mirror]\nroot = 'x'\n")
    result = updmirror("status", "-c", str(bad))
    assert result.returncode == 2 and "[upstream]" in result.stderr
