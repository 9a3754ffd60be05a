"""The announcement watcher against real servers on loopback: an upper
updmirror (it wakes the schedule when that one publishes), the simulated
vendor (no announcements: it says so and asks again later), and refused
credentials (logged, never fatal)."""

import asyncio
import logging
import time

import bcrypt
import pytest

from serverkit import EP11_INDEX, ServerProcess, publish, write_config
from updmirror import config
from updmirror.store.snapshots import Store
from updmirror.sync import AnnounceWatcher, announce_url
from updmirror.sync.tiers import TIER_STATE_FILE
from updmirror.vendor.server import VendorServer

MODULE = "/endpointwindowslatest-rel-sta/mod_010_engine_1/em010_64_l0.nup"
USER, PASSWORD = "lower", "lower-pw-3x"


@pytest.fixture
def upper(tmp_path, free_port):
    """An upper updmirror with Basic authentication and one snapshot."""
    root = tmp_path / "upper" / "store"
    publish(root, {MODULE: b"module"}, {EP11_INDEX: b"[ONE]\r\n"})
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    (tmp_path / "upper" / "htpasswd").write_text(f"{USER}:{hashed}\n")
    cfg = write_config(tmp_path / "upper", root, free_port, workers=2, auth="basic",
                       htpasswd=tmp_path / "upper" / "htpasswd")
    with ServerProcess(cfg, free_port) as server:
        server.root = root
        yield server


def _lower(tmp_path, url: str, password: str = PASSWORD, **upstream) -> config.Config:
    lines = ["[upstream]", f'url = "{url}"', f'username = "{USER}"', f'password = "{password}"']
    lines += [f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in upstream.items()]
    lines += ["[mirror]", f'root = "{tmp_path / "lower"}"']
    path = tmp_path / "lower.toml"
    path.write_text("\n".join(lines) + "\n")
    return config.load(path)


async def _watch(cfg, body, *, last_synced=lambda: time.time(), **options):
    """Run a watcher while `body(wake)` runs; the watcher."""
    wake, stop = asyncio.Event(), asyncio.Event()
    watcher = AnnounceWatcher(cfg, wake, last_synced=last_synced, **options)
    task = asyncio.create_task(watcher.run(stop))
    try:
        await body(wake)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    return watcher


async def _set_within(wake: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(wake.wait(), seconds)
        return True
    except asyncio.TimeoutError:
        return False


def test_a_publish_upstairs_wakes_the_schedule_within_seconds(tmp_path, upper):
    cfg = _lower(tmp_path, f"http://127.0.0.1:{upper.port}/", announce_jitter=0.0)
    assert announce_url(cfg) == f"http://127.0.0.1:{upper.port}/updmirror/announce"

    async def body(wake):
        # This mirror synced after the upper mirror's snapshot: nothing to do yet.
        assert not await _set_within(wake, 1.5)
        await asyncio.to_thread(publish, upper.root, {MODULE: b"module"}, {EP11_INDEX: b"[TWO]\r\n"})
        started = time.monotonic()
        assert await _set_within(wake, 6)
        assert time.monotonic() - started < 4
        wake.clear()
        # Heard once: the same snapshot does not wake it again.
        assert not await _set_within(wake, 1.5)

    watcher = asyncio.run(_watch(cfg, body))
    assert watcher.heard == Store(upper.root).current().id
    assert watcher.announcements == 1


def test_the_first_answer_wakes_a_mirror_older_than_the_upper_snapshot(tmp_path, upper):
    cfg = _lower(tmp_path, f"http://127.0.0.1:{upper.port}/", announce_jitter=0.0)

    async def body(wake):
        assert await _set_within(wake, 5)

    asyncio.run(_watch(cfg, body, last_synced=lambda: None))


def test_the_jitter_spreads_the_syncs(tmp_path, upper):
    cfg = _lower(tmp_path, f"http://127.0.0.1:{upper.port}/", announce_jitter=1.5)

    async def body(wake):
        started = time.monotonic()
        assert await _set_within(wake, 6)
        assert time.monotonic() - started >= 1.4     # rand() = 1.0: the whole jitter

    asyncio.run(_watch(cfg, body, last_synced=lambda: None, rand=lambda: 1.0))


def test_an_upstream_without_announcements_is_asked_again_later(tmp_path, caplog):
    www = tmp_path / "www"
    www.mkdir()
    vendor = VendorServer(www, USER, PASSWORD).start()
    try:
        cfg = _lower(tmp_path, vendor.url, announce_jitter=0.0)

        async def body(wake):
            assert not await _set_within(wake, 2.5)

        with caplog.at_level(logging.INFO, logger="updmirror.sync.announce"):
            asyncio.run(_watch(cfg, body, reprobe=1.0))
    finally:
        vendor.stop()
    said = [r.getMessage() for r in caplog.records if "has no announcements" in r.getMessage()]
    assert len(said) >= 2, said          # asked again after `reprobe`
    assert "asking again in" in said[0]


def test_refused_credentials_are_logged_without_the_password(tmp_path, upper, caplog):
    cfg = _lower(tmp_path, f"http://127.0.0.1:{upper.port}/", password="wrong-Secret-77")

    async def body(wake):
        assert not await _set_within(wake, 1.5)

    with caplog.at_level(logging.INFO, logger="updmirror.sync.announce"):
        asyncio.run(_watch(cfg, body, last_synced=lambda: None))
    refused = [r for r in caplog.records if "refused the credentials" in r.getMessage()]
    assert refused and refused[0].levelno == logging.WARNING
    assert "wrong-Secret-77" not in caplog.text


def test_no_watcher_where_there_can_be_no_announcements(tmp_path):
    assert announce_url(_lower(tmp_path, "http://127.0.0.1:9/", announce="off")) is None
    assert announce_url(_lower(tmp_path, "http://127.0.0.1:9/", layout="product-mirror")) is None
    folder = tmp_path / "folder"
    folder.mkdir()
    assert announce_url(_lower(tmp_path, str(folder))) is None


def test_an_upstream_the_sync_found_without_a_manifest_is_not_asked(tmp_path, caplog):
    # A closed port: any request would fail and be logged as a failure.
    cfg = _lower(tmp_path, "http://127.0.0.1:9/")
    store = Store(cfg.mirror.root)
    store.ensure()
    store.save_state(TIER_STATE_FILE, {"url": "http://127.0.0.1:9/", "present": False})

    async def body(wake):
        assert not await _set_within(wake, 1.5)

    with caplog.at_level(logging.INFO, logger="updmirror.sync.announce"):
        asyncio.run(_watch(cfg, body, reprobe=0.3))
    said = [r.getMessage() for r in caplog.records]
    assert any("publishes no tier manifest" in m for m in said), said
    assert sum("publishes no tier manifest" in m for m in said) == 1      # said once, looked at again
    assert not any("failed" in m for m in said), said
