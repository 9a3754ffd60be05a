"""`updmirror serve` as an administrator meets it (`run`: tests/daemon/test_run.py)."""

import os
import signal
import socket
import subprocess
import sys

import pytest

from serverkit import (
    EP11_INDEX,
    INDEX_BYTES,
    SRC,
    Client,
    ServerProcess,
    ep11_store,
    get,
    request_bytes,
    wait_until,
    write_config,
)


@pytest.fixture
def store(tmp_path):
    return ep11_store(tmp_path, {"/m/big.nup": b"\x01" * (16 << 20)})


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "updmirror", *args], env={"PYTHONPATH": SRC},
                          capture_output=True, text=True, timeout=timeout)


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path, store, free_port):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port))
        taken.listen()
        for workers in (1, 2):
            cfg = write_config(tmp_path, store, free_port, workers=workers)
            result = run_cli("serve", "-c", str(cfg))
            assert result.returncode == 2
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1, result.stderr
            assert "address already in use" in lines[0] and f"127.0.0.1:{free_port}" in lines[0]


def test_a_second_updmirror_on_the_same_port_is_refused(tmp_path, store, free_port):
    cfg = write_config(tmp_path, store, free_port, workers=2)
    with ServerProcess(cfg, free_port):
        result = run_cli("serve", "-c", str(cfg))
    assert result.returncode == 2 and "address already in use" in result.stderr


def test_a_missing_certificate_is_one_line_and_exit_2(tmp_path, store, free_port):
    cfg = write_config(tmp_path, store, free_port, tls_cert=tmp_path / "nope.pem",
                       tls_key=tmp_path / "nope.key")
    result = run_cli("serve", "-c", str(cfg))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "nope.pem" in result.stderr and "not found" in result.stderr


def test_an_unreadable_htpasswd_is_one_line_and_exit_2(tmp_path, store, free_port):
    cfg = write_config(tmp_path, store, free_port, auth="basic", htpasswd=tmp_path / "missing-htpasswd")
    result = run_cli("serve", "-c", str(cfg))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "missing-htpasswd" in result.stderr


def test_an_exposed_server_without_auth_warns_loudly(tmp_path, store, free_port):
    from updmirror import config
    from updmirror.serve.master import exposure_warning

    exposed = config.load(write_config(tmp_path, store, free_port))
    assert exposure_warning(exposed) is None          # loopback only
    path = tmp_path / "mirror.toml"
    path.write_text(path.read_text().replace("127.0.0.1:", "0.0.0.0:"))
    warning = exposure_warning(config.load(path))
    assert "MUST NOT be reachable from the" in warning and "0.0.0.0" in warning


def test_sighup_reloads_the_allow_list_in_every_worker(tmp_path, store, free_port):
    cfg = write_config(tmp_path, store, free_port, workers=2, allow=["127.0.0.0/8"])
    with ServerProcess(cfg, free_port) as server:
        kept = Client(free_port)
        assert kept.request("/" + EP11_INDEX).status == 200
        write_config(tmp_path, store, free_port, workers=2, allow=["10.0.0.0/8"])
        server.signal(signal.SIGHUP)
        assert wait_until(lambda: all(get(free_port, "/" + EP11_INDEX).status == 403
                                      for _ in range(6)), 10)
        # The connection opened before the reload was not dropped.
        assert kept.request("/" + EP11_INDEX).status == 403
        kept.close()
        code, _ = server.stop()
    assert code == 0


def test_sigterm_lets_a_download_in_flight_finish(tmp_path, store, free_port):
    cfg = write_config(tmp_path, store, free_port, workers=2)
    server = ServerProcess(cfg, free_port).wait_ready()
    try:
        c = Client(free_port, timeout=30)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.send(request_bytes("/m/big.nup"))
        assert c._fill()
        server.signal(signal.SIGTERM)

        def refused() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", free_port), timeout=2) as s:
                    s.recv(1)
            except OSError:
                return True
            return False

        # No new connections once stopping ...
        assert wait_until(refused, 5)
        # ... but the download in flight completes.
        r = c.read_response()
        assert r.status == 200 and len(r.body) == 16 << 20
        c.close()
    finally:
        code, err = server.stop()
    assert code == 0, err


def _workers(master_pid: int) -> list[int]:
    with open(f"/proc/{master_pid}/task/{master_pid}/children") as f:
        return [int(p) for p in f.read().split()]


def test_a_crashed_worker_is_replaced(tmp_path, store, free_port):
    cfg = write_config(tmp_path, store, free_port, workers=2)
    with ServerProcess(cfg, free_port) as server:
        before = _workers(server.proc.pid)
        assert len(before) == 2
        os.kill(before[0], signal.SIGKILL)
        assert wait_until(lambda: len(w := _workers(server.proc.pid)) == 2 and before[0] not in w, 10)
        assert all(get(free_port, "/" + EP11_INDEX).body == INDEX_BYTES for _ in range(6))
        code, err = server.stop()
    assert code == 0 and "starting a new one" in err


@pytest.mark.parametrize("content", [None, "alice:plaintext\n"], ids=["missing", "bad-line"])
def test_an_htpasswd_error_names_the_configuration_key(tmp_path, store, free_port, content):
    pw = tmp_path / "the-htpasswd"
    if content is not None:
        pw.write_text(content)
    cfg = write_config(tmp_path, store, free_port, auth="basic", htpasswd=pw)
    result = run_cli("serve", "-c", str(cfg))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "[http] htpasswd" in result.stderr and str(cfg) in result.stderr and "the-htpasswd" in result.stderr


def test_workers_stop_when_their_master_is_killed(tmp_path, store, free_port):
    cfg = write_config(tmp_path, store, free_port, workers=2)
    with ServerProcess(cfg, free_port) as server:
        workers = _workers(server.proc.pid)
        assert len(workers) == 2
        server.proc.kill()
        server.proc.wait(10)
        try:
            # Else they keep the port, and a new server would share it with them.
            assert wait_until(lambda: not any(os.path.exists(f"/proc/{p}") and _state(p) != "Z"
                                              for p in workers), 10)
        finally:
            for p in workers:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
