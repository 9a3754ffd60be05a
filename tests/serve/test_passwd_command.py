"""`updmirror passwd`, run as a user runs it."""

import os
import subprocess
import sys
from pathlib import Path

from statuskit import write_config
from updmirror.serve.auth import Htpasswd

SRC = Path(__file__).resolve().parents[2] / "src"
TREES = ("ep11",)


def updmirror(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "updmirror", *args], input=stdin, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=path), timeout=60)


def test_passwd_command_writes_bcrypt_from_stdin(tmp_path):
    cfg_path = write_config(tmp_path, TREES, '\n[http]\nauth = "basic"\nhtpasswd = "htpasswd"\n')
    result = updmirror("passwd", "-c", str(cfg_path), "alice", "--stdin", stdin="wonder land\n")
    assert result.returncode == 0, result.stderr
    assert "SIGHUP" in result.stdout and "wonder land" not in result.stdout + result.stderr
    users = Htpasswd.load(tmp_path / "htpasswd")
    assert users.check("alice", "wonder land") and not users.check("alice", "wonder land\n")
    assert (tmp_path / "htpasswd").read_text().startswith("alice:$2b$")


def test_passwd_command_names_the_key_of_a_damaged_htpasswd_file(tmp_path):
    cfg_path = write_config(tmp_path, TREES, '\n[http]\nauth = "basic"\nhtpasswd = "htpasswd"\n')
    (tmp_path / "htpasswd").write_text("bob:plain-text\n")
    result = updmirror("passwd", "-c", str(cfg_path), "alice", "--stdin", stdin="wonder land\n")
    assert result.returncode == 2
    assert "[http] htpasswd" in result.stderr and "line 1" in result.stderr and str(cfg_path) in result.stderr


def test_passwd_command_needs_an_htpasswd_setting(tmp_path):
    result = updmirror("passwd", "-c", str(write_config(tmp_path, TREES)), "alice", "--stdin", stdin="x\n")
    assert result.returncode == 2
    assert "htpasswd" in result.stderr and "mirror.toml" in result.stderr


def test_passwd_asks_twice_and_refuses_a_mismatch(tmp_path, monkeypatch):
    from updmirror.cli import main

    cfg_path = write_config(tmp_path, TREES, '\n[http]\nauth = "basic"\nhtpasswd = "htpasswd"\n')
    answers = iter(["first", "second"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["passwd", "-c", str(cfg_path), "bob"]) == 1
    assert not (tmp_path / "htpasswd").exists()
    answers = iter(["same", "same"])
    assert main(["passwd", "-c", str(cfg_path), "bob"]) == 0
    assert Htpasswd.load(tmp_path / "htpasswd").check("bob", "same")
