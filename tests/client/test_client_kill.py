"""A client killed at any moment leaves DIR as before or as after: SIGKILL at random points."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from clientkit import PASSWORD, SRC, USER, RunningUpdate, copy_dir, endpoint, source, state, update

from updmirror.client import DestinationError, installed

#: Kills at random moments, and kills aimed at the steps of the install itself: while the
#: new version is being built, once it is complete (around the pointer swap), and once the
#: pointer is swapped (during the clean-up after it).
RANDOM_KILLS = 8
AIMED_KILLS = 2
AIMS = ("build", "complete", "swapped")


def client_process(url: str, dest, fingerprint: str, password_file) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "updmirror", "client", "update", "--source", url, "--tree", "ep11",
         "--dest", str(dest), "--user", USER, "--password-file", str(password_file),
         "--signing-key", fingerprint, "--timeout", "5", "--json"],
        env=dict(os.environ, PYTHONPATH=SRC), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def leftovers(dest) -> set[str]:
    """What a killed client left beside the installed version."""
    found = set()
    current = installed(dest).id
    for v in (dest / "versions").iterdir() if (dest / "versions").exists() else ():
        if v.name.startswith(".new-"):
            found.add("a version being built")
        elif v.name != current:
            found.add("an old or unpointed version")
    if any((dest / "staging" / "parts").glob("*")) if (dest / "staging" / "parts").exists() else False:
        found.add("partial downloads")
    if any((dest / "staging" / "verified").glob("*")) if (dest / "staging" / "verified").exists() else False:
        found.add("verified downloads")
    if any(p.name.startswith(".current-") for p in dest.iterdir()):
        found.add("a pointer not yet swapped")
    return found


def wait_for(predicate, proc, limit: float = 15.0) -> bool:
    until = time.monotonic() + limit
    while time.monotonic() < until and proc.poll() is None:
        if predicate():
            return True
        time.sleep(0.0005)
    return False


@pytest.mark.timeout(900)   # 14 client processes and their recoveries, on a shared, loaded machine
def test_a_client_killed_at_any_moment_leaves_dir_before_or_after(releases, tmp_path):
    password_file = tmp_path / "pw"
    password_file.write_text(PASSWORD + "\n")
    template = tmp_path / "before"
    with releases.serve(releases.first) as old:
        update(template, [source(old.url)], endpoint(releases))
    before = state(template)
    before_id = installed(template).id

    with releases.serve(releases.second) as vendor:
        url = vendor.url.rstrip("/")
        reference = copy_dir(template, tmp_path / "reference")
        started = time.monotonic()
        proc = client_process(url, reference, releases.fingerprint, password_file)
        out, err = proc.communicate(timeout=120)
        span = time.monotonic() - started
        assert proc.returncode == 0, err
        after = state(reference)
        assert after != before

        rng = random.Random(9)
        outcomes: Counter[str] = Counter()
        left: Counter[str] = Counter()
        aims = [None] * RANDOM_KILLS + [aim for aim in AIMS for _ in range(AIMED_KILLS)]
        new_id = f"{int(before_id) + 1:06d}"
        caught = {
            "build": lambda d: any(p.name.startswith(".new-") for p in (d / "versions").iterdir()),
            "complete": lambda d: (d / "versions" / new_id).exists(),
            "swapped": lambda d: installed(d).id == new_id,
        }
        aimed_hits = 0
        for n, aim in enumerate(aims):
            dest = copy_dir(template, tmp_path / f"run{n}")
            proc = client_process(url, dest, releases.fingerprint, password_file)
            if aim is None:
                time.sleep(rng.uniform(0, span))
            else:
                aimed_hits += wait_for(lambda d=dest, a=aim: caught[a](d), proc)
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
            now = state(dest)                       # raises if DIR is not whole
            assert now in (before, after), f"kill {n}: DIR is neither as before nor as after"
            outcomes["after" if now == after else "before"] += 1
            for what in leftovers(dest):
                left[what] += 1
            # The next update finishes the job and leaves nothing behind.
            result = update(dest, [source(url)], endpoint(releases))
            assert state(dest) == after and leftovers(dest) == set()
            if now == after:
                assert result.status == "current"
    print(f"\n{len(aims)} kills ({RANDOM_KILLS} at random over {span:.2f} s, {len(aims) - RANDOM_KILLS} aimed at the "
          f"install, {aimed_hits} of them caught it): DIR as before {outcomes['before']}, as after "
          f"{outcomes['after']}, neither 0; left behind: {dict(left)}")
    assert outcomes["before"] > 0 and outcomes["after"] > 0


def test_an_update_resumes_with_what_a_killed_one_had_verified(releases, tmp_path):
    password_file = tmp_path / "pw"
    password_file.write_text(PASSWORD)
    dest = tmp_path / "av"
    with releases.serve(releases.second) as vendor:
        proc = client_process(vendor.url.rstrip("/"), dest, releases.fingerprint, password_file)
        verified = dest / "staging" / "verified"
        assert wait_for(lambda: verified.exists() and len(list(verified.iterdir())) >= 5, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        assert installed(dest).id is None
        result = update(dest, [source(vendor.url)], endpoint(releases))
    assert result.status == "updated" and result.reused_files >= 5
    assert result.reused_files + result.downloaded_files == result.installed_files


def test_one_update_at_a_time_runs_on_a_folder(releases, tmp_path):
    dest = tmp_path / "av"
    with RunningUpdate(releases, dest, tmp_path) as first:
        with pytest.raises(DestinationError, match=f"another update \\(pid {first.proc.pid}\\)"):
            update(dest, [source("http://127.0.0.1:9")], endpoint(releases))
