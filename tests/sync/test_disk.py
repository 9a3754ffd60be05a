"""The disk under the store: full (ENOSPC on a small tmpfs made for the test)
or failing (EIO injected into the sync's own system calls)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from synckit import PASSWORD, assert_snapshot_complete

from diskkit import fill, inject, small_disk
from serverkit import SRC
from updmirror.store.records import RUNS_FILE
from updmirror.vendor.publish import publish


def cli(setup, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=SRC)
    return subprocess.run([sys.executable, "-m", "updmirror", *args, "-c", str(setup.config_path)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def records(setup) -> list[dict]:
    """Every line of the run history, each of which must be a whole record."""
    text = (setup.store.state / RUNS_FILE).read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_a_full_disk_fails_the_sync_in_one_clear_line_and_the_next_sync_recovers(setup):
    with small_disk(setup.store_root, "32m") as disk:
        assert cli(setup, "sync").returncode == 0
        before = setup.store.current().id
        publish(setup.vendor_root)
        filler = fill(disk, leave=16 * 1024)
        failed = cli(setup, "sync")
        assert failed.returncode == 1, failed.stderr
        assert "Traceback" not in failed.stderr and PASSWORD not in failed.stderr
        told = [line for line in failed.stderr.splitlines() if "No space left on device" in line]
        # One message (the log line and the command's summary say it), not one per file.
        assert 1 <= len(told) <= 2, failed.stderr
        assert all("free space" in line for line in told), failed.stderr
        assert setup.store.current().id == before
        assert_snapshot_complete(setup.store)
        assert all(isinstance(r, dict) for r in records(setup))
        os.unlink(filler)
        done = cli(setup, "sync")
        assert done.returncode == 0, done.stderr
        assert setup.store.current().id != before
        assert_snapshot_complete(setup.store)
        assert records(setup)[-1]["ok"] is True
        status = cli(setup, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert "LAST SYNC FAILED" not in status.stdout


def test_an_io_error_flushing_a_download_fails_the_sync_in_one_line_and_changes_nothing(setup):
    assert cli(setup, "sync").returncode == 0
    before = setup.store.current().id
    publish(setup.vendor_root)
    env = dict(os.environ, PYTHONPATH=SRC)
    # Every fsync(2) of the run answers EIO, as a failing disk does.
    failed = subprocess.run([*inject("fsync:error=EIO"), sys.executable, "-m", "updmirror", "sync", "-c",
                             str(setup.config_path)], capture_output=True, text=True, timeout=180, env=env)
    assert failed.returncode == 1, failed.stderr
    assert "Traceback" not in failed.stderr
    told = [line for line in failed.stderr.splitlines() if "Input/output error" in line]
    assert 1 <= len(told) <= 2 and all("dmesg" in line for line in told), failed.stderr
    assert setup.store.current().id == before
    assert_snapshot_complete(setup.store)
    done = cli(setup, "sync")
    assert done.returncode == 0, done.stderr
    assert setup.store.current().id != before
    assert_snapshot_complete(setup.store)
