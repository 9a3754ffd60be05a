"""HTTP Basic authentication, the admin-only status pages and the access log."""

import base64
import re

import bcrypt
import pytest
from helpers import (
    EP11_INDEX,
    INDEX_BYTES,
    Client,
    InProcessServer,
    ep11_store,
    get,
    wait_until,
    write_config,
)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def htpasswd(path, **users: str):
    path.write_text("".join(f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode()}\n"
                            for u, p in users.items()))
    return path


@pytest.fixture
def store(tmp_path):
    return ep11_store(tmp_path)


def test_without_valid_credentials_the_answer_is_401(tmp_path, store, free_port):
    pw = htpasswd(tmp_path / "htpasswd", alice="right horse")
    cfg = write_config(tmp_path, store, free_port, auth="basic", htpasswd=pw)
    with InProcessServer(cfg):
        r = get(free_port, "/" + EP11_INDEX)
        assert r.status == 401 and r.headers["www-authenticate"].startswith('Basic realm="updmirror"')
        assert INDEX_BYTES not in r.body
        assert get(free_port, "/" + EP11_INDEX, headers=basic("alice", "wrong")).status == 401
        assert get(free_port, "/" + EP11_INDEX, headers=basic("mallory", "right horse")).status == 401
        with Client(free_port) as c:
            for _ in range(3):      # the second and third come from the memory of good checks
                r = c.request("/" + EP11_INDEX, headers=basic("alice", "right horse"))
                assert (r.status, r.body) == (200, INDEX_BYTES)


def test_an_address_with_too_many_failures_is_blocked(tmp_path, store, free_port):
    pw = htpasswd(tmp_path / "htpasswd", alice="right horse")
    cfg = write_config(tmp_path, store, free_port, auth="basic", htpasswd=pw)
    with InProcessServer(cfg):
        statuses = [get(free_port, "/" + EP11_INDEX, headers=basic("alice", f"guess {i}")).status
                    for i in range(12)]
        assert statuses[0] == 401 and statuses[-1] == 429
        assert get(free_port, "/" + EP11_INDEX, headers=basic("alice", "right horse")).status == 429


def test_reload_reads_the_htpasswd_file_again(tmp_path, store, free_port):
    pw = htpasswd(tmp_path / "htpasswd", alice="old password")
    cfg = write_config(tmp_path, store, free_port, auth="basic", htpasswd=pw)
    with InProcessServer(cfg) as server, Client(free_port) as c:
        assert c.request("/" + EP11_INDEX, headers=basic("alice", "old password")).status == 200
        htpasswd(pw, alice="new password")
        generation = server.worker.allow_generation
        server.call(server.worker.reload)
        assert wait_until(lambda: server.worker.allow_generation > generation, 5)
        # The same connection stays open, under the new file.
        assert c.request("/" + EP11_INDEX, headers=basic("alice", "old password")).status == 401
        assert c.request("/" + EP11_INDEX, headers=basic("alice", "new password")).status == 200


def test_admin_status_pages_need_an_admin_user(tmp_path, store, free_port):
    pw = htpasswd(tmp_path / "htpasswd", alice="a pass", root="r pass")
    cfg = write_config(tmp_path, store, free_port, htpasswd=pw, status_access="admin",
                       admin_users=["root"])
    with InProcessServer(cfg):
        assert get(free_port, "/" + EP11_INDEX).status == 200     # auth = "none" for the files
        assert get(free_port, "/status.json").status == 401
        assert get(free_port, "/status.json", headers=basic("alice", "a pass")).status == 403
        assert get(free_port, "/status.json", headers=basic("root", "wrong")).status == 401
        r = get(free_port, "/status.json", headers=basic("root", "r pass"))
        assert r.status == 200 and r.headers["content-type"] == "application/json"


def test_the_access_log_is_combined_format_without_credentials(tmp_path, store, free_port):
    pw = htpasswd(tmp_path / "htpasswd", alice="right horse")
    log = tmp_path / "access.log"
    cfg = write_config(tmp_path, store, free_port, auth="basic", htpasswd=pw, access_log=log)
    with InProcessServer(cfg):
        headers = {**basic("alice", "right horse"), "User-Agent": 'EEA "Update"', "Referer": "http://x/"}
        assert get(free_port, "/" + EP11_INDEX, headers=headers).status == 200
        assert get(free_port, "/nothing.nup", headers=basic("alice", "right horse")).status == 404
        assert wait_until(lambda: log.exists() and log.read_text().count("\n") >= 2, 5)
    text = log.read_text()
    assert "right horse" not in text
    assert base64.b64encode(b"alice:right horse").decode() not in text
    first = text.splitlines()[0]
    combined = re.compile(r'^127\.0\.0\.1 - alice \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] '
                          r'"GET /eset_upd/ep11/dll/update\.ver HTTP/1\.1" 200 (\d+) '
                          r'"http://x/" "EEA \\"Update\\""$')
    m = combined.match(first)
    assert m, first
    assert int(m.group(1)) == len(INDEX_BYTES)
    assert '"GET /nothing.nup HTTP/1.1" 404' in text
