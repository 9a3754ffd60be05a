"""The simulated vendor over a real socket: HTTP behaviour and every fault it can inject."""

from __future__ import annotations

import email.utils
import gzip
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from vendorkit import PASSWORD, USER, auth_header, fetch

from updmirror.errors import FormatError, SignatureError, UnsafePathError
from updmirror.eset.modules import is_module_section, modules
from updmirror.eset.nup import inspect, verify
from updmirror.eset.updatever import UpdateVer
from updmirror.vendor import server as server_module
from updmirror.vendor.faults import Fault
from updmirror.vendor.server import ESCAPES, VendorServer, control_request

INDEX = "eset_upd/ep11/dll/update.ver"


def _index(root) -> UpdateVer:
    return UpdateVer.parse((root / "www" / INDEX).read_bytes())


def _a_nup(root, smallest: bool = False) -> str:
    mods = [m for m in modules(_index(root), f"http://h/{INDEX}") if m.size is not None]
    pick = min(mods, key=lambda m: m.size) if smallest else max(mods, key=lambda m: m.size)
    return pick.path


# -- plain HTTP ------------------------------------------------------------------
def test_basic_auth_is_required(server):
    missing = fetch(server, "/" + INDEX, auth=False)
    assert missing.status == 401
    assert missing.headers["WWW-Authenticate"].startswith("Basic ")
    wrong = fetch(server, "/" + INDEX, headers=auth_header(USER, PASSWORD + "x"))
    assert wrong.status == 401
    other_user = fetch(server, "/" + INDEX, headers=auth_header("EAV-9999999999", PASSWORD))
    assert other_user.status == 401
    garbage = fetch(server, "/" + INDEX, headers={"Authorization": "Basic !!!"})
    assert garbage.status == 401
    assert PASSWORD.encode() not in missing.body + wrong.body
    assert fetch(server, "/" + INDEX).status == 200
    assert [r.status for r in server.requests] == [401, 401, 401, 401, 200]


def test_get_and_head_carry_length_and_last_modified(server, vendor_root):
    root, _ = vendor_root
    path = _a_nup(root)
    on_disk = (root / "www" / path.lstrip("/"))
    got = fetch(server, path)
    assert got.status == 200 and got.body == on_disk.read_bytes()
    assert int(got.headers["Content-Length"]) == on_disk.stat().st_size
    assert email.utils.parsedate_to_datetime(got.headers["Last-Modified"]).timestamp() == int(on_disk.stat().st_mtime)
    head = fetch(server, path, method="HEAD")
    assert head.status == 200 and head.body == b""
    assert head.headers["Content-Length"] == got.headers["Content-Length"]
    assert server.count(path, method="HEAD") == 1 and server.count(path, method="GET") == 1
    server.reset_requests()
    assert server.requests == []


def test_if_modified_since_gives_304(server):
    first = fetch(server, "/" + INDEX)
    last_modified = first.headers["Last-Modified"]
    same = fetch(server, "/" + INDEX, headers={"If-Modified-Since": last_modified})
    assert same.status == 304 and same.body == b""
    older = email.utils.formatdate(email.utils.parsedate_to_datetime(last_modified).timestamp() - 3600, usegmt=True)
    assert fetch(server, "/" + INDEX, headers={"If-Modified-Since": older}).status == 200
    assert fetch(server, "/" + INDEX, headers={"If-Modified-Since": "not a date"}).status == 200


def test_ranges_resume_a_download(server, vendor_root):
    root, _ = vendor_root
    path = _a_nup(root)
    whole = (root / "www" / path.lstrip("/")).read_bytes()
    tail = fetch(server, path, headers={"Range": "bytes=1000-"})
    assert tail.status == 206 and tail.body == whole[1000:]
    assert tail.headers["Content-Range"] == f"bytes 1000-{len(whole) - 1}/{len(whole)}"
    assert int(tail.headers["Content-Length"]) == len(whole) - 1000
    middle = fetch(server, path, headers={"Range": "bytes=10-19"})
    assert middle.status == 206 and middle.body == whole[10:20]
    beyond = fetch(server, path, headers={"Range": f"bytes={len(whole)}-"})
    assert beyond.status == 416 and beyond.headers["Content-Range"] == f"bytes */{len(whole)}"


def test_gzip_only_for_clients_that_accept_it(vendor_root):
    root, _ = vendor_root
    with VendorServer(root / "www", USER, PASSWORD, gzip=True) as srv:
        plain = fetch(srv, "/" + INDEX)
        assert "Content-Encoding" not in plain.headers
        zipped = fetch(srv, "/" + INDEX, headers={"Accept-Encoding": "gzip, deflate"})
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert int(zipped.headers["Content-Length"]) == len(zipped.body) < len(plain.body) / 3
        assert gzip.decompress(zipped.body) == plain.body
        nup = _a_nup(root, smallest=True)
        got = fetch(srv, nup, headers={"Accept-Encoding": "gzip"})
        assert gzip.decompress(got.body) == (root / "www" / nup.lstrip("/")).read_bytes()


def test_gzip_streams_large_files_without_a_length(vendor_root, monkeypatch):
    root, _ = vendor_root
    monkeypatch.setattr(server_module, "GZIP_IN_MEMORY", 0)   # every file counts as large
    nup = _a_nup(root)
    with VendorServer(root / "www", USER, PASSWORD, gzip=True) as srv:
        got = fetch(srv, nup, headers={"Accept-Encoding": "gzip"})
    assert got.error is None and got.headers["Content-Encoding"] == "gzip"
    assert got.headers["Content-Length"] is None and got.headers["Transfer-Encoding"] == "chunked"
    assert gzip.decompress(got.body) == (root / "www" / nup.lstrip("/")).read_bytes()


def test_rar_index(vendor_root):
    root, _ = vendor_root
    with VendorServer(root / "www", USER, PASSWORD, rar_index=True) as srv:
        got = fetch(srv, "/" + INDEX)
    assert got.body.startswith(b"Rar!\x1a\x07")
    assert UpdateVer.parse(got.body).to_bytes() == (root / "www" / INDEX).read_bytes()


def _raw_get(srv: VendorServer, raw_path: str) -> int:
    """A request line sent as written (no client normalises the path)."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        creds = auth_header()["Authorization"]
        s.sendall(f"GET {raw_path} HTTP/1.1\r\nHost: x\r\nAuthorization: {creds}\r\nConnection: close\r\n\r\n".encode())
        head = s.recv(4096).split(b"\r\n", 1)[0]
    return int(head.split()[1])


@pytest.mark.parametrize("raw_path", [
    "/../vendor.json", "/%2e%2e/vendor.json", "/eset_upd/..%2f..%2fvendor.json", "/eset_upd/%2e%2e/../vendor-key.pem",
    "/eset_upd/", "/eset_upd", "/", "/eset_upd/ep11/dll/update.ver%00",
    "/eset_upd\\ep11\\dll\\update.ver", "/eset_upd/ep11/dll/no-such.ver",
])
def test_no_listings_no_escape_404_for_missing(server, raw_path):
    assert _raw_get(server, raw_path) == 404
    assert _raw_get(server, "/" + INDEX) == 200


@pytest.mark.parametrize("raw_path", ["//" + INDEX, "/eset_upd//ep11///dll/update.ver"])
def test_repeated_slashes_are_merged_like_the_vendors_servers_do(server, raw_path):
    assert _raw_get(server, raw_path) == 200


@pytest.mark.parametrize("raw_path", ["//../vendor.json", "/eset_upd//..//..//vendor.json", "/eset_upd/%2F%2F/x"])
def test_merging_slashes_opens_no_escape(server, raw_path):
    assert _raw_get(server, raw_path) == 404


# -- faults ----------------------------------------------------------------------
@pytest.mark.parametrize("code", [401, 403, 404, 500])
def test_fault_status(server, code):
    server.set_faults([Fault("status", match="eset_upd/*", arg=code, times=2)])
    assert [fetch(server, "/" + INDEX).status for _ in range(3)] == [code, code, 200]


def test_fault_429_with_retry_after(server, vendor_root):
    server.set_faults([Fault.parse("status:429,7@*.nup")])
    got = fetch(server, _a_nup(vendor_root[0]))
    assert got.status == 429 and got.headers["Retry-After"] == "7"
    assert fetch(server, "/" + INDEX).status == 200   # the glob spares the index


def test_fault_stall(server):
    server.set_faults([Fault("stall", arg=20)])
    started = time.monotonic()
    got = fetch(server, "/" + INDEX, timeout=1)
    assert got.status == 200 and isinstance(got.error, TimeoutError)
    assert time.monotonic() - started < 5
    assert 0 < len(got.body) < int(got.headers["Content-Length"])


def test_fault_slow(server):
    server.set_faults([Fault("slow", arg=400)])
    conn_started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        creds = auth_header()["Authorization"]
        s.sendall(f"GET /{INDEX} HTTP/1.1\r\nHost: x\r\nAuthorization: {creds}\r\n\r\n".encode())
        received = b""
        while time.monotonic() - conn_started < 1.5:
            s.settimeout(0.3)
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    # About 400 bytes a second: some of the body, nowhere near all of it.
    assert 100 < len(body) < 1500 < length


def test_fault_truncate(server, vendor_root):
    path = _a_nup(vendor_root[0])
    server.set_faults([Fault("truncate", match="*.nup", times=1)])
    got = fetch(server, path)
    assert got.status == 200 and got.error is not None
    assert len(got.body) < int(got.headers["Content-Length"])
    assert len(fetch(server, path).body) == int(got.headers["Content-Length"])   # times=1: then normal


def test_fault_wrong_size(server, vendor_root):
    root, _ = vendor_root
    server.set_faults([Fault("wrong_size", arg=4)])
    served = UpdateVer.parse(fetch(server, "/" + INDEX).body)
    wrong = [s for s in served.sections if is_module_section(s) and "size" in s
             and int(s["size"]) != (root / "www" / s["file"].lstrip("/")).stat().st_size]
    assert len(wrong) == 4


def test_fault_bad_crc(server, vendor_root, vendor_state, tmp_path):
    path = _a_nup(vendor_root[0], smallest=True)
    server.set_faults([Fault("bad_crc")])
    got = fetch(server, path)
    assert got.status == 200 and len(got.body) == int(got.headers["Content-Length"])
    with pytest.raises(SignatureError, match="CRC"):
        verify(io.BytesIO(got.body), path, [vendor_state.fingerprint])
    assert fetch(server, "/" + INDEX).body == (vendor_root[0] / "www" / INDEX).read_bytes()


def test_fault_bad_signature(server, vendor_root, vendor_state):
    path = _a_nup(vendor_root[0])
    server.set_faults([Fault("bad_signature", match="endpoint*")])
    got = fetch(server, path)
    inspect(io.BytesIO(got.body), path)   # structure, size and CRC still fine ...
    with pytest.raises(SignatureError, match="no signature by a pinned key"):
        verify(io.BytesIO(got.body), path, [vendor_state.fingerprint])   # ... the signature is not


def test_fault_captive_portal(server):
    server.set_faults([Fault("captive_portal", match="*update.ver")])
    got = fetch(server, "/" + INDEX)
    assert got.status == 200 and got.headers["Content-Type"].startswith("text/html")
    with pytest.raises(FormatError, match="HTML"):
        UpdateVer.parse(got.body)


def test_fault_escape(server):
    server.set_faults([Fault("escape")])
    served = UpdateVer.parse(fetch(server, "/" + INDEX).body)
    files = {s["file"] for s in served.sections if is_module_section(s)}
    assert set(ESCAPES) <= files and "../../etc/passwd" in files
    with pytest.raises(UnsafePathError):
        modules(served, f"http://127.0.0.1:{server.port}/{INDEX}")


def test_fault_endless(server):
    server.set_faults([Fault("endless", arg=12)])
    started = time.monotonic()
    conn = __import__("http.client").client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/" + INDEX, headers=auth_header())
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Length") is None
    received = 0
    while received <= 10 * 2**20 and time.monotonic() - started < 20:
        chunk = resp.read1(1 << 20)
        if not chunk:
            break
        received += len(chunk)
    conn.close()
    assert received > 10 * 2**20


def test_faults_over_the_control_endpoint(vendor_root):
    root, _ = vendor_root
    with VendorServer(root / "www", USER, PASSWORD, control=True) as srv:
        control_request(srv.url, [Fault("status", arg=503, times=1)])
        got = fetch(srv, "/" + INDEX)
        assert got.status == 503 and got.headers["Retry-After"] == "1"
        assert fetch(srv, "/" + INDEX).status == 200
    with VendorServer(root / "www", USER, PASSWORD) as srv:   # off unless asked for
        assert fetch(srv, "/__vendor/faults", method="POST").status == 405


def test_stop_ends_stalled_connections_at_once(vendor_root):
    root, _ = vendor_root
    srv = VendorServer(root / "www", USER, PASSWORD).start()
    srv.set_faults([Fault("stall", arg=600)])
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(f"GET /{INDEX} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth_header()['Authorization']}\r\n\r\n"
                  .encode())
        assert s.recv(100)
        started = time.monotonic()
        srv.stop()
        assert time.monotonic() - started < 5


# -- the command ------------------------------------------------------------------
def test_vendor_serve_command(vendor_root, free_port):
    root, report = vendor_root
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "updmirror", "vendor", "serve", "--root", str(root),
         "--listen", f"127.0.0.1:{free_port}", "--user", USER, "--password", PASSWORD,
         "--fault", "status:429,3@*update.ver*1", "--control"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(line.startswith("control:") for line in lines):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        output = "".join(lines)
        assert f"http://127.0.0.1:{free_port}/" in output and report.fingerprint in output
        srv = VendorServer.__new__(VendorServer)
        srv.port = free_port
        first = fetch(srv, "/" + INDEX)
        assert first.status == 429 and first.headers["Retry-After"] == "3"
        assert fetch(srv, "/" + INDEX).status == 200
        control_request(f"http://127.0.0.1:{free_port}/", [Fault("status", arg=403)])
        assert fetch(srv, "/" + INDEX).status == 403
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert PASSWORD not in output + rest
