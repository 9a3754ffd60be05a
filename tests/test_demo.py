import os
import re
import signal
import socket
import subprocess
import sys
import time

from serverkit import SRC


def test_demo_runs_vendor_mirror_and_clients_end_to_end(tmp_path, free_port):
    proc = subprocess.run([sys.executable, "-m", "updmirror", "demo", "--dir", str(tmp_path / "demo"),
                           "--port", str(free_port), "--size-mb", "2"],
                          capture_output=True, text=True, timeout=240,
                          env=dict(os.environ, PYTHONPATH=SRC, COLUMNS="120"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout
    assert f"mirror-1 serving on http://127.0.0.1:{free_port}" in out
    assert "8 of 8 clients got a newer version" in out
    # The second tier: planned from the first mirror's manifest, its clients updated, the chain shown.
    assert "branch-mirror serving on http://127.0.0.1:" in out
    assert "3 of 3 branch-office clients got a newer version" in out
    assert "kept on the manifest's word without reading them" in out
    # ... by its daemon, woken by the first mirror's announcement, not by its hourly schedule.
    assert "hears of mirror-1's new snapshot (GET /updmirror/announce)" in out
    assert re.search(r"served by branch-mirror \d+\.\d s after mirror-1 published it", out), out
    assert "vendor -> mirror-1 (synced " in out and " -> branch-mirror (synced " in out
    assert " old against the vendor" in out
    assert f"status pages: http://127.0.0.1:{free_port}/status and http://127.0.0.1:" in out
    assert "(3 requests)" in out                       # the no-change sync: one per index
    assert "Demo-Pass1" not in out + proc.stderr       # the licence password is never shown


def _children(pid: int) -> list[int]:
    """Every descendant of `pid`, from /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, parent in parents.items() if parent == p]
        found += kids
        todo += kids
    return found


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_a_demo_stopped_with_sigterm_stops_its_mirror_server(tmp_path, free_port):
    proc = subprocess.Popen([sys.executable, "-m", "updmirror", "demo", "--dir", str(tmp_path / "demo"),
                             "--port", str(free_port), "--size-mb", "1", "--serve"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=SRC, COLUMNS="120"))
    mirror: list[int] = []
    try:
        until = time.monotonic() + 180
        while not _listening(free_port):
            assert proc.poll() is None and time.monotonic() < until, "the demo's mirror never listened"
            time.sleep(0.2)
        mirror = _children(proc.pid)
        assert mirror
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        assert not any(_listening(free_port) for _ in range(3)), "the mirror server still listens"

        def still_running() -> list[int]:
            alive = []
            for p in mirror:
                try:
                    if open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
                        alive.append(p)
                except OSError:
                    pass     # gone
            return alive

        until = time.monotonic() + 10
        while still_running() and time.monotonic() < until:
            time.sleep(0.1)
        left = still_running()
        assert not left, f"processes of the demo still running: {left}"
        assert proc.returncode != 0 and "Traceback" not in proc.stderr.read()
    finally:
        for p in mirror + [proc.pid]:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(10)
