"""`updmirror run`: the server, and each scheduled sync in a process of its own."""

import asyncio
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from serverkit import EP11_INDEX, INDEX_BYTES, ServerProcess, ep11_store, get, wait_until, write_config
from updmirror.daemon import sync_command, sync_in_child
from updmirror.errors import UpdmirrorError


@pytest.fixture
def store(tmp_path):
    return ep11_store(tmp_path)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode() for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _sync_children(pid: int) -> list[int]:
    return [c for c in _children(pid) if {"sync", "--json"} <= set(_cmdline(c))]


def _socket_inode(local_port: int, remote_port: int) -> str | None:
    """The inode of the established loopback TCP socket from `local_port` to
    `remote_port` (sockets in TIME_WAIT on the same ports have inode 0)."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote = (int(x.split(":")[1], 16) for x in fields[1:3])
            if (local, remote) == (local_port, remote_port) and fields[3] == "01" and fields[9] != "0":
                return fields[9]
    return None


def _holds(pid: int, inode: str) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]"
                   for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_run_keeps_serving_when_the_sync_fails(tmp_path, store, free_port):
    cfg = write_config(tmp_path, store, free_port, upstream={"retries": 0, "connect_timeout": 1},
                       mirror={"interval": "2s"})
    server = ServerProcess(cfg, free_port, command="run").wait_ready()
    try:
        records = store / "state"
        assert wait_until(lambda: any(records.glob("*")), 20)     # the sync ran (and failed)
        # A second sync process means the daemon has taken in the first one's failure.
        seen: set[int] = set()

        def second_sync() -> bool:
            seen.update(_sync_children(server.pid))
            return len(seen) >= 2

        assert wait_until(second_sync, 20, step=0.02)
        for _ in range(3):
            assert get(free_port, "/" + EP11_INDEX).body == INDEX_BYTES
        assert server.proc.poll() is None
    finally:
        code, err = server.stop()
    assert code == 0, err
    assert "sync failed" in err and "still serving the last good snapshot" in err


def test_each_sync_is_a_child_process_that_stops_with_the_daemon(tmp_path, free_port):
    # An upstream that takes the connection and never answers: the sync hangs
    # in its download for as long as the test needs to look at it. An empty
    # store, so that the first sync starts at once.
    store = tmp_path / "empty-store"
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        # (Announcements off: the supervisor's own request would be the first connection.)
        cfg = write_config(tmp_path, store, free_port, mirror={"interval": "1h"},
                           upstream={"announce": "off"})
        cfg.write_text(cfg.read_text().replace("http://127.0.0.1:9/",
                                               f"http://127.0.0.1:{silent.getsockname()[1]}/"))
        server = ServerProcess(cfg, free_port, command="run").wait_ready()
        try:
            child = wait_until(lambda: next(iter(_sync_children(server.pid)), None), 20)
            assert child, "no sync process appeared under the daemon"
            args = _cmdline(child)
            assert args[args.index("-c") + 1] == str(cfg.resolve())
            # The download from upstream is the child's connection, not the supervisor's.
            silent.settimeout(20)
            conn, (_, port) = silent.accept()
            with conn:
                inode = _socket_inode(port, silent.getsockname()[1])
                assert inode and _holds(child, inode) and not _holds(server.pid, inode)
            assert get(free_port, "/" + EP11_INDEX).status == 404    # served meanwhile: nothing yet
        finally:
            code, err = server.stop()
        assert code == 0, err
        assert wait_until(lambda: not _alive(child), 10), "the sync process outlived the daemon"


def test_the_sync_command_line_is_this_interpreter_and_an_absolute_config(tmp_path):
    args = sync_command(Path("mirror.toml"), debug=True)
    assert args[:3] == [sys.executable, "-m", "updmirror"] and "--debug" in args
    assert args[args.index("-c") + 1] == str(Path.cwd() / "mirror.toml") and args[-1] == "--json"
    assert "-q" in sync_command("m.toml", quiet=True) and "-q" not in args


def test_a_sync_process_without_a_summary_is_an_error_not_a_success(tmp_path):
    missing = tmp_path / "nowhere.toml"
    started = time.monotonic()
    with pytest.raises(UpdmirrorError, match="exited with code 2 without a summary"):
        asyncio.run(sync_in_child(missing))
    assert time.monotonic() - started < 30


def test_a_failed_sync_comes_back_as_not_ok_with_its_reason(tmp_path, store):
    cfg = write_config(tmp_path, store, 1, upstream={"retries": 0, "connect_timeout": 1})
    outcome = asyncio.run(sync_in_child(cfg))
    assert outcome.ok is False and outcome.exit_code == 1
    assert outcome.message and outcome.summary["ok"] is False
    assert "127.0.0.1:9" in outcome.message or outcome.summary["errors"]


def test_a_summary_that_arrives_in_pieces_is_read_whole(monkeypatch):
    # A real sync's JSON can come in several writes; reading what has arrived
    # so far would cut it and turn a finished sync into "no summary".
    script = ("import json, sys, time\n"
              "text = json.dumps({'ok': True, 'message': 'mirror is current', 'pad': 'x' * 200000})\n"
              "sys.stdout.write(text[:100]); sys.stdout.flush(); time.sleep(0.3)\n"
              "sys.stdout.write(text[100:]); sys.stdout.flush()\n")
    monkeypatch.setattr("updmirror.daemon.process.sync_command",
                        lambda config, **kw: [sys.executable, "-c", script])
    outcome = asyncio.run(sync_in_child("mirror.toml"))
    assert outcome.ok is True and outcome.message == "mirror is current" and outcome.exit_code == 0
    assert len(outcome.summary["pad"]) == 200000
