"""SmbUpstream against a real Samba server on loopback: the fetcher contract over a share."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from updmirror.upstream import (
    AuthError,
    NotFoundError,
    SmbUpstream,
    StalledError,
    TooLargeError,
    UpstreamConfig,
    UpstreamError,
    open_upstream,
)


@pytest.fixture
def folder(samba):
    """A folder of its own on the share, readable by the share's read-only account."""
    name = f"smbtest-{uuid.uuid4().hex[:12]}"
    path = samba.share_dir / name
    path.mkdir()
    path.chmod(0o755)
    yield name, path
    for p in sorted(path.rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    path.rmdir()


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    path.write_bytes(data)
    path.chmod(0o644)
    return path


def fetcher(samba, folder_name: str, **overrides) -> SmbUpstream:
    settings = dict(url=rf"\\{samba.host}\{samba.share}\{folder_name}", username=samba.read_account,
                    password=samba.password, retries=1, connect_timeout=5, stall_timeout=5)
    settings.update(overrides)
    port = settings.pop("port", samba.port)
    from updmirror.unc import parse_share
    settings["url"] = parse_share(settings["url"], port).url
    return SmbUpstream(UpstreamConfig(**settings), backoff_base=0.01)


def run(coro):
    return asyncio.run(coro)


def test_an_index_is_read_and_an_unchanged_one_costs_no_transfer(samba, folder):
    name, path = folder
    put(path / "dll" / "update.ver", b"[ENGINE2]\r\nversionid=1\r\n")

    async def go():
        async with fetcher(samba, name) as up:
            first = await up.fetch_index("dll/update.ver", None, 1000)
            again = await up.fetch_index("dll/update.ver", first.validators, 1000)
            return first, again, up.stats.bytes

    first, again, received = run(go())
    assert first.changed and first.body == b"[ENGINE2]\r\nversionid=1\r\n"
    assert first.url == rf"\\{samba.host}\{samba.share}\{name}\dll\update.ver"
    assert not again.changed and again.body == b""
    assert received == len(first.body)


def test_a_download_resumes_from_its_partial_file(samba, folder, tmp_path):
    name, path = folder
    data = os.urandom(3 * 1024 * 1024 + 17)
    put(path / "m" / "em001.nup", data)
    part = tmp_path / "em001.part"
    part.write_bytes(data[:1000])
    seen = []

    async def go():
        async with fetcher(samba, name) as up:
            return await up.download(f"smb://{samba.host}:{samba.port}/{samba.share}/{name}/m/em001.nup",
                                     part, len(data), 1 << 30, seen.append), up.stats.bytes

    got, received = run(go())
    assert got.read_bytes() == data
    assert sum(seen) == received == len(data) - 1000


def test_a_file_whose_size_differs_from_the_index_is_refused(samba, folder, tmp_path):
    name, path = folder
    put(path / "x.nup", b"0123456789")

    async def go():
        async with fetcher(samba, name) as up:
            await up.download("x.nup", tmp_path / "x.part", 11, 1 << 20)

    with pytest.raises(UpstreamError, match="the index says 11"):
        run(go())


def test_bounds_hold_for_indexes_and_files(samba, folder, tmp_path):
    name, path = folder
    put(path / "update.ver", b"x" * 2000)
    put(path / "big.nup", b"y" * 5000)

    async def go(op):
        async with fetcher(samba, name) as up:
            if op == "index":
                await up.fetch_index("update.ver", None, 1999)
            else:
                await up.download("big.nup", tmp_path / "big.part", None, 4999)

    with pytest.raises(TooLargeError):
        run(go("index"))
    with pytest.raises(TooLargeError):
        run(go("file"))
    assert not (tmp_path / "big.part").exists()


def test_a_missing_file_and_a_missing_share_are_not_found(samba, folder, tmp_path):
    name, _ = folder

    async def missing_file():
        async with fetcher(samba, name) as up:
            await up.fetch_index("dll/update.ver", None, 1000)

    async def missing_share():
        async with fetcher(samba, name, url=rf"\\{samba.host}\no-such-share") as up:
            await up.fetch_index("update.ver", None, 1000)

    with pytest.raises(NotFoundError, match="no such file"):
        run(missing_file())
    with pytest.raises(NotFoundError, match="no share named 'no-such-share'"):
        run(missing_share())


def test_a_wrong_password_is_an_auth_error_at_once_and_never_shown(samba, folder):
    name, path = folder
    put(path / "update.ver", b"[X]\r\n")
    wrong = samba.password + "-wrong"

    async def go():
        async with fetcher(samba, name, password=wrong, retries=3) as up:
            try:
                await up.fetch_index("update.ver", None, 1000)
            finally:
                assert up.stats.retries == 0      # credentials are not retried

    started = time.monotonic()
    with pytest.raises(AuthError) as caught:
        run(go())
    assert time.monotonic() - started < 10
    assert samba.read_account in str(caught.value) and wrong not in str(caught.value)


def test_paths_that_leave_the_folder_are_refused(samba, folder):
    name, _ = folder
    up = fetcher(samba, name)
    for bad in ("../secret", "dll/../../x", f"smb://{samba.host}:{samba.port}/other/x",
                f"smb://{samba.host}:{samba.port}/{samba.share}/elsewhere/x"):
        with pytest.raises(UpstreamError):
            run(up.fetch_index(bad, None, 100))
    assert up.stats.requests == 0


def test_a_server_that_accepts_but_never_answers_is_given_up_in_time(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])   # and say nothing
            except TimeoutError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    cfg = UpstreamConfig(url=f"smb://127.0.0.1:{port}/share/", username="WORKGROUP\\noduser",
                         password="pw", connect_timeout=1, stall_timeout=1, retries=1)

    async def go():
        async with SmbUpstream(cfg, backoff_base=0.01) as up:
            await up.fetch_index("update.ver", None, 100)

    started = time.monotonic()
    try:
        with pytest.raises(UpstreamError) as caught:
            run(go())
    finally:
        stop.set()
        thread.join(5)
        for s in held:
            s.close()
        listener.close()
    assert time.monotonic() - started < 15
    assert isinstance(caught.value, (StalledError, UpstreamError)) and "127.0.0.1" in str(caught.value)


def test_open_upstream_picks_the_share_fetcher_for_a_unc_path():
    up = open_upstream(UpstreamConfig(url=r"\\nas\eset_upd\ep11", username="WORKGROUP\\noduser",
                                      password="x"))
    assert isinstance(up, SmbUpstream) and up.location.folders == ("ep11",)
