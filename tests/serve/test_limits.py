"""Who may connect and what a client can hold: allow list, timeouts, size caps,
the connection cap."""

import socket
import time

import pytest

from serverkit import (
    EP11_INDEX,
    INDEX_BYTES,
    Client,
    InProcessServer,
    ep11_store,
    get,
    publish,
    request_bytes,
    wait_until,
    write_config,
)
from updmirror.serve import protocol


@pytest.fixture
def store(tmp_path):
    return ep11_store(tmp_path)


def test_an_address_outside_the_allow_list_gets_403(tmp_path, store, free_port):
    cfg = write_config(tmp_path, store, free_port, allow=["127.0.0.1/32"])
    with InProcessServer(cfg):
        assert get(free_port, "/" + EP11_INDEX).status == 200
        with Client(free_port, source="127.0.0.2") as c:
            r = c.request("/" + EP11_INDEX)
        assert r.status == 403 and INDEX_BYTES not in r.body


def test_allow_list_reload_applies_to_open_connections(tmp_path, store, free_port):
    cfg = write_config(tmp_path, store, free_port, allow=["127.0.0.0/8"])
    with InProcessServer(cfg) as server, Client(free_port, source="127.0.0.2") as c:
        assert c.request("/" + EP11_INDEX).status == 200
        write_config(tmp_path, store, free_port, allow=["127.0.0.1/32"])
        server.call(server.worker.reload)
        assert wait_until(lambda: server.worker.allow_generation > 1, 5)
        assert c.request("/" + EP11_INDEX).status == 403


def test_a_client_too_slow_to_send_its_head_is_closed(tmp_path, store, free_port, monkeypatch):
    monkeypatch.setattr(protocol, "HEADER_TIMEOUT", 1.0)
    cfg = write_config(tmp_path, store, free_port)
    with InProcessServer(cfg), Client(free_port) as slow, Client(free_port) as silent:
        slow.send(b"GET /" + EP11_INDEX.encode() + b" HTTP/1.1\r\nHost: m\r\n")   # never finished
        started = time.monotonic()
        assert slow.closed_by_server(timeout=5)
        assert silent.closed_by_server(timeout=5)
        assert time.monotonic() - started < 4
        # The server is not held: others are served all along.
        assert get(free_port, "/" + EP11_INDEX).status == 200


def test_an_idle_keep_alive_connection_is_closed(tmp_path, store, free_port, monkeypatch):
    monkeypatch.setattr(protocol, "IDLE_TIMEOUT", 1.0)
    cfg = write_config(tmp_path, store, free_port)
    with InProcessServer(cfg), Client(free_port) as c:
        assert c.request("/" + EP11_INDEX).status == 200
        assert c.closed_by_server(timeout=5)


def test_an_oversized_head_gets_431_and_a_long_request_line_414(tmp_path, store, free_port):
    cfg = write_config(tmp_path, store, free_port)
    with InProcessServer(cfg):
        with Client(free_port) as c:
            c.send(b"GET / HTTP/1.1\r\n" + b"X-Filler: " + b"a" * 20000 + b"\r\n\r\n")
            assert c.read_response().status == 431
            assert c.closed_by_server()
        with Client(free_port) as c:
            c.send(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n")
            assert c.read_response().status == 414
        with Client(free_port) as c:
            headers = {f"X-{i}": "v" for i in range(150)}
            assert c.request("/" + EP11_INDEX, headers=headers).status == 431


def test_connections_beyond_the_cap_get_a_clear_503(tmp_path, store, free_port):
    cfg = write_config(tmp_path, store, free_port, max_connections=2)
    with InProcessServer(cfg) as server:
        held = [Client(free_port), Client(free_port)]
        try:
            assert wait_until(lambda: len(server.worker.connections) == 2, 5)
            with Client(free_port) as extra:
                r = extra.read_response()
                assert r.status == 503 and b"at most 2 connections" in r.body
                assert extra.closed_by_server()
            assert held[0].request("/" + EP11_INDEX).status == 200
        finally:
            for c in held:
                c.close()
        assert wait_until(lambda: get(free_port, "/" + EP11_INDEX).status == 200, 5)


def test_a_client_that_never_reads_cannot_pile_up_responses(tmp_path, free_port):
    root = tmp_path / "store"
    big_index = b"; filler\r\n" * 5000       # 50 KB, answered from memory
    publish(root, {}, {EP11_INDEX: big_index})
    cfg = write_config(tmp_path, root, free_port)
    with InProcessServer(cfg) as server:
        sock = socket.create_connection(("127.0.0.1", free_port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(0.2)
        try:
            requests = request_bytes("/" + EP11_INDEX) * 2000      # 100 MB of answers if all were made
            try:
                sock.sendall(requests)
            except TimeoutError:
                pass    # the server stopped reading: that is the point
            # Measured once the server has met the back-pressure (its writes paused),
            # not after a guessed pause: before that nothing could have piled up.
            assert wait_until(lambda: any(c.write_paused for c in server.worker.connections), 10)
            conn = next(iter(server.worker.connections))
            assert conn.transport.get_write_buffer_size() < 1024 * 1024
            assert len(conn.buf) < 1024 * 1024
        finally:
            sock.close()


def test_ipv4_clients_of_a_dual_stack_socket_are_judged_as_ipv4(tmp_path, store, free_port):
    log = tmp_path / "access.log"
    cfg = write_config(tmp_path, store, free_port, allow=["127.0.0.1/32"], access_log=log)
    cfg.write_text(cfg.read_text().replace(f'"127.0.0.1:{free_port}"', f'"[::]:{free_port}"'))
    with InProcessServer(cfg) as server, Client(free_port) as allowed:
        assert allowed.request("/" + EP11_INDEX).status == 200        # arrives as ::ffff:127.0.0.1
        # Judged while it is open: the connection's address in its IPv4 form.
        assert wait_until(lambda: len(server.worker.connections) == 1, 5)
        assert {c.addr for c in server.worker.connections} == {"127.0.0.1"}
        with Client(free_port, source="127.0.0.2") as refused:
            refused.send(request_bytes("/" + EP11_INDEX, headers={"Connection": "keep-alive"}))
            assert refused.read_response().status == 403
        # The refused one is answered and closed at once: its address as judged is in the access log.
        assert wait_until(lambda: log.exists() and len(log.read_text().splitlines()) == 2, 5)
        assert [line.split()[0] for line in log.read_text().splitlines()] == ["127.0.0.1", "127.0.0.2"]


def test_blank_lines_count_toward_the_header_timeout_and_reach_the_access_log(tmp_path, store, free_port,
                                                                             monkeypatch):
    monkeypatch.setattr(protocol, "HEADER_TIMEOUT", 1.0)
    log = tmp_path / "access.log"
    cfg = write_config(tmp_path, store, free_port, access_log=log)
    with InProcessServer(cfg), Client(free_port) as c:
        # One CRLF every 0.3 s: each alone would be a permitted stray line before a request.
        c.sock.settimeout(0.3)
        started = time.monotonic()
        answer, closed = b"", False
        while time.monotonic() - started < 6 and not closed:
            try:
                c.send(b"\r\n")
                chunk = c.sock.recv(4096)
                answer += chunk
                closed = not chunk
            except TimeoutError:
                continue
            except OSError:
                closed = True
        assert closed, "a client sending only blank lines was kept open"
        assert time.monotonic() - started < 3.5
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert wait_until(lambda: log.exists() and '"-" 408 ' in log.read_text(), 5), \
            log.read_text() if log.exists() else "no access log"


def test_one_address_cannot_take_every_connection(tmp_path, store, free_port):
    cfg = write_config(tmp_path, store, free_port, max_connections=10, max_connections_per_address=2)
    with InProcessServer(cfg) as server:
        held = [Client(free_port, source="127.0.0.2"), Client(free_port, source="127.0.0.2")]
        try:
            assert wait_until(lambda: len(server.worker.connections) == 2, 5)
            with Client(free_port, source="127.0.0.2") as extra:
                r = extra.read_response()
                assert r.status == 503 and b"to one address" in r.body and r.headers["retry-after"]
            # Others are served, and so is the address on the connections it holds.
            assert get(free_port, "/" + EP11_INDEX).status == 200
            assert held[1].request("/" + EP11_INDEX).status == 200
        finally:
            for c in held:
                c.close()
        with Client(free_port, source="127.0.0.2") as again:
            assert again.request("/" + EP11_INDEX).status == 200
        assert wait_until(lambda: server.worker.per_address == {}, 5), server.worker.per_address


def test_the_cap_is_lowered_to_what_the_descriptors_hold():
    from updmirror.serve.capacity import OVERFLOW, RESERVED_FDS, capacity

    roomy = capacity(20000, 1000, workers=2, open_files=65536)
    assert (roomy.connections, roomy.per_address, roomy.lowered_from) == (10000, 500, None)
    tight = capacity(20000, 1000, workers=1, open_files=1100)
    # A descriptor a connection and a quarter kept for files being sent, besides the reserve.
    assert tight.connections == (1100 - RESERVED_FDS - OVERFLOW) * 3 // 4 and tight.lowered_from == 20000
    assert tight.connections * 4 // 3 + OVERFLOW + RESERVED_FDS <= 1100
    assert tight.per_address == tight.connections // 2      # one address still cannot take them all
    assert capacity(2, 1000, workers=1, open_files=65536).per_address == 2     # as configured
