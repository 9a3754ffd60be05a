"""SIGKILL of the sync at random points, with a real server on the store:
what it serves is complete after every kill, and the next sync completes
and re-uses what killed runs verified.

UPDMIRROR_KILLS sets how many kills must land inside a run (20; 50 with
UPDMIRROR_LONG=1); UPDMIRROR_SEED the random points."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from synckit import SRC, assert_snapshot_complete, serving

from sizes import size
from updmirror.eset.modules import modules
from updmirror.eset.trees import TREES
from updmirror.eset.updatever import UpdateVer
from updmirror.vendor.publish import publish

KILLS = size("UPDMIRROR_KILLS", ci=20, long=50)
SEED = int(os.environ.get("UPDMIRROR_SEED", "20261129"))
TREES_USED = ("ep11", "v16", "v5")


def check_served(port: int) -> int:
    """Every file each served index lists answers HEAD with 200 and its listed
    size; returns how many files were checked."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    checked = 0
    try:
        for tree in TREES_USED:
            path = "/" + TREES[tree].index_paths("regular")[0]
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200, f"{path}: {resp.status}"
            for m in modules(UpdateVer.parse(body), f"http://127.0.0.1:{port}{path}"):
                conn.request("HEAD", m.path)
                resp = conn.getresponse()
                resp.read()
                length = int(resp.getheader("Content-Length", -1))
                # A section without size= (the vendor has some) promises only a file.
                assert resp.status == 200 and length == (m.size if m.size is not None else length) > 0, \
                    f"{m.path} listed by {path} with size={m.size}: {resp.status}, {length} bytes"
                checked += 1
    finally:
        conn.close()
    return checked


def pool_count(store) -> int:
    """Files in the pool: a run cut short that got this number up verified something."""
    return sum(1 for p in store.pool.rglob("*") if p.is_file())


@pytest.mark.timeout(120 + 30 * KILLS)
def test_a_sync_killed_at_random_points_leaves_the_served_mirror_complete_and_the_next_completes(setup):
    setup.write_config(trees=TREES_USED)
    env = dict(os.environ, PYTHONPATH=SRC)
    command = [sys.executable, "-m", "updmirror", "-q", "sync", "-c", str(setup.config_path)]
    assert subprocess.run(command, env=env, capture_output=True, timeout=180).returncode == 0
    with serving(setup, workers=2) as server:
        # How long a whole run takes here (start-up included), so the kills land inside runs.
        publish(setup.vendor_root)
        started = time.monotonic()
        subprocess.run(command, env=env, capture_output=True, timeout=180, check=True)
        duration = time.monotonic() - started
        publish(setup.vendor_root)
        rng = random.Random(SEED)
        kills = attempts = completed = checked = 0
        # The last run must be one cut short before it published (a kill can land just
        # after the switch), and some run cut short since the last publish must have got
        # as far as verifying a file (a kill can land during start-up), so that the final
        # sync has the killed runs' work to re-use.
        cut_short = verified_since_publish = False
        while (kills < KILLS or not (cut_short and verified_since_publish)) and attempts < 3 * KILLS:
            attempts += 1
            before = setup.store.current().id
            pooled = pool_count(setup.store)
            proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.2, max(0.3, 0.95 * duration)))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(30)
            cut_short = proc.returncode != 0 and setup.store.current().id == before
            if cut_short and pool_count(setup.store) > pooled:
                verified_since_publish = True
            assert_snapshot_complete(setup.store)
            # At once: a worker that has not switched yet serves the previous index, whose
            # files are in their grace period; one that has finds the new files (invariant 1).
            checked += check_served(server.port)
            if proc.returncode == 0:
                completed += 1
                verified_since_publish = False
                publish(setup.vendor_root)   # keep giving the next run work to be killed in
        assert kills >= KILLS and cut_short and verified_since_publish, \
            f"only {kills} of {attempts} runs were still going when killed, or none left verified work"
        done = subprocess.run([*command[:3], "sync", "--json", "-c", str(setup.config_path)], env=env,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert_snapshot_complete(setup.store)
        checked += check_served(server.port)
        # What earlier killed runs verified was re-used, not fetched again.
        assert report["files_reused"] > 0
        print(f"\nkill check: {kills} SIGKILLs in {attempts} runs of ~{duration:.1f} s ({completed} finished "
              f"first), {checked} served files checked, final sync re-used {report['files_reused']} and "
              f"fetched {report['files_fetched']} files")
    assert "Traceback" not in server.stderr, server.stderr[-2000:]
