"""HTTP Basic authentication, the admin-only status pages and the access log."""

import base64
import re
import time

import bcrypt
import pytest

from serverkit import (
    EP11_INDEX,
    INDEX_BYTES,
    Client,
    InProcessServer,
    ServerProcess,
    ep11_store,
    get,
    wait_until,
    write_config,
)
from updmirror.serve import auth


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


def statuses(port: int, guesses) -> list[int]:
    """The status of each (user, password) request, each on a fresh connection."""
    return [get(port, "/" + EP11_INDEX, headers=basic(user, password)).status for user, password in guesses]


def test_guesses_are_counted_across_workers_and_cut_at_the_burst(tmp_path, store, free_port):
    pw = htpasswd(tmp_path / "htpasswd", alice="right horse")
    cfg = write_config(tmp_path, store, free_port, auth="basic", htpasswd=pw, workers=2)
    with ServerProcess(cfg, free_port):
        got = statuses(free_port, [("alice", f"guess {i}") for i in range(30)])
    # Fresh connections reach both workers; together they let the burst through, no more.
    assert got == [401] * auth.USER_BURST + [429] * (30 - auth.USER_BURST), \
        f"{got.count(401)} guesses checked, first 429 at #{got.index(429) + 1 if 429 in got else None}"


def test_a_good_login_does_not_reset_the_count_of_guesses(tmp_path, store, free_port):
    pw = htpasswd(tmp_path / "htpasswd", alice="right horse", mallory="own password")
    cfg = write_config(tmp_path, store, free_port, auth="basic", htpasswd=pw)
    with InProcessServer(cfg):
        first = statuses(free_port, [("alice", f"guess {i}") for i in range(auth.USER_BURST - 1)])
        assert statuses(free_port, [("mallory", "own password")]) == [200]
        assert statuses(free_port, [("alice", "right horse")]) == [200]       # not remembered yet
        after = statuses(free_port, [("alice", f"more {i}") for i in range(5)])
    assert first == [401] * (auth.USER_BURST - 1)
    assert after == [401] + [429] * 4, after


def test_retry_after_says_when_the_next_guess_is_let_through(tmp_path, store, free_port, monkeypatch):
    monkeypatch.setattr(auth, "USER_REFILL", 2.0, raising=False)
    pw = htpasswd(tmp_path / "htpasswd", alice="right horse")
    cfg = write_config(tmp_path, store, free_port, auth="basic", htpasswd=pw)
    with InProcessServer(cfg):
        for i in range(30):
            r = get(free_port, "/" + EP11_INDEX, headers=basic("alice", f"guess {i}"))
            if r.status == 429:
                break
        assert r.status == 429
        wait = int(r.headers["retry-after"])
        assert 1 <= wait <= 2, wait
        time.sleep(wait - 0.9)
        assert statuses(free_port, [("alice", "too early")]) == [429]
        time.sleep(1.0)
        # The block and the answer agree: once Retry-After has passed, a guess is checked.
        assert statuses(free_port, [("alice", "in time"), ("alice", "too early again")]) == [401, 429]


def test_guesses_against_one_user_do_not_lock_out_others_behind_the_same_address(tmp_path, store, free_port):
    pw = htpasswd(tmp_path / "htpasswd", alice="right horse", bob="battery staple")
    cfg = write_config(tmp_path, store, free_port, auth="basic", htpasswd=pw)
    with InProcessServer(cfg):
        assert statuses(free_port, [("alice", "right horse")]) == [200]
        got = statuses(free_port, [("alice", f"guess {i}") for i in range(auth.USER_BURST + 3)])
        assert got[-1] == 429
        # Bob, behind the same NAT address, logs in for the first time.
        assert statuses(free_port, [("bob", "battery staple")]) == [200]
        # And alice, whose password was checked before the guessing, is not locked out.
        assert statuses(free_port, [("alice", "right horse")]) == [200]


def test_a_spray_over_many_user_names_is_limited_per_address(tmp_path, store, free_port):
    pw = htpasswd(tmp_path / "htpasswd", alice="right horse")
    cfg = write_config(tmp_path, store, free_port, auth="basic", htpasswd=pw)
    with InProcessServer(cfg):
        got = statuses(free_port, [(f"user{i}", "password") for i in range(auth.ADDRESS_BURST + 5)])
    assert got == [401] * auth.ADDRESS_BURST + [429] * 5, \
        f"{got.count(401)} guesses checked, first 429 at #{got.index(429) + 1 if 429 in got else None}"


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
