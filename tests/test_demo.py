import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_demo_runs_vendor_mirror_and_clients_end_to_end(tmp_path, free_port):
    proc = subprocess.run([sys.executable, "-m", "updmirror", "demo", "--dir", str(tmp_path / "demo"),
                           "--port", str(free_port), "--size-mb", "2"],
                          capture_output=True, text=True, timeout=240,
                          env=dict(os.environ, PYTHONPATH=SRC, COLUMNS="120"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout
    assert f"mirror serving on http://127.0.0.1:{free_port}" in out
    assert "8 of 8 clients got a newer version" in out
    assert "(3 requests)" in out                       # the no-change sync: one per index
    assert "Demo-Pass1" not in out + proc.stderr       # the licence password is never shown
